"""Keypoints -> SMPL rotations: an SMPLR-style lifter + MLP regressor, or a TFPose-style head.

Input: the 15 keypoints of ``keypoints.KEYPOINT_NAMES`` in 3D (camera optical axes: x right,
y down, z forward; any scale and origin, e.g. BlazePose world landmarks) and/or their 2D image
coordinates (pixels) with the person box, and a visibility mask. Without 3D (MoveNet's COCO-17
keypoints: 2D only, no feet) the 3D input is the 2D points with depth 0 (``depth_unknown``) and
the feet are hidden. ``normalise_inputs``
makes them root-relative (minus the mid-hip), divides by the torso length (mid-hip to
mid-shoulder) and maps the 2D points into the box ([-1, 1]); invisible keypoints are zeroed.

Output: 24 SMPL local rotations (6D -> matrices via ``core.geometry.rot6d_to_matrix``); joint 0
is the global orientation in the CAMERA OPTICAL frame (a body facing the camera upright has
global orientation ~ a 180 deg rotation about x).

Architectures (``RegressorConfig.arch``):
- ``"mlp"`` (after SMPLR, Madadi et al. 2018): a denoising lifter MLP (noisy/masked keypoints
  -> clean normalised 3D keypoints; trained with joint masking and gaussian noise like SMPLR's
  denoising autoencoder) followed by an MLP from the denoised keypoints and their normalised
  bone vectors to 24 x 6D.
- ``"tfpose"`` (after TFPose, Mao et al. 2021): keypoint tokens through a small transformer
  encoder; one learned query per SMPL joint in a transformer decoder; every decoder layer
  predicts a 6D refinement added to the previous estimate (loss at every layer).
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chatpose_ros.core.body import NUM_JOINTS
from chatpose_ros.core.errors import CheckpointError, ConfigError, ModelLoadError
from chatpose_ros.core.geometry import matrix_to_rot6d, rot6d_to_matrix
from chatpose_ros.perception.keypoints import KEYPOINT_EDGES, KEYPOINT_NAMES, NUM_KEYPOINTS

log = logging.getLogger(__name__)

ARCHS = ("mlp", "tfpose")
_KP = {n: i for i, n in enumerate(KEYPOINT_NAMES)}
HIPS = (_KP["left_hip"], _KP["right_hip"])
SHOULDERS = (_KP["left_shoulder"], _KP["right_shoulder"])
FEATURES_PER_KEYPOINT = 6  # 3D (3) + 2D (2) + visibility (1)
ROT6D = 6
_EPS = 1e-6
# Fallback scale when hips or shoulders are all hidden: RMS distance of the visible keypoints
# from the root divided by this (the ratio on the SMPL rest body, T-pose ~0.9, arms down ~0.8).
RMS_TO_TORSO = 0.85
BOX_MARGIN = 0.1  # box from keypoints: enlarged by this fraction of its size on each side


@dataclass(frozen=True)
class RegressorConfig:
    """Architecture of SmplRegressor (stored in the JSON beside the weights)."""

    arch: str = "mlp"          # "mlp" (SMPLR-style) or "tfpose"
    hidden: int = 512          # mlp: width of the lifter and regressor MLPs
    lifter_blocks: int = 2     # mlp: residual blocks in the lifter
    regressor_blocks: int = 2  # mlp: residual blocks in the regressor
    d_model: int = 128         # tfpose: token width
    encoder_layers: int = 2    # tfpose: self-attention layers over keypoint tokens
    decoder_layers: int = 3    # tfpose: decoder layers (one 6D refinement each)
    heads: int = 4             # tfpose: attention heads
    ff_mult: int = 2           # tfpose: feed-forward width / d_model

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown regressor arch {self.arch!r}; expected one of {ARCHS}")

    @classmethod
    def from_dict(cls, d: dict) -> "RegressorConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise CheckpointError(f"unknown regressor config keys {sorted(unknown)}")
        return cls(**d)


# --------------------------------------------------------------------------- normalisation


def _pair_mean(x: torch.Tensor, vis: torch.Tensor, pair: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Visibility-weighted mean of two keypoints: (B, K, D), (B, K) -> (B, D), (B,) weight."""
    w = vis[:, list(pair)]
    s = w.sum(1)
    return (x[:, list(pair)] * w[..., None]).sum(1) / s.clamp_min(_EPS)[:, None], s


def _box_normalise(pts: torch.Tensor, vis: torch.Tensor, box: torch.Tensor | None) -> torch.Tensor:
    """(B, K, 2) points, (B, K) vis, (B, 4) xyxy box or None -> (B, K, 2) in [-1, 1] of the box."""
    if box is None:
        big = torch.finfo(pts.dtype).max
        lo = torch.where(vis[..., None] > 0, pts, torch.full_like(pts, big)).amin(1)
        hi = torch.where(vis[..., None] > 0, pts, torch.full_like(pts, -big)).amax(1)
        any_vis = vis.sum(1, keepdim=True) > 0
        lo = torch.where(any_vis, lo, torch.zeros_like(lo))
        hi = torch.where(any_vis, hi, torch.ones_like(hi))
        size = hi - lo
        lo, hi = lo - BOX_MARGIN * size, hi + BOX_MARGIN * size
    else:
        lo, hi = box[:, :2], box[:, 2:]
    centre = 0.5 * (lo + hi)
    half = 0.5 * (hi - lo).amax(1, keepdim=True).clamp_min(_EPS)
    return (pts - centre[:, None]) / half[:, None] * vis[..., None]


def depth_unknown(kp2d: torch.Tensor) -> torch.Tensor:
    """(B, 15, 2) pixels -> (B, 15, 3) the 3D input when no model gives 3D keypoints: the image
    points with depth 0 (x right, y down like the camera optical axes; scale is normalised away).
    The regressor is trained with this input (``NoiseModel.no3d_prob``) and lifts the depth."""
    return torch.cat([kp2d, torch.zeros_like(kp2d[..., :1])], -1)


def normalise_inputs(
    kp3d: torch.Tensor | None, kp2d: torch.Tensor | None = None, box: torch.Tensor | None = None,
    visibility: torch.Tensor | None = None,
) -> torch.Tensor:
    """Model features from raw keypoints.

    Args:
        kp3d: (B, 15, 3) camera optical axes, any scale/origin; or None when only 2D keypoints
            exist (then ``depth_unknown(kp2d)``).
        kp2d: (B, 15, 2) pixels, or None (then the 3D x, y are used as an orthographic image).
        box: (B, 4) person box xyxy in pixels, or None (box of the visible 2D points).
        visibility: (B, 15) in [0, 1] (>0.5 = visible), or None (all visible).
    Returns:
        (B, 15, 6): root-relative torso-normalised 3D (3), box-normalised 2D (2), visibility (1);
        invisible keypoints are all zeros.
    """
    if kp3d is None:
        if kp2d is None:
            raise ValueError("normalise_inputs needs 3D or 2D keypoints")
        kp3d = depth_unknown(torch.nan_to_num(kp2d))
    B = kp3d.shape[0]
    finite = torch.isfinite(kp3d).all(-1)
    vis = torch.ones(B, NUM_KEYPOINTS, dtype=kp3d.dtype) if visibility is None else (visibility > 0.5).to(kp3d.dtype)
    if kp2d is not None:
        finite = finite & torch.isfinite(kp2d).all(-1)
    vis = vis * finite.to(kp3d.dtype)
    kp3d = torch.nan_to_num(kp3d) * vis[..., None]
    all_root = (kp3d * vis[..., None]).sum(1) / vis.sum(1).clamp_min(_EPS)[:, None]
    hip, w_hip = _pair_mean(kp3d, vis, HIPS)
    root = torch.where((w_hip > 0)[:, None], hip, all_root)
    sh, w_sh = _pair_mean(kp3d, vis, SHOULDERS)
    torso = (sh - root).norm(dim=-1)
    rel = (kp3d - root[:, None]) * vis[..., None]
    rms = (rel.pow(2).sum(-1).sum(1) / vis.sum(1).clamp_min(1.0)).sqrt() / RMS_TO_TORSO
    scale = torch.where((w_hip > 0) & (w_sh > 0) & (torso > _EPS), torso, rms).clamp_min(_EPS)
    x3 = rel / scale[:, None, None]
    if kp2d is None:
        pts2 = x3[..., :2]
        box = None
    else:
        pts2 = torch.nan_to_num(kp2d)
    x2 = _box_normalise(pts2, vis, box)
    return torch.cat([x3, x2, vis[..., None]], dim=-1)


def clean_keypoints_target(kp3d_clean: torch.Tensor) -> torch.Tensor:
    """(B, 15, 3) exact keypoints -> (B, 15, 3) the lifter's target (all visible, normalised)."""
    return normalise_inputs(kp3d_clean)[..., :3]


# --------------------------------------------------------------------------- model


class _ResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


def _mlp(n_in: int, width: int, blocks: int, n_out: int) -> nn.Sequential:
    out = nn.Linear(width, n_out)
    nn.init.zeros_(out.weight)
    nn.init.zeros_(out.bias)
    return nn.Sequential(nn.Linear(n_in, width), *[_ResBlock(width) for _ in range(blocks)], nn.LayerNorm(width), out)


def _bone_vectors(kp: torch.Tensor) -> torch.Tensor:
    """(B, 15, 3) -> (B, E, 3) unit vectors along KEYPOINT_EDGES (SMPLR's normalised relative joints)."""
    a = torch.tensor([e[0] for e in KEYPOINT_EDGES])
    b = torch.tensor([e[1] for e in KEYPOINT_EDGES])
    v = kp[:, b] - kp[:, a]
    return v / v.norm(dim=-1, keepdim=True).clamp_min(_EPS)


class SmplRegressor(nn.Module):
    """Keypoints -> 24 SMPL rotations. See the module docstring and ``RegressorConfig``."""

    def __init__(self, config: RegressorConfig | None = None) -> None:
        super().__init__()
        self.config = config or RegressorConfig()
        c = self.config
        n_in = NUM_KEYPOINTS * FEATURES_PER_KEYPOINT
        # initial estimate: identity body pose facing the camera (180 deg about x), updated
        # from the training data by set_init_pose
        init = torch.eye(3).repeat(NUM_JOINTS, 1, 1)
        init[0] = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
        self.register_buffer("init6d", matrix_to_rot6d(init))  # (24, 6)
        if c.arch == "mlp":
            self.lifter = _mlp(n_in, c.hidden, c.lifter_blocks, NUM_KEYPOINTS * 3)
            n_reg = NUM_KEYPOINTS * 3 + len(KEYPOINT_EDGES) * 3 + n_in
            self.regressor = _mlp(n_reg, c.hidden, c.regressor_blocks, NUM_JOINTS * ROT6D)
        else:
            d = c.d_model
            self.kp_embed = nn.Linear(FEATURES_PER_KEYPOINT, d)
            self.kp_id = nn.Parameter(torch.randn(NUM_KEYPOINTS, d) * 0.02)
            enc = nn.TransformerEncoderLayer(d, c.heads, d * c.ff_mult, dropout=0.0, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(enc, c.encoder_layers, enable_nested_tensor=False)
            self.queries = nn.Parameter(torch.randn(NUM_JOINTS, d) * 0.02)
            self.query_pos = nn.Parameter(torch.randn(NUM_JOINTS, d) * 0.02)
            self.rot_embed = nn.Linear(ROT6D, d)
            self.decoder = nn.ModuleList(
                nn.TransformerDecoderLayer(d, c.heads, d * c.ff_mult, dropout=0.0, batch_first=True, norm_first=True)
                for _ in range(c.decoder_layers)
            )
            self.heads = nn.ModuleList(nn.Sequential(nn.LayerNorm(d), nn.Linear(d, ROT6D)) for _ in range(c.decoder_layers))
            for h in self.heads:
                nn.init.zeros_(h[1].weight)
                nn.init.zeros_(h[1].bias)

    @torch.no_grad()
    def set_init_pose(self, rotmats: torch.Tensor) -> None:
        """(24, 3, 3) initial estimate (e.g. the mean training pose, camera frame root)."""
        self.init6d.copy_(matrix_to_rot6d(rotmats.to(self.init6d.dtype)))

    def forward(self, feats: torch.Tensor) -> dict[str, torch.Tensor | list[torch.Tensor]]:
        """(B, 15, 6) normalised features -> {"rot6d": [(B, 24, 6) per refinement stage, last =
        final], "rotmats": (B, 24, 3, 3), "denoised": (B, 15, 3) (mlp only)}."""
        B = feats.shape[0]
        base = self.init6d.expand(B, NUM_JOINTS, ROT6D)
        out: dict[str, torch.Tensor | list[torch.Tensor]] = {}
        if self.config.arch == "mlp":
            flat = feats.reshape(B, -1)
            denoised = feats[..., :3] + self.lifter(flat).reshape(B, NUM_KEYPOINTS, 3)
            reg_in = torch.cat([denoised.reshape(B, -1), _bone_vectors(denoised).reshape(B, -1), flat], dim=-1)
            stages = [base + self.regressor(reg_in).reshape(B, NUM_JOINTS, ROT6D)]
            out["denoised"] = denoised
        else:
            mem = self.encoder(self.kp_embed(feats) + self.kp_id)
            tgt = self.queries.expand(B, -1, -1)
            est = base
            stages = []
            for layer, head in zip(self.decoder, self.heads):
                tgt = layer(tgt + self.query_pos + self.rot_embed(est), mem)
                est = est + head(tgt)
                stages.append(est)
        out["rot6d"] = stages
        out["rotmats"] = rot6d_to_matrix(stages[-1])
        return out

    # ----------------------------------------------------------------------- inference API

    @torch.no_grad()
    def predict(
        self, kp3d: np.ndarray | None, kp2d: np.ndarray | None = None, box: np.ndarray | None = None,
        visibility: np.ndarray | None = None,
    ) -> np.ndarray:
        """Keypoints -> (B, 24, 3, 3) float32 SMPL local rotations (root in the camera optical frame).

        Args:
            kp3d: (B, 15, 3) camera optical axes (x right, y down, z forward), any scale/origin;
                None when only 2D keypoints exist (kp2d is then required).
            kp2d: (B, 15, 2) pixels or None.
            box: (B, 4) person box xyxy (pixels) or None (box of the 2D keypoints); ignored
                without kp2d.
            visibility: (B, 15) visibility/confidence in [0, 1] or None (all visible).
        """
        if kp3d is None:
            if kp2d is None:
                raise ValueError("predict needs kp3d or kp2d")
            B = int(np.shape(kp2d)[0])
            t3 = None
        else:
            kp3d = np.asarray(kp3d, dtype=np.float32)
            if kp3d.ndim != 3 or kp3d.shape[1:] != (NUM_KEYPOINTS, 3):
                raise ValueError(f"kp3d must be (B, {NUM_KEYPOINTS}, 3), got {kp3d.shape}")
            B = kp3d.shape[0]
            t3 = torch.from_numpy(kp3d)
        t2 = tb = tv = None
        if kp2d is not None:
            kp2d = np.asarray(kp2d, dtype=np.float32)
            if kp2d.shape != (B, NUM_KEYPOINTS, 2):
                raise ValueError(f"kp2d must be ({B}, {NUM_KEYPOINTS}, 2), got {kp2d.shape}")
            t2 = torch.from_numpy(kp2d)
            if box is not None:
                box = np.asarray(box, dtype=np.float32)
                if box.shape != (B, 4):
                    raise ValueError(f"box must be ({B}, 4), got {box.shape}")
                tb = torch.from_numpy(box)
        if visibility is not None:
            visibility = np.asarray(visibility, dtype=np.float32)
            if visibility.shape != (B, NUM_KEYPOINTS):
                raise ValueError(f"visibility must be ({B}, {NUM_KEYPOINTS}), got {visibility.shape}")
            tv = torch.from_numpy(visibility)
        was_training = self.training
        if was_training:  # eval() / train() walk every module: about 1 ms a call, for nothing when loaded for inference
            self.eval()
        try:
            feats = normalise_inputs(t3, t2, tb, tv)
            rot = self(feats.to(self.init6d.dtype))["rotmats"]
        finally:
            if was_training:
                self.train()
        return rot.float().numpy()

    # ----------------------------------------------------------------------- persistence

    def save(self, path: str | Path, extra: dict | None = None) -> None:
        """Write ``path`` (.safetensors) and the JSON config (+ ``extra``) beside it."""
        from safetensors.torch import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(path))
        meta = {"format": "chatpose_ros.smpl_regressor", "version": 1, "config": asdict(self.config)}
        meta.update(extra or {})
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "SmplRegressor":
        """Load weights (.safetensors) and the JSON config beside them.

        Raises ModelLoadError when a file is missing, CheckpointError when the files are
        malformed or do not match the architecture.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = Path(path).expanduser()
        cfg_path = path.with_suffix(".json")
        for p in (path, cfg_path):
            if not p.is_file():
                raise ModelLoadError(f"regressor file not found: {p}")
        try:
            meta = json.loads(cfg_path.read_text())
            config = RegressorConfig.from_dict(meta["config"])
        except CheckpointError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"bad regressor config {cfg_path}: {exc}") from exc
        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"malformed regressor weights {path}: {exc}") from exc
        model = cls(config)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"regressor weights {path} do not match its config: {exc}") from exc
        model.eval()
        log.info("SMPL regressor (%s) loaded from %s", config.arch, path)
        return model
