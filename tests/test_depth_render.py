"""The synthetic depth of tools/eval_depth --rendered (tools/depth_render.py): the z-buffer gives
the exact depth of a plane, the sensor model adds noise of the stated size, holes and flying
pixels only where depth jumps, and 16UC1 bytes read back through core.depth."""
from __future__ import annotations

import numpy as np

from chatpose_ros.core.camera import CameraIntrinsics
from chatpose_ros.core.depth import DepthImage
from chatpose_ros.tools.depth_render import SensorModel, render_depth, to_16uc1

CAM = CameraIntrinsics.from_focal(200.0, 160, 120)


def test_zbuffer_gives_a_tilted_plane_exactly_and_the_nearest_surface():
    # a plane z = 3 + 0.5 x (m), as two triangles, and a smaller square 1 m in front of part of it
    X = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    plane = np.c_[X, 3.0 + 0.5 * X[:, 0]]
    near = np.c_[0.2 * X + [0.3, 0.0], np.full(4, 2.0)]
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    z = render_depth(np.r_[plane, near], np.r_[faces, faces + 4], CAM, background_m=np.inf)
    v, u = np.mgrid[0:CAM.height, 0:CAM.width]
    xn = (u - CAM.cx) / CAM.fx
    expected = 3.0 / (1.0 - 0.5 * xn)  # z = 3 + 0.5 x with x = xn z
    covered = np.isfinite(z) & (np.abs(z - 2.0) > 1e-6)
    assert covered.mean() > 0.5
    np.testing.assert_allclose(z[covered], expected[covered], rtol=1e-5)
    in_front = CAM.project(np.array([[0.3, 0.0, 2.0]]))[0].round().astype(int)
    assert z[in_front[1], in_front[0]] == np.float32(2.0)


def test_sensor_noise_holes_and_flying_pixels():
    z = np.full((CAM.height, CAM.width), 4.0, np.float32)
    z[:, CAM.width // 2:] = 7.0  # a depth edge down the middle
    s = SensorModel(scale_sd=0.0, hole_blobs=0)
    out = s.apply(z, np.random.default_rng(0))
    holes = out == 0
    assert 0.02 < holes.mean() < 0.05
    left = out[:, 5:CAM.width // 2 - 5][~holes[:, 5:CAM.width // 2 - 5]]
    assert abs(np.std(left - 4.0) - s.quad * 16.0) < 0.3 * s.quad * 16.0  # sigma = quad z^2
    between = (out > 4.4) & (out < 6.1)  # 6 and 4.6 sigma from either side
    cols = np.nonzero(between)[1]
    assert between.sum() > 0 and np.all(np.abs(cols - CAM.width // 2) <= 2)  # flying pixels only at the edge
    data, step = to_16uc1(out)
    img = DepthImage(data, CAM.width, CAM.height, "16UC1", step)
    r, c = np.nonzero(~holes)
    np.testing.assert_allclose(img.metres(r, c), out[r, c], atol=6e-4)
    assert np.isnan(img.metres(*np.nonzero(holes))).all()


def test_rendered_eval_places_clean_depth_better_than_the_monocular_fit(capsys):
    """tools/eval_depth --rendered end to end on a clean sensor (exact keypoints, the true pose on
    the mean body): every person is placed from depth, within a few percent, and the summary
    carries the figures `make eval-depth` writes."""
    from chatpose_ros.tools.eval_depth import RENDER_DISTANCES_M, run_rendered, summarise_rendered

    clean = SensorModel(quad=0.0, scale_sd=0.0, flying_p=0.0, hole_p=0.0, hole_blobs=0)
    res = run_rendered(per_cell=1, joints_source="true", noise_px=0.0, seed=0, sensor=clean)
    assert len(res["distance"]) == 6 * len(RENDER_DISTANCES_M)
    assert (res["source"] == "depth").all()
    summary = summarise_rendered(res)
    assert summary["median_rel_error_depth"] < 0.03
    assert summary["median_rel_error_depth"] < summary["median_rel_error_mono"]
    assert len(summary["per_distance"]) == len(RENDER_DISTANCES_M)
    assert "| 8 m |" in capsys.readouterr().out
