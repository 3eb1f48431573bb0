"""Train the scene reader's decision head on the frozen reader's own states (stage 2 of the reader).

The reader's LLM (LoRA merged, offline.train_reader) reads each training prompt once; the pooled
states the pointer head reads (reader.SceneReader.pooled_states: each person line's mean state,
the question's mean state, the last prompt state) are kept, and a new
reader.InteractionPointerHead is trained on them for many epochs. Without a backward pass
through the LLM, one core reads many more questions than the LoRA stage can train on (about
3 000 prompts there against ``--examples`` here), and the head's elementwise interaction of the
question with each line has a gradient from the start. The LLM, its added tokens and the pose
head are unchanged; the answer words are still the LM's own after the decision token.

Data: the "train" split of offline.scene_questions and text-to-pose samples
(train_reader.ExampleStream, seed ``--seed`` + STREAM_SEED_OFFSET, so not the LoRA stage's
questions); model selection on a second "train"-split stream (``--val`` questions, seed + 1 +
STREAM_SEED_OFFSET): no evaluation split is read. The decision temperature is fitted afterwards
as in train_reader (split "in_dist", the calibration seed).

    OMP_NUM_THREADS=1 python -m chatpose_ros.models.default.offline.train_reader_head --seed 0 --examples 8000 --threads 1
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import logging
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from chatpose_ros.models.default.reader import ADAPTER_FILE, SPEC_FILE, InteractionPointerHead, SceneReader

log = logging.getLogger(__name__)

STREAM_SEED_OFFSET = 5003
PREFILL_BATCH = 8
HEAD_BATCH = 64
WEIGHT_DECAY = 1e-4


def _features(model: SceneReader, examples: list, desc: str, cache: Path | None = None, llm: str = "") -> list[tuple]:
    """Examples -> [(lines (N, H), question (H,), h_last (H,), decision index, counted (N,) float
    or None)] from one prefill each (batched, right-padded: causal attention keeps the real
    tokens' states). `cache`: a file holding the states of exactly these prompts read by the
    LLM `llm` names (llm_key; read if there, written if not; the labels always come from `examples`)."""
    key = _cache_key(model, examples, llm)
    states = _read_cache(cache, key)
    if states is None:
        states = _states(model, examples, desc)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"key": key, "states": states}, cache)
    out = []
    for (lines, question, last), e in zip(states, examples):
        counted = None
        if e.counted is not None:
            counted = torch.zeros(len(lines))
            counted[list(e.counted)] = 1.0
        out.append((lines, question, last, e.decision(count_kind=True), counted))
    return out


def _cache_key(model: SceneReader, examples: list, llm_key: str) -> str:
    """Which states a cache holds: the LLM's weights (`llm_key`) and the prompts, hashed."""
    h = hashlib.sha256(llm_key.encode())
    for e in examples:
        h.update(repr(model.prompt_ids(e.scene, e.question)).encode())
    return h.hexdigest()


def llm_key(adapter: Path) -> str:
    """A hash of what makes the LLM's states: the adapter's tensors but the heads' (pointer,
    pose head), which do not change them."""
    from safetensors.torch import load_file

    h = hashlib.sha256()
    for k, v in sorted(load_file(str(adapter)).items()):
        if not k.startswith(("pointer.", "pose_head.")):
            h.update(k.encode())
            h.update(v.contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _read_cache(cache: Path | None, key: str):
    if cache is None or not cache.exists():
        return None
    saved = torch.load(cache, weights_only=True)
    if saved.get("key") != key:
        log.info("feature cache %s is of other prompts or weights: reading again", cache)
        return None
    log.info("states read from the cache %s", cache)
    return saved["states"]


def _states(model: SceneReader, examples: list, desc: str) -> list[tuple]:
    from tqdm import tqdm

    from chatpose_ros.models.default.offline.train_reader import collate

    out = []
    for i in tqdm(range(0, len(examples), PREFILL_BATCH), desc=desc, unit="batch"):
        chunk = examples[i:i + PREFILL_BATCH]
        prompts = [replace_answer(e) for e in chunk]
        batch = collate(model, prompts)
        with torch.no_grad():
            h = model.backbone(model.token_embeddings(batch["ids"]), batch["att"])
        for b, e in enumerate(chunk):
            n = int(batch["start"][b])
            lines, question, last = model.pooled_states(batch["ids"][b, :n], h[b, :n])
            out.append((lines.clone(), question.clone(), last.clone()))
    return out


def replace_answer(example):
    """The example with an empty answer (only the prompt is read)."""
    from dataclasses import replace

    return replace(example, answer="")


def _pad(feats: list[tuple], max_people: int) -> dict[str, torch.Tensor]:
    """Features -> padded tensors: lines (B, P, H), mask (B, P), question (B, H), last (B, H),
    target (B,) as an index into [p1..pP, none, pose, text, count], counted (B, P) 0/1 and
    is_count (B,) (counting questions: who is counted)."""
    B, H = len(feats), feats[0][1].shape[-1]
    lines = torch.zeros(B, max_people, H)
    mask = torch.zeros(B, max_people, dtype=torch.bool)
    target = torch.zeros(B, dtype=torch.long)
    counted = torch.zeros(B, max_people)
    is_count = torch.zeros(B, dtype=torch.bool)
    for b, (ln, _, _, d, c) in enumerate(feats):
        n = len(ln)
        lines[b, :n], mask[b, :n] = ln, True
        target[b] = d if d < n else max_people + (d - n)
        if c is not None:
            counted[b, :n], is_count[b] = c, True
    return {"lines": lines, "mask": mask, "question": torch.stack([f[1] for f in feats]),
            "last": torch.stack([f[2] for f in feats]), "target": target, "counted": counted, "is_count": is_count}


def _losses(head: InteractionPointerHead, t: dict, j) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows `j` of padded tensors `t` -> (decision CE, counted BCE over the counting questions'
    people, (B,) decision hits)."""
    logits, counted = head.forward_batch(t["lines"][j], t["mask"][j], t["question"][j], t["last"][j],
                                         with_counted=True)
    ce = F.cross_entropy(logits, t["target"][j])
    sel = t["mask"][j] & t["is_count"][j][:, None]
    bce = F.binary_cross_entropy_with_logits(counted[sel], t["counted"][j][sel]) if sel.any() else ce * 0
    return ce, bce, logits.argmax(-1) == t["target"][j]


def _count_exact(head: InteractionPointerHead, t: dict) -> float | None:
    """Share of the counting questions in `t` whose count (people with counted logit > 0) is right."""
    j = t["is_count"].nonzero()[:, 0]
    if not len(j):
        return None
    _, counted = head.forward_batch(t["lines"][j], t["mask"][j], t["question"][j], t["last"][j], with_counted=True)
    got = ((counted > 0) & t["mask"][j]).sum(1)
    want = (t["counted"][j] > 0).sum(1)
    return float((got == want).float().mean())


def train_head(train: list[tuple], val: list[tuple], hidden_size: int, seed: int, epochs: int, lr: float,
               max_people: int) -> tuple[InteractionPointerHead, dict]:
    """Adam over shuffled mini-batches (decision CE + counted BCE); the epoch with the best
    validation decision accuracy is kept."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    head = InteractionPointerHead(hidden_size)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    tr, va = _pad(train, max_people), _pad(val, max_people)
    gen = torch.Generator().manual_seed(seed)
    best = (-1.0, None, 0)
    hist = []
    bar = tqdm(range(epochs), desc="head", unit="epoch")
    for epoch in bar:
        head.train()
        order = torch.randperm(len(train), generator=gen)
        for i in range(0, len(order), HEAD_BATCH):
            j = order[i:i + HEAD_BATCH]
            ce, bce, _ = _losses(head, tr, j)
            loss = ce + bce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        head.eval()
        with torch.no_grad():
            acc = float(_losses(head, va, torch.arange(len(val)))[2].float().mean())
            tr_acc = float(_losses(head, tr, torch.arange(len(train)))[2].float().mean())
            count_acc = _count_exact(head, va)
        hist.append({"epoch": epoch + 1, "train_acc": round(tr_acc, 4), "val_acc": round(acc, 4),
                     "val_count_exact": None if count_acc is None else round(count_acc, 4)})
        bar.set_postfix(train_acc=f"{tr_acc:.3f}", val_acc=f"{acc:.3f}", val_count=f"{count_acc}")
        if acc > best[0]:
            best = (acc, copy.deepcopy(head.state_dict()), epoch + 1)
    head.load_state_dict(best[1])
    head.eval()
    return head, {"best_epoch": best[2], "val_acc": round(best[0], 4),
                  "val_count_exact": hist[best[2] - 1]["val_count_exact"], "history": hist[-5:]}


def train(folder: Path, seed: int = 0, examples: int = 8000, val: int = 600, epochs: int = 40, lr: float = 1e-3,
          threads: int = 1, out: Path | None = None, calibration_samples: int | None = None,
          cache_dir: Path | None = None) -> dict:
    """Read the features with the reader in `folder`, train the head, write the adapter and
    reader.json (pointer_kind "interact", temperature fitted) to `out` (default: `folder`)."""
    from dataclasses import replace

    from safetensors.torch import load_file, save_file

    from chatpose_ros.models.default.offline.mocap import load_mocap
    from chatpose_ros.models.default.offline.train_reader import CALIBRATION_SAMPLES, ExampleStream, fit_temperature
    from chatpose_ros.models.default.scene_words import PERSON_TOKENS

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    out = Path(out or folder)
    record = json.loads((folder / SPEC_FILE).read_text())
    spec = SceneReader.read_spec(folder)
    if spec.pointer_kind not in ("pooled", "ranked", "interact"):
        raise SystemExit(f"the reader in {folder} uses pointer_kind {spec.pointer_kind!r}: the head needs the pooled layout")
    model = SceneReader.load(folder / ADAPTER_FILE, spec)
    mocap = load_mocap("train")
    stream = ExampleStream(seed + STREAM_SEED_OFFSET, mocap)
    val_stream = ExampleStream(seed + 1 + STREAM_SEED_OFFSET, mocap)
    cache = None if cache_dir is None else Path(cache_dir)
    key = llm_key(folder / ADAPTER_FILE)
    train_feats = _features(model, [next(stream) for _ in range(examples)], "states (train)",
                            cache and cache / f"train_seed{seed}_{examples}.pt", key)
    val_feats = _features(model, [next(val_stream) for _ in range(val)], "states (val)",
                          cache and cache / f"val_seed{seed}_{val}.pt", key)
    t_feat = time.perf_counter() - t0
    head, fit = train_head(train_feats, val_feats, model.hidden_size, seed, epochs, lr, len(PERSON_TOKENS))
    # the adapter: the LoRA stage's tensors, the old head's replaced by the new one
    state = {k: v for k, v in load_file(str(folder / ADAPTER_FILE)).items() if not k.startswith("pointer.")}
    state.update({f"pointer.{k}": v.detach().contiguous() for k, v in head.state_dict().items()})
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / ADAPTER_FILE), metadata={"format": "pt"})
    spec = replace(spec, pointer_kind="interact", temperature=1.0)
    record["spec"] = spec.to_json()
    record["head_stage"] = {
        "command": f"python -m chatpose_ros.models.default.offline.train_reader_head --seed {seed} --examples {examples} "
                   f"--val {val} --epochs {epochs} --lr {lr} --threads {threads}",
        "data": f"{examples} prompts of the 'train' split + text-to-pose (ExampleStream seed {seed + STREAM_SEED_OFFSET}); "
                f"model selection on {val} more (seed {seed + 1 + STREAM_SEED_OFFSET})",
        "features_minutes": round(t_feat / 60, 1), **fit}
    (out / SPEC_FILE).write_text(json.dumps(record, indent=2))
    loaded = SceneReader.load(out / ADAPTER_FILE, spec)
    cal = fit_temperature(loaded, int(record.get("seed", 0)), calibration_samples or CALIBRATION_SAMPLES)
    record["spec"]["temperature"] = cal["temperature"]
    record["calibration"] = cal
    record["adapter_sha256"] = hashlib.sha256((out / ADAPTER_FILE).read_bytes()).hexdigest()
    record["head_stage"]["train_minutes"] = round((time.perf_counter() - t0) / 60, 1)
    record.pop("evaluation", None)  # figures of the old head: `make eval-reader` writes the new ones
    (out / SPEC_FILE).write_text(json.dumps(record, indent=2))
    log.info("reader head written to %s (%.1f min)", out, record["head_stage"]["train_minutes"])
    return record


def build_parser() -> argparse.ArgumentParser:
    from chatpose_ros.models.default.offline.train_reader import DEFAULT_OUT

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", type=Path, default=DEFAULT_OUT, help="folder of the reader (LoRA stage) to read with")
    p.add_argument("--out", type=Path, default=None, help="where to write (default: --weights)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--examples", type=int, default=8000, help="training prompts read once each")
    p.add_argument("--val", type=int, default=600, help="prompts for model selection (train split, another seed)")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache-dir", type=Path, default=Path("build/reader_head_states"),
                   help="keep the LLM's states of the training prompts here (read again only if the weights or prompts change)")
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    a = build_parser().parse_args(argv)
    rec = train(a.weights, a.seed, a.examples, a.val, a.epochs, a.lr, a.threads, a.out, cache_dir=a.cache_dir)
    print(json.dumps({k: rec[k] for k in ("head_stage", "calibration")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
