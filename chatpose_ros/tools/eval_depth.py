"""Depth error of the person's translation against distance, on real mocap poses.

    OMP_NUM_THREADS=1 .venv/bin/python -m chatpose_ros.tools.eval_depth [--samples 2000] [--joints regressor]

Held-out CMU motion capture (``01_01.bvh``, retargeted to SMPL; not used to train the regressor)
is placed 2..8 m in front of a pinhole camera (640 x 480 px) with a random heading (yaw 0..360
deg) and a random position in the image, projected with known intrinsics at several focal
lengths, and the 15 keypoints get gaussian pixel noise (``--noise-px``, default 2 px). Body
size varies (``--size-sd``: the true body is the mean SMPL body scaled by N(1, sd)); keypoints
outside the image are not seen (truncated people at short range and long focal lengths).

The 3D skeleton the fit uses (``--joints``): ``true`` = the true pose on the mean body (a
perfect pose model), ``regressor`` = the shipped keypoint-to-SMPL regressor run on the noisy
keypoints (2D + 3D with ``--noise-3d-m`` noise, like MediaPipe's world landmarks), or ``world``
= those noisy 3D keypoints themselves.

Columns, side by side on the same samples:
- ``fit K``     : ``core.camera.estimate_translation`` with the camera's intrinsics (camera_info);
- ``fit f=W``   : the same fit with the assumed focal length (image width), no camera_info;
- ``spread f=W``: the first version's estimate (``_spread``: ratio of the keypoints' spread in
  px and in m, focal = image width);
- ``spread K``  : that spread ratio with the true focal length (separates the method from the
  focal assumption).

``--rendered`` (``make eval-depth``): the depth image path against the monocular fit, on the
same people at the same distances (``run_rendered``). Six Anny bodies of different phenotypes
(heights printed) are posed from the held-out CMU mocap, turned to a random heading and placed
at 2, 3, ..., 8 m at a random place in a 640 x 480 image (fx = fy = 615 px, a RealSense D435's
colour camera at that size) in front of a wall 1.5-3 m behind them. Their depth is rendered
exactly (``tools/depth_render.render_depth``) and passed through a stereo-like sensor model
(``SensorModel``: noise sigma = 0.004 z^2 half correlated, a 1 % per-image scale error, flying
pixels at edges, dropouts and hole blobs, mm quantisation) as a 16UC1 image. The 2D keypoints
are NOT from a detector run on a rendered colour image (an untextured rendering would measure
the detector's domain gap, not the depth path): they are the Anny body's own joints projected
with ``--noise-px`` gaussian noise, keypoints outside the image unseen. The 3D skeleton is the
shipped regressor's (mean SMPL body) or the true pose on the mean SMPL body (``--joints``). Both
paths are the node's own functions: ``placement.place_result`` (monocular) then
``depth.DepthPlacer.place`` (depth, falling back to the monocular fit where it reads nothing).
Error: |t - t_true| / |t_true| of the pelvis position (3D). Writes ``--json``.

Printed: median absolute depth error (m), median and 90th-percentile relative error (%), by
distance bucket and by focal length, and the share of people without an estimate. Synthetic:
exact principal point, and no detector domain gap unless ``--mediapipe-hips`` (MediaPipe's hip
landmarks sit up to 6 cm lower and 4 cm wider than SMPL's hip joints).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math

import numpy as np

from chatpose_ros.core.camera import CameraIntrinsics, estimate_translation

log = logging.getLogger(__name__)

IMAGE_WH = (640, 480)
FOCALS_PX = (300.0, 525.0, 640.0, 1000.0)   # 94, 63, 53 (= today's assumption), 35 deg horizontal FOV
DEPTH_RANGE_M = (2.0, 8.0)
BUCKET_EDGES_M = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
PELVIS_U_RANGE = (0.15, 0.85)  # pelvis pixel drawn uniformly in this part of the image width
PELVIS_V_RANGE = (0.35, 0.65)  # ... and of its height
SIZE_CLIP = (0.8, 1.2)         # body-size factors are clipped to this range
METHODS = ("fit K", "fit f=W", "spread f=W", "spread K")


def _camera_rotation(yaw: float) -> np.ndarray:
    """(3, 3) canonical body frame (y up) -> camera optical frame (y down), body turned by yaw."""
    c, s = math.cos(yaw), math.sin(yaw)
    Ry = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return np.diag([1.0, -1.0, -1.0]) @ Ry


def _load_poses():
    """Held-out mocap: (N, 24, 3, 3) rotmats and (N, 24, 3) joints, canonical frame."""
    from chatpose_ros.models.default.offline.mocap import load_mocap

    ms = load_mocap("test")
    return ms.rotmats.astype(np.float64), ms.joints.astype(np.float64)


def _spread(kp2d: np.ndarray, world: np.ndarray, seen: np.ndarray, focal: float) -> np.ndarray | None:
    """The first version's spread-ratio translation (m, camera optical frame) from (15, 2) px and
    (15, 3) m keypoints (KEYPOINT_NAMES order) seen by `seen`: depth = focal / (mean distance of
    the seen keypoints from their centroid in px / the same in m, x and y only); None with fewer
    than 6 seen keypoints."""
    from chatpose_ros.perception.keypoints import KEYPOINT_NAMES

    W, H = IMAGE_WH
    if seen.sum() < 6:
        return None
    p, w = kp2d[seen], world[seen, :2]
    spread_px = np.linalg.norm(p - p.mean(0), axis=1).mean()
    spread_m = np.linalg.norm(w - w.mean(0), axis=1).mean()
    if spread_m < 1e-3 or spread_px < 1e-3:
        return None
    z = focal / (spread_px / spread_m)
    hip = 0.5 * (kp2d[KEYPOINT_NAMES.index("left_hip")] + kp2d[KEYPOINT_NAMES.index("right_hip")])
    return np.array([(hip[0] - W / 2) * z / focal, (hip[1] - H / 2) * z / focal, z])


def run(samples: int, joints_source: str, noise_px: float, noise_3d_m: float, size_sd: float, seed: int,
        distortion: tuple[float, ...] = (), mediapipe_hips: bool = False) -> dict:
    """Evaluate; returns {"depth": (S,), "focal": (S,), "err": {method: (S,) signed depth error m or nan},
    "cut": (S,) bool some keypoint outside the image, "truncated": its share}."""
    import torch

    from chatpose_ros.core.body import forward_kinematics
    from chatpose_ros.perception.keypoints import smpl_to_keypoints

    rng = np.random.default_rng(seed)
    rot_all, joints_all = _load_poses()
    W, H = IMAGE_WH
    n_f = len(FOCALS_PX)
    pick = rng.integers(0, len(rot_all), samples)
    yaw = rng.uniform(0.0, 2 * math.pi, samples)
    depth = rng.uniform(*DEPTH_RANGE_M, samples)
    size = np.clip(rng.normal(1.0, size_sd, samples), *SIZE_CLIP)
    focal = np.asarray(FOCALS_PX)[np.arange(samples) % n_f]
    u = rng.uniform(*PELVIS_U_RANGE, samples) * W
    v = rng.uniform(*PELVIS_V_RANGE, samples) * H

    Rc = np.stack([_camera_rotation(a) for a in yaw])                 # (S, 3, 3)
    rot = rot_all[pick].copy()
    rot[:, 0] = Rc @ rot[:, 0]
    joints = np.einsum("sij,skj->ski", Rc, joints_all[pick])           # mean body, camera axes
    kp_mean = smpl_to_keypoints(joints, rot)                           # (S, 15, 3) pelvis-relative
    detector_offset = np.zeros_like(kp_mean)                           # detector vs SMPL keypoints
    if mediapipe_hips:  # the detector's hip landmarks: lower and wider than SMPL's hip joints
        from chatpose_ros.perception.keypoints import KEYPOINT_NAMES
        from chatpose_ros.models.default.offline.train_regressor import NoiseModel

        nm = NoiseModel()
        down = rng.uniform(0.0, nm.hip_down_m, samples)
        out = rng.uniform(0.0, nm.hip_out_m, samples)
        for name, side in (("left_hip", 1.0), ("right_hip", -1.0)):
            off = np.stack([side * out, -down, np.zeros(samples)], 1)   # body frame (x left, y up)
            detector_offset[:, KEYPOINT_NAMES.index(name)] = np.einsum("sij,sj->si", rot[:, 0], off)
    kp_true = (kp_mean + detector_offset) * size[:, None, None]        # what the detector sees, real size

    cams = [CameraIntrinsics(fx=f, fy=f, cx=(W - 1) / 2, cy=(H - 1) / 2, width=W, height=H,
                             distortion_model="plumb_bob" if distortion else "", distortion=distortion)
            for f in focal]
    trans = np.stack([(u - cams[0].cx) * depth / focal, (v - cams[0].cy) * depth / focal, depth], 1)
    kp2d = np.stack([c.project(k + t) for c, k, t in zip(cams, kp_true, trans)])
    kp2d = kp2d + rng.normal(0.0, noise_px, kp2d.shape)
    seen = np.stack([c.inside(p) for c, p in zip(cams, kp2d)])
    world = kp_mean + detector_offset + rng.normal(0.0, noise_3d_m, kp_mean.shape)  # MediaPipe-like world landmarks

    if joints_source == "regressor":
        from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR, REGRESSOR_FILE
        from chatpose_ros.perception.regressor import SmplRegressor

        reg = SmplRegressor.load(DEFAULT_WEIGHTS_DIR / REGRESSOR_FILE)
        pred = reg.predict(world.astype(np.float32), kp2d.astype(np.float32), visibility=seen.astype(np.float32))
        pj = forward_kinematics(torch.as_tensor(pred, dtype=torch.float64)).numpy()
        fit3d = smpl_to_keypoints(pj, pred.astype(np.float64))
    elif joints_source == "world":
        fit3d = world
    else:
        fit3d = kp_mean

    err = {m: np.full(samples, np.nan) for m in METHODS}
    for i in range(samples):
        cam_w = CameraIntrinsics.from_focal(float(W), W, H)
        for name, cam in (("fit K", cams[i]), ("fit f=W", cam_w)):
            est = estimate_translation(kp2d[i], fit3d[i], cam, scores=seen[i].astype(float))
            if est is not None:
                err[name][i] = est.translation[2] - depth[i]
        for name, f in (("spread f=W", float(W)), ("spread K", float(focal[i]))):
            t = _spread(kp2d[i], world[i], seen[i].astype(bool), f)
            if t is not None:
                err[name][i] = float(t[2]) - depth[i]
    cut = seen.sum(1) < seen.shape[1]
    return {"depth": depth, "focal": focal, "err": err, "truncated": float(cut.mean()), "cut": cut}


def _cell(e: np.ndarray, d: np.ndarray) -> str:
    ok = np.isfinite(e)
    if not ok.any():
        return "n/a"
    a, r = np.abs(e[ok]), 100 * np.abs(e[ok]) / d[ok]
    miss = f" ({100 * (1 - ok.mean()):.0f}% none)" if not ok.all() else ""
    return f"{np.median(a):.2f} m {np.median(r):4.1f}% p90 {np.percentile(r, 90):5.1f}%{miss}"


def print_tables(res: dict) -> None:
    d, f, err = res["depth"], res["focal"], res["err"]
    methods = [m for m in METHODS if m in err]
    head = "| " + " | ".join(["bucket"] + [f"{m}: med abs, med %, p90 %" for m in methods]) + " |"
    sep = "|" + "---|" * (len(methods) + 1)
    print("\n## depth error by distance (all focal lengths)\n" + head + "\n" + sep)
    for lo, hi in zip(BUCKET_EDGES_M[:-1], BUCKET_EDGES_M[1:]):
        sel = (d >= lo) & (d < hi) if hi < BUCKET_EDGES_M[-1] else (d >= lo) & (d <= hi)
        print(f"| {lo:.0f}-{hi:.0f} m (n={sel.sum()}) | " + " | ".join(_cell(err[m][sel], d[sel]) for m in methods) + " |")
    cut = res["cut"]
    print(f"| truncated (n={cut.sum()}) | " + " | ".join(_cell(err[m][cut], d[cut]) for m in methods) + " |")
    print("| all | " + " | ".join(_cell(err[m], d) for m in methods) + " |")
    print("\n## depth error by focal length (all distances)\n" + head.replace("bucket", "focal") + "\n" + sep)
    for fv in FOCALS_PX:
        sel = f == fv
        fov = math.degrees(2 * math.atan(IMAGE_WH[0] / (2 * fv)))
        print(f"| {fv:.0f} px ({fov:.0f} deg) | " + " | ".join(_cell(err[m][sel], d[sel]) for m in methods) + " |")
    print(f"\npeople with at least one keypoint outside the image: {100 * res['truncated']:.0f}%")


# ---------------------------------------------------------------------------------- rendered depth
# The people of --rendered: Anny phenotypes (parameters in [0, 1]; the rest 0.5)
PHENOTYPES: tuple[dict[str, float], ...] = (
    {"gender": 0.0, "height": 0.35, "weight": 0.45}, {"gender": 1.0, "height": 0.65, "weight": 0.55},
    {"gender": 0.3, "height": 0.5, "muscle": 0.6}, {"gender": 0.8, "height": 0.4, "weight": 0.8},
    {"gender": 0.1, "height": 0.7, "weight": 0.3}, {"gender": 0.6, "height": 0.5, "weight": 0.6, "age": 0.8})
RENDER_DISTANCES_M = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0)
RENDER_WH = (640, 480)
RENDER_FOCAL_PX = 615.0             # a RealSense D435 colour camera at 640 x 480
WALL_BEHIND_M = (1.5, 3.0)          # the wall behind the person, this far behind the pelvis
RENDER_PELVIS_U = (0.3, 0.7)        # pelvis pixel drawn in this part of the image width ...
RENDER_PELVIS_V = (0.45, 0.6)       # ... and height
RENDER_FRAME = "camera_color_optical_frame"


def _anny_smpl_joints(bone_heads: np.ndarray, bone_labels: tuple[str, ...]) -> np.ndarray:
    """(B, 3) posed Anny bone heads (``AnnyBody.bone_labels`` order) -> (24, 3) SMPL joints on the
    Anny body (each SMPL joint is the head of an Anny bone it drives, ``anny_mesh.BONE_TO_SMPL``,
    the first in that table's order)."""
    from chatpose_ros.core.anny_mesh import BONE_TO_SMPL
    from chatpose_ros.core.smpl_layout import SMPL_JOINT_NAMES

    first: dict[str, int] = {}
    for bone, (joint, _, _) in BONE_TO_SMPL.items():
        first.setdefault(joint, bone_labels.index(bone))
    return np.stack([bone_heads[first[j]] for j in SMPL_JOINT_NAMES])


def run_rendered(per_cell: int, joints_source: str, noise_px: float, seed: int, sensor=None) -> dict:
    """Depth image path against the monocular fit on rendered people (module docstring).

    Returns {"distance": (S,), "person": (S,), "err_mono": (S,), "err_depth": (S,) relative 3D
    errors (NaN: no estimate), "source": (S,) "depth"/"monocular"/"", "heights_m": per person}."""
    import collections

    import torch

    from chatpose_ros.core.anny_mesh import AnnyBody
    from chatpose_ros.core.body import forward_kinematics
    from chatpose_ros.core.depth import DepthImage, DepthPlacer
    from chatpose_ros.core.placement import DEFAULT15, place_result
    from chatpose_ros.core.types import PersonPose, PoseResult
    from chatpose_ros.perception.keypoints import smpl_to_keypoints
    from chatpose_ros.tools.depth_render import SensorModel, render_depth, to_16uc1

    sensor = sensor or SensorModel()
    rng = np.random.default_rng(seed)
    W, H = RENDER_WH
    cam = CameraIntrinsics.from_focal(RENDER_FOCAL_PX, W, H)
    rot_all, joints_all = _load_poses()
    bodies = []
    for ph in PHENOTYPES:
        b = AnnyBody(phenotype=ph)
        rest = b.mesh(np.tile(np.eye(3), (24, 1, 1)))
        bodies.append((b, float(np.ptp(rest.vertices[:, 1]))))
    cells = [(k, d) for d in RENDER_DISTANCES_M for k in range(len(bodies)) for _ in range(per_cell)]
    S = len(cells)
    samples = []
    for k, d in cells:  # pass 1: pose, mesh, keypoints (the regressor runs on all at once)
        i = int(rng.integers(0, len(rot_all)))
        Rc = _camera_rotation(float(rng.uniform(0.0, 2 * math.pi)))
        rot = rot_all[i].copy()
        rot[0] = Rc @ rot[0]
        mesh = bodies[k][0].mesh(rot)
        u, v = rng.uniform(*RENDER_PELVIS_U) * W, rng.uniform(*RENDER_PELVIS_V) * H
        t = np.array([(u - cam.cx) * d / cam.fx, (v - cam.cy) * d / cam.fy, d])
        anny_joints = _anny_smpl_joints(mesh.bone_heads.astype(np.float64), bodies[k][0].bone_labels)
        kp3 = smpl_to_keypoints(anny_joints, rot)                                           # (15, 3) pelvis-relative
        kp2 = cam.project(kp3 + t) + rng.normal(0.0, noise_px, (len(kp3), 2))
        seen = cam.inside(kp2)
        samples.append(dict(k=k, d=d, rot=rot, mean_joints=Rc @ joints_all[i].T, mesh=mesh, t=t, kp3=kp3, kp2=kp2,
                            seen=seen, wall=d + rng.uniform(*WALL_BEHIND_M)))
    if joints_source == "regressor":
        from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR, REGRESSOR_FILE
        from chatpose_ros.perception.regressor import SmplRegressor

        reg = SmplRegressor.load(DEFAULT_WEIGHTS_DIR / REGRESSOR_FILE)
        world = np.stack([s["kp3"] for s in samples]) + rng.normal(0.0, 0.02, (S, 15, 3))   # MediaPipe-like world landmarks
        pred = reg.predict(world.astype(np.float32), np.stack([s["kp2"] for s in samples]).astype(np.float32),
                           visibility=np.stack([s["seen"] for s in samples]).astype(np.float32))
        fit_joints = forward_kinematics(torch.as_tensor(pred, dtype=torch.float64)).numpy()
    else:
        fit_joints = np.stack([s["mean_joints"].T for s in samples])
    out = {"distance": np.array([s["d"] for s in samples]), "person": np.array([s["k"] for s in samples]),
           "err_mono": np.full(S, np.nan), "err_depth": np.full(S, np.nan), "source": [""] * S,
           "heights_m": [h for _, h in bodies], "fallback": collections.Counter()}
    for n, s in enumerate(samples):  # pass 2: render, sensor, both paths
        z = render_depth(s["mesh"].vertices + s["t"], s["mesh"].faces, cam, background_m=s["wall"])
        data, step = to_16uc1(sensor.apply(z, rng))
        kp = np.where(s["seen"][:, None], s["kp2"], np.nan).astype(np.float32)
        assert len(kp) == len(DEFAULT15)
        person = PersonPose(theta=np.zeros(72, np.float32), joints=fit_joints[n].astype(np.float32), keypoints_2d=kp)
        mono = place_result(PoseResult(query="", answer="", people=(person,), image_size=(W, H)), cam)
        placer = DepthPlacer()
        placer.add(DepthImage(data, W, H, "16UC1", step, False, 0.0, RENDER_FRAME))
        placer.set_intrinsics(cam)
        placed = placer.place(mono, 0.0, RENDER_FRAME)
        out["fallback"].update(k for k in placed.counts if k not in ("depth", "monocular"))
        t_true = s["t"]
        for key, p in (("err_mono", mono.people[0]), ("err_depth", placed.result.people[0])):
            if p.translation is not None:
                out[key][n] = float(np.linalg.norm(np.asarray(p.translation) - t_true) / np.linalg.norm(t_true))
        out["source"][n] = placed.result.people[0].translation_source
    out["source"] = np.array(out["source"])
    return out


def summarise_rendered(res: dict) -> dict:
    """Per distance and overall: medians and p90 of both errors (on samples where both paths have
    an estimate), the share placed from depth; prints the table."""
    both = np.isfinite(res["err_mono"]) & np.isfinite(res["err_depth"])
    rows = []
    print("\n| distance | n | monocular: median, p90 | depth path: median, p90 | mono / depth | from depth |\n"
          "|---|---|---|---|---|---|")
    for d in RENDER_DISTANCES_M:
        sel = both & (res["distance"] == d)
        m, dp = res["err_mono"][sel], res["err_depth"][sel]
        share = float((res["source"][sel] == "depth").mean()) if sel.any() else float("nan")
        row = {"distance_m": d, "n": int(sel.sum()), "median_rel_error_mono": float(np.median(m)),
               "median_rel_error_depth": float(np.median(dp)), "p90_rel_error_mono": float(np.percentile(m, 90)),
               "p90_rel_error_depth": float(np.percentile(dp, 90)), "share_from_depth": share}
        rows.append(row)
        print(f"| {d:.0f} m | {row['n']} | {100 * row['median_rel_error_mono']:.1f} %, {100 * row['p90_rel_error_mono']:.1f} % "
              f"| {100 * row['median_rel_error_depth']:.2f} %, {100 * row['p90_rel_error_depth']:.2f} % "
              f"| {row['median_rel_error_mono'] / row['median_rel_error_depth']:.1f}x | {100 * share:.0f} % |")
    m, dp = res["err_mono"][both], res["err_depth"][both]
    summary = {"median_rel_error_mono": float(np.median(m)), "median_rel_error_depth": float(np.median(dp)),
               "p90_rel_error_mono": float(np.percentile(m, 90)), "p90_rel_error_depth": float(np.percentile(dp, 90)),
               "ratio_mono_over_depth": float(np.median(m) / np.median(dp)), "n": int(both.sum()),
               "n_samples": int(len(both)), "no_estimate_mono": int((~np.isfinite(res["err_mono"])).sum()),
               "no_estimate_depth_path": int((~np.isfinite(res["err_depth"])).sum()),
               "share_from_depth": float((res["source"] == "depth").mean()),
               "depth_fallbacks": dict(res["fallback"]), "per_distance": rows,
               "body_heights_m": [round(h, 3) for h in res["heights_m"]]}
    print(f"| all | {summary['n']} | {100 * summary['median_rel_error_mono']:.1f} %, {100 * summary['p90_rel_error_mono']:.1f} % "
          f"| {100 * summary['median_rel_error_depth']:.2f} %, {100 * summary['p90_rel_error_depth']:.2f} % "
          f"| {summary['ratio_mono_over_depth']:.1f}x | {100 * summary['share_from_depth']:.0f} % |")
    return summary


# A typical wide-angle webcam's barrel distortion (plumb_bob k1 k2 t1 t2 k3) for --distorted.
WEBCAM_DISTORTION = (-0.28, 0.09, 0.001, -0.0005, -0.01)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=2000, help="people placed (spread over the focal lengths)")
    ap.add_argument("--joints", choices=("true", "regressor", "world"), default="regressor",
                    help="3D skeleton for the fit: the true pose (mean body), the shipped regressor's, or the "
                    "detector's noisy 3D keypoints (MediaPipe world landmarks)")
    ap.add_argument("--noise-px", type=float, default=2.0, help="gaussian keypoint noise, sigma in px")
    ap.add_argument("--noise-3d-m", type=float, default=0.02, help="noise of the 3D input keypoints (m, regressor input)")
    ap.add_argument("--size-sd", type=float, default=0.05, help="body size spread: true size = mean x N(1, sd)")
    ap.add_argument("--distorted", action="store_true", help="project through a wide-angle plumb_bob lens "
                    "(fit K undistorts; the others do not)")
    ap.add_argument("--mediapipe-hips", action="store_true", help="move the observed hips lower and wider "
                    "(up to 6 and 4 cm, MediaPipe's hip landmarks vs SMPL's hip joints)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rendered", action="store_true", help="depth image path against the monocular fit on rendered "
                    "Anny bodies with sensor noise (make eval-depth); --noise-px and --joints apply")
    ap.add_argument("--per-cell", type=int, default=12, help="--rendered: poses per person and distance")
    ap.add_argument("--json", default="", help="--rendered: write the figures here")
    ap.add_argument("--sensor-quad", type=float, default=None, help="--rendered: depth noise sigma = QUAD * z^2 (m; "
                    "default SensorModel's)")
    ap.add_argument("--sensor-scale-sd", type=float, default=None, help="--rendered: per-image depth scale error sd")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.rendered:
        _main_rendered(args)
        return
    res = run(args.samples, args.joints, args.noise_px, args.noise_3d_m, args.size_sd, args.seed,
              WEBCAM_DISTORTION if args.distorted else (), args.mediapipe_hips)
    print(f"# depth error: {args.samples} mocap poses (CMU 01_01, held out), {IMAGE_WH[0]}x{IMAGE_WH[1]} px, "
          f"focal {', '.join(f'{f:.0f}' for f in FOCALS_PX)} px, keypoint noise {args.noise_px} px, "
          f"3D skeleton: {args.joints}, body size sd {args.size_sd}, distortion: {'plumb_bob' if args.distorted else 'none'}, "
          f"MediaPipe hip offset: {'yes' if args.mediapipe_hips else 'no'}")
    print_tables(res)


def _main_rendered(args) -> None:
    import json
    import time
    from pathlib import Path

    from chatpose_ros.tools.depth_render import SensorModel

    sensor = SensorModel()
    if args.sensor_quad is not None:
        sensor = dataclasses.replace(sensor, quad=args.sensor_quad)
    if args.sensor_scale_sd is not None:
        sensor = dataclasses.replace(sensor, scale_sd=args.sensor_scale_sd)
    t0 = time.perf_counter()
    res = run_rendered(args.per_cell, args.joints, args.noise_px, args.seed, sensor)
    print(f"# depth image path vs monocular fit: {len(PHENOTYPES)} Anny bodies (heights "
          f"{', '.join(f'{h:.2f}' for h in res['heights_m'])} m) x {len(RENDER_DISTANCES_M)} distances x {args.per_cell} "
          f"held-out mocap poses (CMU 01_01), {RENDER_WH[0]}x{RENDER_WH[1]} px, f = {RENDER_FOCAL_PX:.0f} px; 2D keypoints = "
          f"the body's joints projected + {args.noise_px} px noise (no detector); 3D skeleton: {args.joints}; "
          f"sensor: {sensor}; relative 3D error of the pelvis position")
    summary = summarise_rendered(res)
    summary.update({"joints": args.joints, "noise_px": args.noise_px, "per_cell": args.per_cell, "seed": args.seed,
                    "sensor": dataclasses.asdict(sensor), "keypoints": "projected joints + noise (no detector)",
                    "seconds": round(time.perf_counter() - t0, 1)})
    print(f"\ndepth fallbacks to the monocular fit: {summary['depth_fallbacks'] or 'none'}; "
          f"target (depth error at least 3x lower): {'met' if summary['ratio_mono_over_depth'] >= 3 else 'NOT met'}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
