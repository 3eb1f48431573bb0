"""Train the keypoints -> SMPL regressor on retargeted CMU mocap seen by random cameras.

Usage (the shipped weights)::

    python -m chatpose_ros.models.default.offline.train_regressor --seed 0 --steps 4000 --arch mlp \
        --threads 1 --out chatpose_ros/assets/default

Data: ``mocap.load_mocap('train')`` (01_03 + Boxing_Toes, plus left/right mirrored copies),
evaluated on the held-out ``'test'`` split (01_01). Each training sample puts a pose in front of
a random camera (yaw all around, pitch +-20 deg, roll +-5 deg; canonical y-up body -> camera
optical frame y-down via a 180 deg turn about x), projects it with a random focal length, and
corrupts the keypoints with ``NoiseModel`` (BlazePose-like world landmarks, or MoveNet-like 2D
keypoints only with the feet hidden).
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chatpose_ros.core.body import NUM_JOINTS, SMPL_JOINT_NAMES, forward_kinematics
from chatpose_ros.core.errors import ConfigError
from chatpose_ros.core.geometry import axis_angle_to_matrix
from chatpose_ros.core.metrics import mpjpe_mm, pa_mpjpe_mm
from chatpose_ros.models.default.offline.mocap import MocapSet, load_mocap
from chatpose_ros.models.default.pipeline import REGRESSOR_FILE
from chatpose_ros.perception.keypoints import KEYPOINT_NAMES, NUM_KEYPOINTS, smpl_to_keypoints_torch
from chatpose_ros.perception.regressor import (ARCHS, HIPS, RegressorConfig, SmplRegressor, depth_unknown,
                                               normalise_inputs)

log = logging.getLogger(__name__)

DEFAULT_OUT = "chatpose_ros/assets/default"
WEIGHTS_NAME = REGRESSOR_FILE
EVAL_SEED = 1234  # fixed camera views and noise for the held-out evaluation
FEET = tuple(KEYPOINT_NAMES.index(n) for n in ("left_foot", "right_foot"))
LOWER_LEGS = tuple(KEYPOINT_NAMES.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle",
                                                      "left_foot", "right_foot"))
_MIRROR = torch.diag(torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64))
_FLIP_X = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # canonical y-up -> optical y-down, facing camera


@dataclass(frozen=True)
class NoiseModel:
    """Keypoint corruption expected from MediaPipe world landmarks (per-sample magnitudes are
    drawn uniformly in [0, max])."""

    sigma3d_m: float = 0.03       # max std of gaussian 3D noise (m)
    sigma2d_frac: float = 0.02    # max std of 2D noise as a fraction of the box size
    max_occluded: int = 3         # 0..max keypoints hidden (visibility 0, coordinates zeroed)
    hip_offset_prob: float = 0.5  # chance of MediaPipe's lower/wider hip landmarks
    hip_down_m: float = 0.06      # max downward hip landmark offset (m)
    hip_out_m: float = 0.04       # max outward hip landmark offset (m)
    no2d_prob: float = 0.2        # chance of no 2D input (predict(kp2d=None) path)
    box_jitter_frac: float = 0.05 # max person-box jitter as a fraction of its size
    no3d_prob: float = 0.6        # chance of 2D keypoints only (MoveNet COCO-17): 3D input = depth_unknown(2D)
    feet_hidden_prob: float = 0.6 # chance of no foot keypoints (COCO-17 has none)
    lower_cut_prob: float = 0.1   # chance of a person cut at the hips (knees, ankles, feet hidden)


# The noise the regressor shipped before the COCO-17 perception was trained with (MediaPipe-like
# world landmarks, every keypoint layer present): the "noisy" evaluation condition.
MEDIAPIPE_NOISE = NoiseModel(no3d_prob=0.0, feet_hidden_prob=0.0, lower_cut_prob=0.0)
# What the MoveNet perception gives: 2D only, no feet.
COCO17_2D_NOISE = NoiseModel(no2d_prob=0.0, no3d_prob=1.0, feet_hidden_prob=1.0, lower_cut_prob=0.0)
# held-out evaluation conditions: name -> noise (None = exact keypoints, 3D and 2D)
EVAL_CONDITIONS: dict[str, NoiseModel | None] = {"clean": None, "noisy": MEDIAPIPE_NOISE, "coco17_2d": COCO17_2D_NOISE}


@dataclass(frozen=True)
class ViewSampler:
    """Random cameras looking at the person."""

    max_pitch_deg: float = 20.0
    max_roll_deg: float = 5.0
    depth_m: tuple[float, float] = (2.5, 6.0)
    focal_px: tuple[float, float] = (500.0, 1500.0)
    image_wh: tuple[int, int] = (640, 480)
    max_offcentre: float = 0.3    # lateral offset of the person / depth


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 4000  # the shipped weights (the 2D-only / hidden-feet inputs need more than 1500)
    batch: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup: int = 100
    w_rot: float = 1.0       # L1 on rotation matrices
    w_joints: float = 100.0  # MSE on FK joints (m^2); the term that matters most
    w_lifter: float = 1.0    # L1 of the denoised keypoints (mlp)
    seed: int = 0
    fps: float = 30.0
    grad_clip: float = 1.0


# --------------------------------------------------------------------------- data


def mirror_rotmats(rotmats: torch.Tensor) -> torch.Tensor:
    """(N, 24, 3, 3) local rotations -> the left/right mirrored pose (x -> -x)."""
    swapped = (n.replace("left", "@").replace("right", "left").replace("@", "right") for n in SMPL_JOINT_NAMES)
    perm = [SMPL_JOINT_NAMES.index(n) for n in swapped]
    M = _MIRROR.to(rotmats.dtype)
    return M @ rotmats[:, perm] @ M


@dataclass(frozen=True)
class PoseBank:
    """Canonical poses ready for sampling: rotmats (N, 24, 3, 3), joints (N, 24, 3),
    keypoints (N, 15, 3), all float64 torch, canonical frame (y up)."""

    rotmats: torch.Tensor
    joints: torch.Tensor
    keypoints: torch.Tensor

    @classmethod
    def from_mocap(cls, ms: MocapSet, mirror: bool) -> "PoseBank":
        rot = torch.as_tensor(ms.rotmats, dtype=torch.float64)
        if mirror:
            rot = torch.cat([rot, mirror_rotmats(rot)])
        joints = forward_kinematics(rot)
        return cls(rot, joints, smpl_to_keypoints_torch(joints, rot))

    def __len__(self) -> int:
        return self.rotmats.shape[0]


def sample_views(n: int, gen: torch.Generator, views: ViewSampler) -> torch.Tensor:
    """(n, 3, 3) rotations canonical -> camera optical frame: R = Rz(roll) Rx(pitch) Rx(180) Ry(yaw)."""
    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen, dtype=torch.float64)

    yaw = u(-math.pi, math.pi)
    pitch = torch.deg2rad(u(-views.max_pitch_deg, views.max_pitch_deg))
    roll = torch.deg2rad(u(-views.max_roll_deg, views.max_roll_deg))
    z = torch.zeros(n, dtype=torch.float64)

    def aa(axis: int, ang: torch.Tensor) -> torch.Tensor:
        v = torch.stack([ang if i == axis else z for i in range(3)], -1)
        return axis_angle_to_matrix(v)

    return aa(2, roll) @ aa(0, pitch) @ _FLIP_X @ aa(1, yaw)


def synth_batch(
    bank: PoseBank, idx: torch.Tensor, gen: torch.Generator, noise: NoiseModel | None,
    views: ViewSampler = ViewSampler(),
) -> dict[str, torch.Tensor]:
    """A batch of camera-frame samples.

    Returns feats (B, 15, 6) float32 model inputs, rotmats (B, 24, 3, 3) float32 targets (root in
    the camera optical frame), joints (B, 24, 3) float32 FK of the targets (pelvis at 0, m),
    clean (B, 15, 3) float32 normalised clean keypoints (the lifter's target).
    """
    B = idx.shape[0]
    dt = torch.float64
    Rv = sample_views(B, gen, views)
    rot = bank.rotmats[idx].clone()
    rot[:, 0] = Rv @ rot[:, 0]
    joints = torch.einsum("bij,bkj->bki", Rv, bank.joints[idx])
    kp = torch.einsum("bij,bkj->bki", Rv, bank.keypoints[idx])  # clean, pelvis-relative, camera axes
    depth = views.depth_m[0] + (views.depth_m[1] - views.depth_m[0]) * torch.rand(B, generator=gen, dtype=dt)
    off = (2 * torch.rand(B, 2, generator=gen, dtype=dt) - 1) * views.max_offcentre * depth[:, None]
    trans = torch.cat([off, depth[:, None]], -1)
    focal = views.focal_px[0] + (views.focal_px[1] - views.focal_px[0]) * torch.rand(B, generator=gen, dtype=dt)
    centre = torch.tensor(views.image_wh, dtype=dt) / 2

    def project(p: torch.Tensor) -> torch.Tensor:
        return focal[:, None, None] * p[..., :2] / p[..., 2:].clamp_min(0.1) + centre

    kp_cam = kp + trans[:, None]
    kp2d = project(kp_cam)
    lo, hi = kp2d.amin(1), kp2d.amax(1)
    size = (hi - lo).amax(1, keepdim=True)
    lo, hi = lo - 0.1 * size, hi + 0.1 * size
    vis = torch.ones(B, NUM_KEYPOINTS, dtype=dt)
    kp3d_in, no2d = kp_cam, torch.zeros(B, dtype=torch.bool)
    if noise is not None:
        jit = (2 * torch.rand(B, 4, generator=gen, dtype=dt) - 1) * noise.box_jitter_frac * size
        lo, hi = lo + jit[:, :2], hi + jit[:, 2:]
        # MediaPipe hips: lower and wider, in the body's frame (pelvis world rotation)
        use = (torch.rand(B, generator=gen, dtype=dt) < noise.hip_offset_prob).to(dt)
        down = noise.hip_down_m * torch.rand(B, generator=gen, dtype=dt) * use
        out = noise.hip_out_m * torch.rand(B, generator=gen, dtype=dt) * use
        z = torch.zeros_like(down)
        hip_off = torch.stack([torch.stack([out, -down, z], -1), torch.stack([-out, -down, z], -1)], 1)  # (B, 2, 3) body frame
        hip_off = torch.einsum("bij,bkj->bki", rot[:, 0], hip_off)
        kp_det = kp_cam.clone()
        kp_det[:, list(HIPS)] = kp_det[:, list(HIPS)] + hip_off
        s3 = noise.sigma3d_m * torch.rand(B, 1, 1, generator=gen, dtype=dt)
        kp3d_in = kp_det + s3 * torch.randn(kp_det.shape, generator=gen, dtype=dt)
        kp2d = project(kp_det)  # 2D landmarks: own noise below, the same hip offset
        s2 = noise.sigma2d_frac * size[:, :, None] * torch.rand(B, 1, 1, generator=gen, dtype=dt)
        kp2d = kp2d + s2 * torch.randn(kp2d.shape, generator=gen, dtype=dt)
        n_occ = torch.randint(0, noise.max_occluded + 1, (B,), generator=gen)
        order = torch.rand(B, NUM_KEYPOINTS, generator=gen).argsort(1)
        rank = order.argsort(1)
        vis = (rank >= n_occ[:, None]).to(dt)
        no2d = torch.rand(B, generator=gen) < noise.no2d_prob
        # 2D-only perception: the 3D input is the 2D points with depth 0; such samples keep 2D
        no3d = torch.rand(B, generator=gen) < noise.no3d_prob
        no2d = no2d & ~no3d
        feet = torch.rand(B, generator=gen) < noise.feet_hidden_prob
        vis[:, list(FEET)] = vis[:, list(FEET)] * (~feet[:, None]).to(dt)
        cut = torch.rand(B, generator=gen) < noise.lower_cut_prob
        vis[:, list(LOWER_LEGS)] = vis[:, list(LOWER_LEGS)] * (~cut[:, None]).to(dt)
        # any scale/origin: MediaPipe world landmarks are hip-centred metres; other sources differ
        scale = torch.exp((2 * torch.rand(B, 1, 1, generator=gen, dtype=dt) - 1) * 0.3)
        kp3d_in = kp3d_in * scale
        kp3d_in = torch.where(no3d[:, None, None], depth_unknown(kp2d), kp3d_in)
    box = torch.cat([lo, hi], -1)
    feats = normalise_inputs(kp3d_in, kp2d, box, vis)
    if no2d.any():
        feats_no2d = normalise_inputs(kp3d_in, None, None, vis)
        feats = torch.where(no2d[:, None, None], feats_no2d, feats)
    clean = normalise_inputs(kp_cam)[..., :3]
    return {
        "feats": feats.float(), "rotmats": rot.float(), "joints": joints.float(), "clean": clean.float(),
    }


# --------------------------------------------------------------------------- training


def mean_body_pose(rotmats: torch.Tensor) -> torch.Tensor:
    """(N, 24, 3, 3) -> (24, 3, 3) chordal mean of each joint's local rotation (SVD projection)."""
    m = rotmats.double().mean(0)
    U, _, Vt = torch.linalg.svd(m)
    d = torch.sign(torch.linalg.det(U @ Vt))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    return (U @ D @ Vt).float()


def compute_loss(model: SmplRegressor, batch: dict[str, torch.Tensor], cfg: TrainConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over refinement stages of w_rot * L1(R) + w_joints * MSE(FK joints); + lifter L1."""
    from chatpose_ros.core.geometry import rot6d_to_matrix

    out = model(batch["feats"])
    total = torch.zeros(())
    parts: dict[str, float] = {}
    for i, r6 in enumerate(out["rot6d"]):  # type: ignore[union-attr]
        R = rot6d_to_matrix(r6)
        l_rot = (R - batch["rotmats"]).abs().mean()
        l_j = F.mse_loss(forward_kinematics(R), batch["joints"])
        total = total + cfg.w_rot * l_rot + cfg.w_joints * l_j
        parts = {"rot": l_rot.item(), "joints_mse": l_j.item()}
    if "denoised" in out:
        l_lift = (out["denoised"] - batch["clean"]).abs().mean()  # type: ignore[operator]
        total = total + cfg.w_lifter * l_lift
        parts["lifter"] = l_lift.item()
    parts["total"] = total.item()
    return total, parts


def train(
    arch: str, bank: PoseBank, cfg: TrainConfig, model_cfg: RegressorConfig | None = None,
    noise: NoiseModel = NoiseModel(), progress: bool = True,
) -> tuple[SmplRegressor, list[float]]:
    """Train one regressor from scratch (seeded); returns the model (eval mode) and the loss per step."""
    from tqdm import tqdm

    torch.manual_seed(cfg.seed)
    model_cfg = replace(model_cfg or RegressorConfig(), arch=arch)
    model = SmplRegressor(model_cfg)
    init = mean_body_pose(bank.rotmats)
    init[0] = _FLIP_X.float()  # upright, facing the camera
    model.set_init_pose(init)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(cfg.seed)
    losses: list[float] = []
    model.train()
    bar = tqdm(range(cfg.steps), desc=f"train {arch}", disable=not progress, mininterval=2.0)
    for step in bar:
        idx = torch.randint(0, len(bank), (cfg.batch,), generator=gen)
        batch = synth_batch(bank, idx, gen, noise)
        loss, parts = compute_loss(model, batch, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        losses.append(parts["total"])
        if step % 50 == 0:
            bar.set_postfix(loss=f"{parts['total']:.4f}", j=f"{math.sqrt(parts['joints_mse']) * 1000:.0f}mm")
    model.eval()
    return model, losses


# --------------------------------------------------------------------------- evaluation


def make_eval_batch(bank: PoseBank, condition: str, seed: int = EVAL_SEED) -> dict[str, torch.Tensor]:
    """Fixed camera views (and the noise of ``EVAL_CONDITIONS[condition]``) for every pose of ``bank``."""
    if condition not in EVAL_CONDITIONS:
        raise ConfigError(f"unknown evaluation condition {condition!r}: expected one of {sorted(EVAL_CONDITIONS)}")
    gen = torch.Generator().manual_seed(seed)
    return synth_batch(bank, torch.arange(len(bank)), gen, EVAL_CONDITIONS[condition])


def eval_batches(bank: PoseBank) -> dict[str, dict[str, torch.Tensor]]:
    """Every held-out evaluation condition of ``bank``: name -> batch."""
    return {c: make_eval_batch(bank, c) for c in EVAL_CONDITIONS}


@torch.no_grad()
def evaluate(model: SmplRegressor, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    """MPJPE / PA-MPJPE (mm) of FK(predicted rotations) vs FK(true rotations)."""
    model.eval()
    pred = forward_kinematics(model(batch["feats"])["rotmats"]).numpy()
    true = batch["joints"].numpy()
    return {"mpjpe_mm": mpjpe_mm(pred, true), "pa_mpjpe_mm": pa_mpjpe_mm(pred, true)}


def baselines(batch: dict[str, torch.Tensor], mean_body: torch.Tensor) -> dict[str, dict[str, float]]:
    """Mean training body pose / identity body pose, both with the TRUE global orientation."""
    true = batch["joints"].numpy()
    out = {}
    for name, body in (("mean_pose", mean_body), ("identity_pose", torch.eye(3).expand(NUM_JOINTS, 3, 3))):
        rot = body.expand(true.shape[0], NUM_JOINTS, 3, 3).clone()
        rot[:, 0] = batch["rotmats"][:, 0]
        pred = forward_kinematics(rot).numpy()
        out[name] = {"mpjpe_mm": mpjpe_mm(pred, true), "pa_mpjpe_mm": pa_mpjpe_mm(pred, true)}
    return out


# --------------------------------------------------------------------------- CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seed", type=int, default=0, help="seed of weights, sampling and noise")
    p.add_argument("--steps", type=int, default=TrainConfig.steps, help="optimiser steps per architecture")
    p.add_argument("--batch", type=int, default=TrainConfig.batch, help="batch size")
    p.add_argument("--out", default=DEFAULT_OUT, help="output folder for regressor.safetensors/.json")
    p.add_argument("--arch", default="mlp", choices=(*ARCHS, "both"),
                   help="architecture(s) to train; with 'both' the better on held-out mocap is kept")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--cache-dir", default=None, help="mocap cache folder (default ~/.cache/chatpose_ros/mocap)")
    p.add_argument("--compare", nargs="+", type=Path, default=None, metavar="WEIGHTS",
                   help="train nothing: evaluate these regressor.safetensors files side by side on the held-out conditions")
    return p


def compare(paths: list[Path], evals: dict[str, dict[str, torch.Tensor]]) -> int:
    """Print a table of MPJPE / PA-MPJPE (mm) of each weights file on each held-out condition."""
    conds = list(evals)
    print("| weights | " + " | ".join(f"{c} MPJPE / PA-MPJPE (mm)" for c in conds) + " |")
    print("|---|" + "---|" * len(conds))
    for path in paths:
        model = SmplRegressor.load(path)
        cells = []
        for c in conds:
            r = evaluate(model, evals[c])
            cells.append(f"{r['mpjpe_mm']:.1f} / {r['pa_mpjpe_mm']:.1f}")
        print(f"| {path} | " + " | ".join(cells) + " |")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.steps <= 0:
        raise ConfigError("--steps must be > 0")
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    cfg = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed)
    train_bank = PoseBank.from_mocap(load_mocap("train", cfg.fps, args.cache_dir), mirror=True)
    test_bank = PoseBank.from_mocap(load_mocap("test", cfg.fps, args.cache_dir), mirror=False)
    log.info("train poses %d (with mirrors), held-out test poses %d", len(train_bank), len(test_bank))
    evals = eval_batches(test_bank)
    if args.compare:
        return compare(args.compare, evals)
    mean_body = mean_body_pose(train_bank.rotmats)
    results: dict[str, dict] = {"baselines": {k: baselines(b, mean_body) for k, b in evals.items()}}
    archs = ARCHS if args.arch == "both" else (args.arch,)
    models = {}
    for arch in archs:
        t0 = time.time()
        model, losses = train(arch, train_bank, cfg)
        models[arch] = model
        results[arch] = {k: evaluate(model, b) for k, b in evals.items()}
        results[arch]["train_seconds"] = round(time.time() - t0, 1)
        results[arch]["params"] = sum(p.numel() for p in model.parameters())
        results[arch]["final_loss"] = float(np.mean(losses[-50:]))
        log.info("%s: %s", arch, json.dumps(results[arch]))
    best = min(archs, key=lambda a: results[a]["noisy"]["mpjpe_mm"] + results[a]["clean"]["mpjpe_mm"])
    out = Path(args.out)
    extra = {
        "selected": best, "selection": "lowest clean + noisy MPJPE on held-out 01_01",
        "results": results, "train_config": asdict(cfg), "noise_model": asdict(NoiseModel()),
        "views": asdict(ViewSampler()), "eval_seed": EVAL_SEED,
        "eval_conditions": {k: None if v is None else asdict(v) for k, v in EVAL_CONDITIONS.items()},
        "command": "python -m chatpose_ros.models.default.offline.train_regressor "
                   + " ".join(argv if argv is not None else sys.argv[1:]),
        "train_data": "CMU mocap 01_03 + Boxing_Toes (assimp-testmodels), mirrored; test: 01_01",
    }
    models[best].save(out / WEIGHTS_NAME, extra)
    log.info("kept %s -> %s", best, out / WEIGHTS_NAME)
    log.info("results: %s", json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
