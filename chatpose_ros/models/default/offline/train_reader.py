"""Train the scene reader (reader.SceneReader): LoRA, the added tokens' rows and the pose head,
on questions about symbolic scenes (scene_questions, split "train" only) and text-to-pose
samples (queries.SampleStream over the mocap train split), then fit the decision temperature on
a calibration set (split "in_dist", its own seed).

Loss = CE on the answer tokens (the first one, the decision, weighted DECISION_WEIGHT)
+ 0.1 x L1 on the rotation matrices + L1 on forward-kinematics joints (m) of [POSE] answers.
Writes ``reader_adapter.safetensors`` and ``reader.json`` to ``--out``.

    OMP_NUM_THREADS=1 python -m chatpose_ros.models.default.offline.train_reader --seed 0 --steps 360 --threads 1
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from chatpose_ros.core.body import forward_kinematics
from chatpose_ros.models.default.reader import ADAPTER_FILE, SPEC_FILE, ReaderSpec, SceneReader
from chatpose_ros.models.default.scene_words import POSE_TOKEN

log = logging.getLogger(__name__)

DEFAULT_OUT = Path(__file__).resolve().parents[3] / "assets" / "default"
ROT_WEIGHT = 0.1
JOINT_WEIGHT = 1.0
DECISION_WEIGHT = 3.0     # the first answer token decides: weigh its CE this much more
HEAD_LR_SCALE = 3.0       # the pose head and the new token rows learn faster than LoRA
TEXT_POSE_SHARE = 0.12    # share of samples that are text-to-pose (pose head) samples
CALIBRATION_SAMPLES = 400
CALIBRATION_SEED_OFFSET = 7919


@dataclass(frozen=True)
class Example:
    """One training sequence: scene (scene_words.SceneWords; None: no image), question, answer,
    the decision (QA.target: person index, -1 nobody, -2 text, -3 imagined pose), an optional
    pose target (24, 3, 3) for a [POSE] answer, and for a counting question the indexes of the
    people it counts (`everyone`: a question that counts everyone in view, QA.counts_everyone);
    `yes`: the answer to a yes/no question about the target's pose."""

    scene: object
    question: str
    answer: str
    target: int
    rotmats: np.ndarray | None = None
    counted: tuple[int, ...] | None = None
    everyone: bool = False
    yes: bool | None = None

    @property
    def num_people(self) -> int:
        return 0 if self.scene is None else len(self.scene.people)

    def decision(self, count_kind: bool = False, count_all: bool = False) -> int:
        """Index of the decision among the pointer head's [p1..pN, none, pose, text] (and, with
        `count_kind`, count: where a counting question goes; with `count_all` too, count_all:
        where a count of everyone goes)."""
        n = self.num_people
        if count_kind and count_all and self.everyone:
            return n + 4
        if count_kind and self.counted is not None:
            return n + 3
        return self.target if self.target >= 0 else {-1: n, -3: n + 1, -2: n + 2}[self.target]


class ExampleStream:
    """Random training examples: scene questions of the "train" split, and text-to-pose."""

    def __init__(self, seed: int, mocap=None, split: str = "train") -> None:
        from chatpose_ros.models.default.offline.queries import SampleStream

        self.rng = np.random.default_rng(seed)
        self.split = split
        self.poses = SampleStream(mocap, seed + 1) if mocap is not None else None

    def __next__(self) -> Example:
        from chatpose_ros.models.default.offline.scene_questions import make_qa, random_scene

        if self.poses is not None and self.rng.random() < TEXT_POSE_SHARE:
            s = self.poses.text_pose() if self.rng.random() < 0.6 else self.poses.speculative_pose()
            # no image, or people in view who are not what the question is about
            scene = None if self.rng.random() < 0.5 else random_scene(self.rng, int(self.rng.integers(1, 4)))
            answer = f"{POSE_TOKEN} Here is a pose made from your words, not a person in view."
            return Example(scene, s.query, answer, -3, np.asarray(s.rotmats, np.float32))
        qa = make_qa(self.rng, self.split)
        return Example(qa.scene, qa.question, qa.answer, qa.target, counted=qa.counted, everyone=qa.counts_everyone,
                       yes=qa.yes)

    def __iter__(self) -> "ExampleStream":
        return self


def collate(model: SceneReader, examples: list[Example]) -> dict:
    """Examples -> padded ids (B, T), attention mask (B, T), answer-target mask (B, T),
    first answer position (B,)."""
    seqs, starts = [], []
    for e in examples:
        p = model.prompt_ids(e.scene, e.question)
        seqs.append(p + model.answer_ids(e.answer))
        starts.append(len(p))
    T = max(len(x) for x in seqs)
    pad = model.tokenizer.pad_token_id if model.tokenizer.pad_token_id is not None else model.end_id
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    att = torch.zeros((len(seqs), T), dtype=torch.long)
    tgt = torch.zeros((len(seqs), T), dtype=torch.bool)
    for i, (x, s) in enumerate(zip(seqs, starts)):
        ids[i, :len(x)] = torch.tensor(x)
        att[i, :len(x)] = 1
        tgt[i, s:len(x)] = True
    return {"ids": ids, "att": att, "tgt": tgt, "start": torch.tensor(starts)}


def batch_losses(model: SceneReader, examples: list[Example], batch: dict) -> dict[str, torch.Tensor]:
    """Teacher-forced losses of one batch."""
    ids, att, tgt, start = batch["ids"], batch["att"], batch["tgt"], batch["start"]
    h = model.backbone(model.token_embeddings(ids), att)
    pred = tgt[:, 1:]  # position t predicts ids[t + 1]
    logits = model.lm_logits(h[:, :-1][pred])
    labels = ids[:, 1:][pred]
    first = torch.zeros_like(tgt)
    first[torch.arange(len(start)), start] = True
    w = torch.where(first[:, 1:][pred], DECISION_WEIGHT, 1.0)
    ce_all = F.cross_entropy(logits, labels, reduction="none")
    ce = (ce_all * w).sum() / w.sum()
    is_first = first[:, 1:][pred]
    out = {"ce": ce, "tok_acc": (logits.argmax(-1) == labels).float().mean().detach(),
           "decision_acc": (logits.argmax(-1)[is_first] == labels[is_first]).float().mean().detach()}
    if model.pointer is not None:  # the decision from the LLM's states at the <pK> tokens and the last prompt state
        terms, hits = [], 0
        for b, e in enumerate(examples):
            d = model.decision_logits(ids[b, :int(start[b])], h[b, :int(start[b])])
            terms.append(F.cross_entropy(d[None], torch.tensor([e.decision()])))
            hits += int(int(d.argmax()) == e.decision())
        out["pointer"] = torch.stack(terms).mean()
        out["pointer_acc"] = torch.tensor(hits / len(examples))
    pose_b = [b for b, e in enumerate(examples) if e.rotmats is not None]
    if pose_b:
        hp = h[torch.tensor(pose_b), start[pose_b] - 1]  # the state that emits [POSE]
        R = model.pose_head(hp)
        Rt = torch.from_numpy(np.stack([examples[b].rotmats for b in pose_b]))
        out["rot"] = (R - Rt).abs().mean()
        out["joint"] = (forward_kinematics(R) - forward_kinematics(Rt)).norm(dim=-1).mean()
    return out


@torch.no_grad()
def decision_logits(model: SceneReader, scene, question: str) -> torch.Tensor:
    """The decision logits of one prompt (SceneReader.decision_logits; one prefill)."""
    ids = torch.tensor([model.prompt_ids(scene, question)])
    h = model.backbone(model.token_embeddings(ids), torch.ones_like(ids))
    return model.decision_logits(ids[0], h[0])


@torch.no_grad()
def fit_temperature(model: SceneReader, seed: int, n: int = CALIBRATION_SAMPLES) -> dict:
    """Fit the decision temperature by NLL over <p1..pN>, <none> on questions of the
    "in_dist" split that choose a person or nobody (seed + CALIBRATION_SEED_OFFSET)."""
    from chatpose_ros.models.default.offline.scene_questions import make_qa

    rng = np.random.default_rng(seed + CALIBRATION_SEED_OFFSET)
    rows, labels = [], []
    while len(rows) < n:
        qa = make_qa(rng, "in_dist")
        if qa.target < -1 or not qa.scene.people:
            continue
        logits = decision_logits(model, qa.scene, qa.question)
        n_people = len(qa.scene.people)
        if model.pointer is None:
            cand = torch.cat((model.person_ids[:n_people], torch.tensor([model.none_id])))
            rows.append(logits[cand].float())
        else:
            rows.append(logits[:n_people + 1].float())
        labels.append(qa.target if qa.target >= 0 else len(qa.scene.people))
    best = (float("inf"), 1.0)
    for t in np.exp(np.linspace(math.log(0.25), math.log(8.0), 61)):
        nll = float(np.mean([F.cross_entropy(r[None] / t, torch.tensor([y])) for r, y in zip(rows, labels)]))
        best = min(best, (nll, float(t)))
    acc = float(np.mean([int(r.argmax()) == y for r, y in zip(rows, labels)]))
    return {"temperature": round(best[1], 4), "calibration_nll": round(best[0], 4), "calibration_acc": round(acc, 4),
            "calibration_samples": n}


def _write(model: SceneReader, spec: ReaderSpec, out: Path, extra: dict) -> None:
    """The adapter (LoRA in float16) and a reader.json with `spec` (temperature not yet fitted)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    state = model.trainable_state()
    save_file({k: v.to(torch.float16) if k.startswith("lora.") else v for k, v in state.items()},
              str(out / ADAPTER_FILE), metadata={"format": "pt"})
    (out / SPEC_FILE).write_text(json.dumps({"spec": spec.to_json(), **extra}, indent=2))


def train(seed: int = 0, steps: int = 360, batch_size: int = 8, lr: float = 1e-3, out: Path = DEFAULT_OUT,
          threads: int = 1, num_layers: int = 10, lora_r: int = 8, save_every: int = 0, pointer: bool = True,
          calibration_samples: int = CALIBRATION_SAMPLES, pointer_kind: str = "ranked") -> dict:
    """Train, fit the temperature, write the adapter + reader.json; returns the record."""
    from tqdm import tqdm

    from chatpose_ros.models.default.offline.mocap import load_mocap

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    t0 = time.perf_counter()
    stream = ExampleStream(seed, load_mocap("train"))
    spec = ReaderSpec(num_layers=num_layers, lora_r=lora_r, lora_alpha=2 * lora_r, pointer=pointer,
                      pointer_kind=pointer_kind)
    model = SceneReader.create(spec)
    params = [p for p in model.parameters() if p.requires_grad]
    heads = [model.pose_head] + ([model.pointer] if model.pointer is not None else [])
    fast = {id(p) for m in heads for p in m.parameters()} | {id(model.new_rows)}
    groups = [{"params": [p for p in params if id(p) not in fast], "lr": lr},
              {"params": [p for p in params if id(p) in fast], "lr": HEAD_LR_SCALE * lr}]
    opt = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
    warm = max(1, steps // 15)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    log.info("trainable parameters: %d", sum(p.numel() for p in params))
    model.train()
    hist: dict[str, list[float]] = {}
    bar = tqdm(range(steps), desc="reader", unit="step")
    for step in bar:
        examples = [next(stream) for _ in range(batch_size)]
        terms = batch_losses(model, examples, collate(model, examples))
        loss = terms["ce"] + ROT_WEIGHT * terms.get("rot", 0.0) + JOINT_WEIGHT * terms.get("joint", 0.0) \
            + terms.get("pointer", 0.0)
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
            _write(model, spec, Path(out) / f"step{step + 1}", {"steps_done": step + 1})
    model.eval()
    # the merged model decides exactly as the live one: fit the temperature on it
    out = Path(out)
    _write(model, spec, out, {})
    record = {"spec": spec.to_json(), "adapter_file": ADAPTER_FILE,
              "command": f"python -m chatpose_ros.models.default.offline.train_reader --seed {seed} --steps {steps} "
                         f"--batch-size {batch_size} --lr {lr} --threads {threads} --num-layers {num_layers}"
                         + ("" if pointer else " --no-pointer") + f" --pointer-kind {pointer_kind}",
              "data": "symbolic scenes + questions (offline.scene_questions, split 'train') and text-to-pose "
                      "samples from the CMU mocap train split (offline.queries.SampleStream)",
              "seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr, "threads": threads,
              "final_train": {k: round(float(np.mean(v[-20:])), 4) for k, v in hist.items()}}
    (out / SPEC_FILE).write_text(json.dumps(record, indent=2))
    loaded = SceneReader.load(out / ADAPTER_FILE, spec)
    cal = fit_temperature(loaded, seed, calibration_samples)
    record["spec"]["temperature"] = cal["temperature"]
    record["calibration"] = cal
    record["adapter_sha256"] = hashlib.sha256((out / ADAPTER_FILE).read_bytes()).hexdigest()
    record["train_minutes"] = round((time.perf_counter() - t0) / 60, 1)
    (out / SPEC_FILE).write_text(json.dumps(record, indent=2))
    log.info("reader written to %s (%.1f min)", out, record["train_minutes"])
    return record


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=360)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--num-layers", type=int, default=10)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--save-every", type=int, default=0, help="also write the adapter every N steps to OUT/stepN")
    p.add_argument("--no-pointer", action="store_true", help="decide with the LM head's first token (no pointer head)")
    p.add_argument("--pointer-kind", choices=("ranked", "pooled", "state"), default="ranked",
                   help="pooled: line and question states mean-pooled, bilinear score; state: one score per <pK> state")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = build_parser().parse_args(argv)
    rec = train(a.seed, a.steps, a.batch_size, a.lr, a.out, a.threads, a.num_layers, save_every=a.save_every,
                pointer=not a.no_pointer, pointer_kind=a.pointer_kind)
    print(json.dumps({k: rec[k] for k in ("final_train", "calibration", "train_minutes")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
