"""Synthetic depth images for ``tools/eval_depth --rendered``: a mesh rendered by a z-buffer in
front of a wall, then a stereo-like sensor model (noise, holes, flying pixels, mm quantisation).

    z = render_depth(vertices_cam, faces, intrinsics, wall_m)      # (H, W) float32 m, exact
    z_noisy = SensorModel(...).apply(z, rng)                        # (H, W) float32 m, 0 = no reading

The sensor model, per pixel (sigma = ``rel`` * z + ``quad`` * z^2, as a stereo camera's error grows
with the square of the distance):
- a per-image depth scale error N(1, ``scale_sd``) (calibration, temperature);
- half the noise variance independent per pixel, half spatially correlated (Gaussian-blurred
  noise, ``corr_px``), as stereo matching errors come in blobs;
- flying pixels: at depth edges (more than ``edge_m`` between neighbours), with probability
  ``flying_p``, a value between the near and the far side (mixed pixels);
- holes: independent dropouts (``hole_p``) and ``hole_blobs`` elliptic blobs of zeros
  (occlusion shadows, untextured patches), and nothing beyond ``max_range_m``;
- millimetre quantisation (16UC1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from chatpose_ros.core.camera import CameraIntrinsics


def render_depth(vertices: np.ndarray, faces: np.ndarray, cam: CameraIntrinsics, background_m: float = np.inf) -> np.ndarray:
    """(H, W) float32 depth (z, m) of a triangle mesh seen by `cam` (no distortion), nearest surface
    per pixel centre, `background_m` where no triangle covers the pixel.

    Args:
        vertices: (V, 3) m in the camera optical frame (z > 0).
        faces: (F, 3) vertex indices.
    """
    W, H = cam.width, cam.height
    z = np.full(H * W, np.inf, np.float64)
    v = np.asarray(vertices, np.float64)
    p = cam.project(v)
    P, Z = p[faces], v[faces, 2]                                        # (F, 3, 2), (F, 3)
    lo = np.clip(np.ceil(P.min(1) - 1e-9), 0, [W - 1, H - 1]).astype(np.int64)
    hi = np.clip(np.floor(P.max(1) + 1e-9), 0, [W - 1, H - 1]).astype(np.int64)
    ok = (hi >= lo).all(1) & (Z > 0).all(1) & (P.max(1) >= 0).all(1) & (P.min(1)[:, 0] <= W - 1) & (P.min(1)[:, 1] <= H - 1)
    P, Z, lo, hi = P[ok], Z[ok], lo[ok], hi[ok]
    w, h = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    n = w * h
    tri = np.repeat(np.arange(len(P)), n)
    local = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    px = lo[tri, 0] + local % w[tri]
    py = lo[tri, 1] + local // w[tri]
    a, b, c = P[tri, 0], P[tri, 1], P[tri, 2]
    den = (b[:, 1] - c[:, 1]) * (a[:, 0] - c[:, 0]) + (c[:, 0] - b[:, 0]) * (a[:, 1] - c[:, 1])
    good = np.abs(den) > 1e-12
    den = np.where(good, den, 1.0)
    l0 = ((b[:, 1] - c[:, 1]) * (px - c[:, 0]) + (c[:, 0] - b[:, 0]) * (py - c[:, 1])) / den
    l1 = ((c[:, 1] - a[:, 1]) * (px - c[:, 0]) + (a[:, 0] - c[:, 0]) * (py - c[:, 1])) / den
    l2 = 1.0 - l0 - l1
    inside = good & (l0 >= -1e-9) & (l1 >= -1e-9) & (l2 >= -1e-9)
    inv_z = l0 / Z[tri, 0] + l1 / Z[tri, 1] + l2 / Z[tri, 2]            # 1/z is linear in the image
    sel = inside & (inv_z > 0)
    np.minimum.at(z, (py * W + px)[sel], 1.0 / inv_z[sel])
    z = z.reshape(H, W)
    z[~np.isfinite(z)] = background_m
    return z.astype(np.float32)


@dataclass(frozen=True)
class SensorModel:
    """A stereo-like depth sensor (see the module docstring); defaults: about 0.9 % noise at 2 m,
    1.6 % at 4 m, 3.2 % at 8 m (sigma = 0.004 z^2), 1 % scale error, 3 % dropouts, 6 hole
    blobs, half the mixed pixels at depth edges flying, nothing beyond 10 m."""

    rel: float = 0.0
    quad: float = 0.004
    scale_sd: float = 0.01
    corr_px: float = 4.0
    flying_p: float = 0.5
    edge_m: float = 0.2
    hole_p: float = 0.03
    hole_blobs: int = 6
    hole_radius_px: tuple[float, float] = (4.0, 25.0)
    max_range_m: float = 10.0

    def apply(self, z_m: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(H, W) float32 metres (inf = nothing) -> (H, W) float32 metres as the sensor reports
        them (mm steps), 0 where there is no reading."""
        import cv2

        z = np.asarray(z_m, np.float32)
        H, W = z.shape
        finite = np.isfinite(z)
        zf = np.where(finite, z, 0.0).astype(np.float32)
        # flying pixels: mixed depth where a neighbour is much nearer or further
        k = np.ones((3, 3), np.uint8)
        near = cv2.erode(np.where(finite, z, 1e6).astype(np.float32), k)
        far = cv2.dilate(zf, k)
        edge = finite & (far - near > self.edge_m) & (near < 1e5)
        fly = edge & (rng.random(z.shape) < self.flying_p)
        zf[fly] = (near + rng.random(z.shape).astype(np.float32) * (far - near))[fly]
        # noise
        sigma = self.rel * zf + self.quad * zf ** 2
        white = rng.standard_normal(z.shape).astype(np.float32)
        corr = cv2.GaussianBlur(rng.standard_normal(z.shape).astype(np.float32), (0, 0), self.corr_px)
        corr /= max(float(corr.std()), 1e-6)
        out = zf * float(rng.normal(1.0, self.scale_sd)) + sigma * np.sqrt(0.5) * (white + corr)
        # holes
        holes = ~finite | (rng.random(z.shape) < self.hole_p) | (zf > self.max_range_m)
        mask = np.zeros(z.shape, np.uint8)
        for _ in range(self.hole_blobs):
            centre = (int(rng.integers(0, W)), int(rng.integers(0, H)))
            axes = tuple(int(a) for a in rng.uniform(*self.hole_radius_px, 2))
            cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        holes |= mask.astype(bool)
        out[holes] = 0.0
        return (np.round(np.clip(out, 0.0, 65.535) * 1000.0) / 1000.0).astype(np.float32)


def to_16uc1(z_m: np.ndarray) -> tuple[bytes, int]:
    """(H, W) metres (0 = no reading) -> (REP-118 16UC1 little-endian millimetre bytes, step)."""
    mm = np.round(np.clip(z_m, 0.0, 65.535) * 1000.0).astype("<u2")
    return mm.tobytes(), mm.shape[1] * 2
