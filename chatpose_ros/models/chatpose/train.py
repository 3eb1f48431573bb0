"""`chatpose-train`: LoRA fine-tuning of ChatPose (the training code upstream never released).

As in the paper and LISA (whose code ChatPose builds on), by default: vision tower and projector
frozen, LoRA (r=128, alpha=256) on `q_proj,v_proj`, the token embeddings, the LM head and the pose
head trained fully (the new pose token needs its own embedding); loss = cross-entropy on answer
tokens + `pose_loss_weight` x L1 between predicted and true rotation matrices, averaged over the
global orientation and over the 23 body joints separately and summed; the pose head reads the
last-layer state at the position *before* the pose token (`input_ids[:, 1:] == seg_id`), exactly
where inference reads it; each conversation tokenised in one piece (the released tokenizer's ids);
batches drawn with a task mix image_to_pose : text_to_pose : chat (default 2:1:1). Each of these
is an option (`TrainConfig`, `--lora-targets`, `--rotation-loss`, `--piecewise-prompt`).
Outputs (safetensors): the PEFT adapter (`adapter_model.safetensors`, `adapter_config.json`)
and `pose_head.safetensors` in `--out`, usable as `PipelineConfig.lora_adapter` or merged with
`chatpose-merge-lora`. Data format: see `data.py`.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from chatpose_ros.core.body import theta_to_rotmats
from chatpose_ros.core.errors import ChatPoseError, ConfigError

from .checkpoints import POSE_HEAD_FILE, _save_safetensors, load_checkpoint
from .data import IGNORE_INDEX, TASKS, Sample, expand_image_positions, load_image, load_jsonl, tokenize_conversation
from .model import IMAGE_TOKEN_INDEX, ChatPoseModel

log = logging.getLogger(__name__)

LORA_TARGETS = ("q_proj", "v_proj")  # LISA / ChatPose
ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
FULLY_TRAINED = ("embed_tokens", "lm_head")
ROTATION_LOSSES = ("split", "mean")
GLOBAL_ORIENT_JOINTS = 1  # joint 0 of the 24 is the global orientation


@dataclass(frozen=True)
class TrainConfig:
    """Training options (defaults: the paper's)."""

    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    lr: float = 2e-4
    weight_decay: float = 0.0
    epochs: int = 1
    batch: int = 2
    pose_loss_weight: float = 0.1
    task_mix: tuple[float, float, float] = (2.0, 1.0, 1.0)
    seed: int = 0
    max_steps: int = 0  # 0 = epochs x (samples / batch)
    # trained fully, as LISA/ChatPose do: the new pose token needs its own embedding and logit row
    train_embeddings: bool = True
    grad_clip: float = 1.0
    lora_targets: tuple[str, ...] = LORA_TARGETS
    # "split": L1 averaged over the global orientation and over the body joints separately, summed
    # (upstream); "mean": one average over all 24 joints
    rotation_loss: str = "split"
    one_piece_prompt: bool = True  # tokenise each conversation in one piece (upstream)

    def __post_init__(self) -> None:
        if self.rotation_loss not in ROTATION_LOSSES:
            raise ConfigError(f"rotation_loss must be one of {ROTATION_LOSSES}, got {self.rotation_loss!r}")
        if not self.lora_targets:
            raise ConfigError("lora_targets must name at least one module")


def rotation_l1(pred: torch.Tensor, target: torch.Tensor, mode: str = "split") -> torch.Tensor:
    """L1 between (B, 24, 3, 3) rotation matrices; joint 0 is the global orientation.

    "split": mean over the global orientation + mean over the body joints (upstream);
    "mean": one mean over all joints."""
    if mode == "mean":
        return F.l1_loss(pred, target)
    if mode != "split":
        raise ConfigError(f"rotation loss {mode!r} not in {ROTATION_LOSSES}")
    g = GLOBAL_ORIENT_JOINTS
    return F.l1_loss(pred[:, :g], target[:, :g]) + F.l1_loss(pred[:, g:], target[:, g:])


def pose_state_positions(ids: list[int], pose_token_id: int) -> list[int]:
    """Positions whose last-layer state feeds the pose head: the one *before* each pose token
    (upstream `input_ids[:, 1:] == seg_id`, i.e. the state whose logits predict the pose token)."""
    return [i - 1 for i, t in enumerate(ids) if t == pose_token_id and i > 0]


def parse_task_mix(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(":"))
    except ValueError:
        parts = ()
    if len(parts) != len(TASKS) or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise ConfigError(f"--task-mix must be three non-negative numbers a:b:c for {TASKS}, got {text!r}")
    return parts  # type: ignore[return-value]


class TaskMixSampler:
    """Draws samples: first a task by the mix weights (over tasks present), then a sample."""

    def __init__(self, samples: list[Sample], mix: tuple[float, ...], seed: int) -> None:
        self.by_task = {t: [s for s in samples if s.task == t] for t in TASKS}
        self.tasks = [t for t in TASKS if self.by_task[t] and mix[TASKS.index(t)] > 0]
        if not self.tasks:
            raise ConfigError("no training samples for any task with a non-zero mix weight")
        self.weights = [mix[TASKS.index(t)] for t in self.tasks]
        self.rng = random.Random(seed)

    def draw(self, n: int) -> list[Sample]:
        tasks = self.rng.choices(self.tasks, weights=self.weights, k=n)
        return [self.rng.choice(self.by_task[t]) for t in tasks]


def batch_loss(model: ChatPoseModel, lm, samples: list[Sample], pose_loss_weight: float, *,
               rotation_loss: str = "split", one_piece: bool = True) -> tuple[torch.Tensor, dict]:
    """CE on answer tokens + weight x L1(rotation matrices) for one batch.

    Returns (loss, parts) with parts = {"ce": float, "pose": float}.
    """
    dev, dt = model.device, model.dtype
    n_img = model.num_image_tokens
    embeds, labels, pos_ids = [], [], []
    for s in samples:
        ids, lab = tokenize_conversation(model, s, one_piece=one_piece)
        feats = None
        if s.image is not None:
            with torch.no_grad():
                feats = model.encode_images(model.preprocessor(load_image(s.image)))
        embeds.append(model.embed_ids(ids, feats))
        exp_ids = expand_image_positions(ids, n_img, IMAGE_TOKEN_INDEX)
        exp_lab: list[int] = []
        for t, label in zip(ids, lab):
            exp_lab.extend([IGNORE_INDEX] * n_img if t == IMAGE_TOKEN_INDEX else [label])
        labels.append(exp_lab)
        pos_ids.append(exp_ids)
    T = max(e.shape[0] for e in embeds)
    B = len(samples)
    x = torch.zeros(B, T, embeds[0].shape[1], dtype=dt, device=dev)
    mask = torch.zeros(B, T, dtype=torch.long, device=dev)
    y = torch.full((B, T), IGNORE_INDEX, dtype=torch.long, device=dev)
    for b, e in enumerate(embeds):
        x[b, : e.shape[0]] = e
        mask[b, : e.shape[0]] = 1
        y[b, : e.shape[0]] = torch.tensor(labels[b], device=dev)
    out = lm(inputs_embeds=x, attention_mask=mask, output_hidden_states=True, use_cache=False)
    logits = out.logits[:, :-1].float()
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX)
    last = out.hidden_states[-1]
    hid, target = [], []
    for b, s in enumerate(samples):
        if s.theta is None:
            continue
        positions = pose_state_positions(pos_ids[b], model.pose_token_id)
        if not positions:
            continue
        hid.append(last[b, positions[0]])  # the first pose token carries the pose of this sample
        target.append(theta_to_rotmats(torch.as_tensor(s.theta, dtype=torch.float32)[None])[0])
    pose = torch.zeros((), device=dev)
    if hid:
        pred = model.pose_head(torch.stack(hid).float())
        pose = rotation_l1(pred, torch.stack(target).to(dev), rotation_loss)
    loss = ce + pose_loss_weight * pose
    return loss, {"ce": float(ce.detach()), "pose": float(pose.detach())}


def train(data: str | Path, checkpoint: str | Path, out: str | Path, cfg: TrainConfig = TrainConfig(), *,
          device: str = "cpu", progress: bool = True) -> dict:
    """Train and save the adapter + pose head into `out`. Returns {"losses": [...], "steps": n}."""
    from peft import LoraConfig, get_peft_model
    from tqdm import tqdm

    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    samples = load_jsonl(data)
    if not samples:
        raise ConfigError(f"{data}: no samples")
    model = load_checkpoint(checkpoint, device=device, dtype="float32")
    for p in model.parameters():
        p.requires_grad_(False)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.lora_targets), task_type="CAUSAL_LM",
                      modules_to_save=list(FULLY_TRAINED) if cfg.train_embeddings else None)
    lm = get_peft_model(model.lm, lora)
    for p in model.pose_head.parameters():
        p.requires_grad_(True)
    params = [p for p in lm.parameters() if p.requires_grad] + list(model.pose_head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = TaskMixSampler(samples, cfg.task_mix, cfg.seed)
    steps = cfg.max_steps or max(1, cfg.epochs * max(1, len(samples) // cfg.batch))
    lm.train()
    model.pose_head.train()
    losses: list[float] = []
    bar = tqdm(range(steps), desc="chatpose-train", disable=not progress)
    for _step in bar:
        loss, parts = batch_loss(model, lm, sampler.draw(cfg.batch), cfg.pose_loss_weight,
                                 rotation_loss=cfg.rotation_loss, one_piece=cfg.one_piece_prompt)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.3f}", ce=f"{parts['ce']:.3f}", pose=f"{parts['pose']:.3f}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lm.save_pretrained(str(out))  # adapter_model.safetensors + adapter_config.json
    _save_safetensors(model.pose_head.state_dict(), out / POSE_HEAD_FILE)
    (out / "train_log.json").write_text(json.dumps({"losses": losses, "steps": steps, "config": cfg.__dict__}, indent=2))
    log.info("adapter and pose head saved to %s (final loss %.4f)", out, losses[-1])
    return {"losses": losses, "steps": steps}


def main(argv: list[str] | None = None) -> int:
    """`chatpose-train --data JSONL --checkpoint DIR --out DIR [...]`."""
    d = TrainConfig()
    ap = argparse.ArgumentParser(prog="chatpose-train", description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="JSONL training file (format: chatpose_ros/models/chatpose/data.py)")
    ap.add_argument("--checkpoint", required=True, help="checkpoint folder in our layout")
    ap.add_argument("--out", required=True, help="output folder for the adapter and the pose head")
    ap.add_argument("--lora-r", type=int, default=d.lora_r)
    ap.add_argument("--lora-alpha", type=int, default=d.lora_alpha)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--batch", type=int, default=d.batch)
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0 = epochs)")
    ap.add_argument("--pose-loss-weight", type=float, default=d.pose_loss_weight)
    ap.add_argument("--task-mix", default="2:1:1", help="image_to_pose:text_to_pose:chat sampling weights")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--device", default="cpu", help="'cpu', 'cuda', 'auto'")
    ap.add_argument("--lora-targets", default=",".join(LORA_TARGETS),
                    help=f"comma-separated LLM modules with LoRA (upstream: q_proj,v_proj; all: {','.join(ALL_PROJECTIONS)})")
    ap.add_argument("--rotation-loss", choices=ROTATION_LOSSES, default=d.rotation_loss,
                    help="split: L1 averaged over global orientation and body joints separately (upstream)")
    ap.add_argument("--piecewise-prompt", action="store_true",
                    help="tokenise template pieces separately instead of the whole conversation in one piece")
    ap.add_argument("--no-train-embeddings", action="store_true",
                    help="keep embed_tokens and lm_head frozen (default: trained fully, as LISA/ChatPose)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = TrainConfig(lora_r=args.lora_r, lora_alpha=args.lora_alpha, lr=args.lr, epochs=args.epochs,
                          batch=args.batch, pose_loss_weight=args.pose_loss_weight,
                          task_mix=parse_task_mix(args.task_mix), seed=args.seed, max_steps=args.max_steps,
                          train_embeddings=not args.no_train_embeddings,
                          lora_targets=tuple(t.strip() for t in args.lora_targets.split(",") if t.strip()),
                          rotation_loss=args.rotation_loss, one_piece_prompt=not args.piecewise_prompt)
        train(args.data, args.checkpoint, args.out, cfg, device=args.device)
    except ChatPoseError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
