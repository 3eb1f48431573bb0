"""Train the scene reader's decision head on the frozen reader's own states (stage 2 of the reader).

The reader's LLM (LoRA merged, offline.train_reader) reads each training prompt once; the states
the decision head reads are kept, and a new head is trained on them for many epochs: ``--head
late`` (the shipped one, reader.LateInteractionHead) keeps every token state of the person lines
and of the question (reader.SceneReader.token_states, float16: about 0.9 GB for 8 000 prompts);
``--head interact`` (reader.InteractionPointerHead) only the pooled ones
(reader.SceneReader.pooled_states: each line's mean state, the question's, the last state).
Without a backward pass through the LLM, one core reads many more questions than the LoRA stage
can train on (about 3 000 prompts there against ``--examples`` here), and the head's
elementwise interaction of the question with each line has a gradient from the start. The LLM, its added tokens and the pose
head are unchanged; the answer words are still the LM's own after the decision token.

Data: the "train" split of offline.scene_questions and text-to-pose samples
(train_reader.ExampleStream, seed ``--seed`` + STREAM_SEED_OFFSET, so not the LoRA stage's
questions); model selection on a second "train"-split stream (``--val`` questions, seed + 1 +
STREAM_SEED_OFFSET): no evaluation split is read. The decision temperature is fitted afterwards
as in train_reader (split "in_dist", the calibration seed).

    OMP_NUM_THREADS=1 python -m chatpose_ros.models.default.offline.train_reader_head \\
        --head late --seed 0 --examples 8000 --threads 1
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

from chatpose_ros.models.default.reader import (ADAPTER_FILE, POOLED_LAYOUT_KINDS, SPEC_FILE, TOKEN_LEVEL_KINDS,
                                                InteractionPointerHead, SceneReader, make_pointer)

log = logging.getLogger(__name__)

STREAM_SEED_OFFSET = 5003
PREFILL_BATCH = 8
HEAD_BATCH = 64
EVAL_CHUNK = 512     # examples per forward when measuring accuracy (token-level inputs are large)
WEIGHT_DECAY = 1e-4
HEAD_KINDS = ("interact", "late")  # reader.InteractionPointerHead, reader.LateInteractionHead
EXTENSIONS = ("count_all.", "yes.")  # the optional outputs (ReaderSpec.count_all, .yes_no): --extend trains them alone


def _features(model: SceneReader, examples: list, desc: str, cache: Path | None = None, llm: str = "",
              token_level: bool = False, count_all: bool = False) -> list[tuple]:
    """Examples -> [(inputs, decision index, counted (N,) float or None, yes 0/1 or None)] from one prefill each
    (batched, right-padded: causal attention keeps the real tokens' states). `inputs`: the
    pooled states (lines (N, H), question (H,), h_last (H,); SceneReader.pooled_states) or, with
    `token_level`, the token states (SceneReader.token_states, float16 but h_last). `cache`: a
    file holding the states of exactly these prompts read by the LLM `llm` names (llm_key; read
    if there, written if not; the labels always come from `examples`). `count_all`: a count of
    everyone is the head's own kind (reader.COUNT_ALL_KIND)."""
    key = _cache_key(model, examples, llm + (":tokens" if token_level else ""))
    states = _read_cache(cache, key)
    if states is None:
        states = _states(model, examples, desc, token_level)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"key": key, "states": states}, cache)
    out = []
    for inputs, e in zip(states, examples):
        n = _people(inputs, token_level)
        counted = None
        if e.counted is not None:
            counted = torch.zeros(n)
            counted[list(e.counted)] = 1.0
        yes = None if e.yes is None else float(e.yes)
        out.append((inputs, e.decision(count_kind=True, count_all=count_all), counted, yes))
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


def _states(model: SceneReader, examples: list, desc: str, token_level: bool) -> list[tuple]:
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
            if token_level:
                tokens, line_of, question, last = model.token_states(batch["ids"][b, :n], h[b, :n])
                out.append((tokens.half(), line_of.to(torch.int16), question.half(), last.clone()))
            else:
                lines, question, last = model.pooled_states(batch["ids"][b, :n], h[b, :n])
                out.append((lines.clone(), question.clone(), last.clone()))
    return out


def replace_answer(example):
    """The example with an empty answer (only the prompt is read)."""
    from dataclasses import replace

    return replace(example, answer="")


def _people(inputs: tuple, token_level: bool) -> int:
    """How many person lines one example's inputs hold."""
    if token_level:
        return int(inputs[1].max()) + 1 if len(inputs[1]) else 0
    return len(inputs[0])


def _pad(feats: list[tuple], max_people: int, token_level: bool = False) -> dict[str, torch.Tensor]:
    """Features -> padded tensors: mask (B, P) real people, last (B, H), target (B,) as an index
    into [p1..pP, none, pose, text, count(, count_all)], counted (B, P) 0/1 and is_count (B,)
    (counting questions: who is counted), yes (B,) 0/1 and is_yes (B,) (yes/no questions about
    the target person); the pooled inputs lines (B, P, H) and question (B, H), or the
    token-level ones line_tokens (B, L, H), line_of (B, L) (P for padding), question (B, M, H)
    and qmask (B, M)."""
    B, H = len(feats), feats[0][0][-1].shape[-1]
    mask = torch.zeros(B, max_people, dtype=torch.bool)
    target = torch.zeros(B, dtype=torch.long)
    counted = torch.zeros(B, max_people)
    is_count = torch.zeros(B, dtype=torch.bool)
    yes = torch.zeros(B)
    is_yes = torch.zeros(B, dtype=torch.bool)
    out: dict[str, torch.Tensor] = {}
    if token_level:
        L = max(1, max(len(f[0][0]) for f in feats))
        M = max(len(f[0][2]) for f in feats)
        out["line_tokens"] = torch.zeros(B, L, H)
        out["line_of"] = torch.full((B, L), max_people, dtype=torch.long)
        out["question"] = torch.zeros(B, M, H)
        out["qmask"] = torch.zeros(B, M, dtype=torch.bool)
    else:
        out["lines"] = torch.zeros(B, max_people, H)
    for b, (inputs, d, c, y) in enumerate(feats):
        n = _people(inputs, token_level)
        mask[b, :n] = True
        if token_level:
            tokens, line_of, question, _ = inputs
            out["line_tokens"][b, :len(tokens)] = tokens.float()
            out["line_of"][b, :len(tokens)] = line_of.long()
            out["question"][b, :len(question)] = question.float()
            out["qmask"][b, :len(question)] = True
        else:
            out["lines"][b, :n] = inputs[0]
        target[b] = d if d < n else max_people + (d - n)
        if c is not None:
            counted[b, :n], is_count[b] = c, True
        if y is not None:
            yes[b], is_yes[b] = y, True
    if not token_level:
        out["question"] = torch.stack([f[0][1] for f in feats])
    out.update(mask=mask, last=torch.stack([f[0][-1] for f in feats]), target=target, counted=counted,
               is_count=is_count, yes=yes, is_yes=is_yes)
    return out


def _forward(head: InteractionPointerHead, t: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded tensors (_pad) -> (B, P + K) decision logits (K: the head's kinds), (B, P, E)
    per-person logits [counted(, yes)]."""
    if "line_tokens" in t:
        return head.forward_tokens(t["line_tokens"], t["line_of"], t["question"], t["qmask"], t["last"], t["mask"],
                                   with_counted=True)
    return head.forward_batch(t["lines"], t["mask"], t["question"], t["last"], with_counted=True)


def _losses(head: InteractionPointerHead, t: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Padded tensors -> (decision CE, counted BCE over the counting questions' people + with a
    yes score, its BCE at the target person of the yes/no questions)."""
    logits, per_person = _forward(head, t)
    ce = F.cross_entropy(logits, t["target"])
    sel = t["mask"] & t["is_count"][:, None]
    bce = F.binary_cross_entropy_with_logits(per_person[..., 0][sel], t["counted"][sel]) if sel.any() else ce * 0
    j = t["is_yes"]
    if per_person.shape[-1] > 1 and j.any():
        at = per_person[..., 1][j].gather(1, t["target"][j, None])[:, 0]
        bce = bce + F.binary_cross_entropy_with_logits(at, t["yes"][j])
    return ce, bce


@torch.no_grad()
def _accuracy(head: InteractionPointerHead, feats: list[tuple], max_people: int,
              token_level: bool) -> tuple[float, float | None]:
    """(decision accuracy, share of the counting questions whose count (people with counted
    logit > 0) is right; None without counting questions), EVAL_CHUNK examples at a time."""
    hits = counts = count_right = 0
    for i in range(0, len(feats), EVAL_CHUNK):
        t = _pad(feats[i:i + EVAL_CHUNK], max_people, token_level)
        logits, per_person = _forward(head, t)
        counted = per_person[..., 0]
        hits += int((logits.argmax(-1) == t["target"]).sum())
        j = t["is_count"]
        got = ((counted[j] > 0) & t["mask"][j]).sum(1)
        count_right += int((got == (t["counted"][j] > 0).sum(1)).sum())
        counts += int(j.sum())
    return hits / len(feats), (count_right / counts if counts else None)


def train_head(train: list[tuple], val: list[tuple], spec, hidden_size: int, seed: int, epochs: int, lr: float,
               max_people: int, start: dict[str, torch.Tensor] | None = None) -> tuple[InteractionPointerHead, dict]:
    """Adam over shuffled mini-batches (decision CE + counted BCE) of the head `spec.pointer_kind`
    names; the epoch with the best validation decision accuracy is kept. `start`: a trained
    head's weights (without the optional outputs): only the outputs it lacks (EXTENSIONS) are
    trained, the rest is frozen."""
    from tqdm import tqdm

    token_level = spec.pointer_kind in TOKEN_LEVEL_KINDS
    torch.manual_seed(seed)
    head = make_pointer(spec, hidden_size)
    if start is not None:
        missing, unexpected = head.load_state_dict(start, strict=False)
        if unexpected or any(not k.startswith(EXTENSIONS) for k in missing):
            raise SystemExit(f"the head to extend does not match: missing {missing}, unexpected {unexpected}")
        for name, p in head.named_parameters():
            p.requires_grad_(name in missing)
        if not any(p.requires_grad for p in head.parameters()):
            raise SystemExit("nothing to extend: the head already has every output asked for")
    opt = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=lr, weight_decay=WEIGHT_DECAY)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    best = (-1.0, None, 0)
    hist = []
    bar = tqdm(range(epochs), desc="head", unit="epoch")
    for epoch in bar:
        head.train()
        order = torch.randperm(len(train), generator=gen).tolist()
        for i in range(0, len(order), HEAD_BATCH):
            ce, bce = _losses(head, _pad([train[j] for j in order[i:i + HEAD_BATCH]], max_people, token_level))
            loss = ce + bce
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        head.eval()
        acc, count_acc = _accuracy(head, val, max_people, token_level)
        tr_acc, _ = _accuracy(head, train, max_people, token_level)
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
          cache_dir: Path | None = None, head: str = "late", count_all: bool = False, yes_no: bool = False,
          extend: bool = False) -> dict:
    """Read the features with the reader in `folder`, train the head `head` (HEAD_KINDS), with
    the kind reader.COUNT_ALL_KIND if `count_all` and the per-person yes score if `yes_no`, write
    the adapter and reader.json (that pointer_kind, temperature fitted) to `out` (default: `folder`).
    `extend`: keep the head in `folder` as it is and train only the outputs it lacks."""
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
    if spec.pointer_kind not in POOLED_LAYOUT_KINDS:
        raise SystemExit(f"the reader in {folder} uses pointer_kind {spec.pointer_kind!r}: the head needs the pooled layout")
    model = SceneReader.load(folder / ADAPTER_FILE, spec)
    mocap = load_mocap("train")
    stream = ExampleStream(seed + STREAM_SEED_OFFSET, mocap)
    val_stream = ExampleStream(seed + 1 + STREAM_SEED_OFFSET, mocap)
    cache = None if cache_dir is None else Path(cache_dir)
    key = llm_key(folder / ADAPTER_FILE)
    new_spec = replace(spec, pointer_kind=head, temperature=1.0, count_all=count_all, yes_no=yes_no)
    token_level = head in TOKEN_LEVEL_KINDS
    suffix = "_tokens" if token_level else ""
    train_feats = _features(model, [next(stream) for _ in range(examples)], "states (train)",
                            cache and cache / f"train_seed{seed}_{examples}{suffix}.pt", key, token_level, count_all)
    val_feats = _features(model, [next(val_stream) for _ in range(val)], "states (val)",
                          cache and cache / f"val_seed{seed}_{val}{suffix}.pt", key, token_level, count_all)
    t_feat = time.perf_counter() - t0
    start = None
    if extend:
        if spec.pointer_kind != head:
            raise SystemExit(f"--extend: the reader in {folder} has a {spec.pointer_kind!r} head, not {head!r}")
        start = {k: v.float() for k, v in model.pointer.state_dict().items()}
    head_net, fit = train_head(train_feats, val_feats, new_spec, model.hidden_size, seed, epochs, lr,
                               len(PERSON_TOKENS), start)
    # the adapter: the LoRA stage's tensors, the old head's replaced by the new one
    state = {k: v for k, v in load_file(str(folder / ADAPTER_FILE)).items() if not k.startswith("pointer.")}
    state.update({f"pointer.{k}": v.detach().contiguous() for k, v in head_net.state_dict().items()})
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / ADAPTER_FILE), metadata={"format": "pt"})
    spec = new_spec
    record["spec"] = spec.to_json()
    if extend:  # the head it extends keeps its record
        record["head_stage_base"] = record.get("head_stage")
    record["head_stage"] = {
        "command": f"python -m chatpose_ros.models.default.offline.train_reader_head --head {head} --seed {seed} "
                   f"--examples {examples} --val {val} --epochs {epochs} --lr {lr} --threads {threads}"
                   + (" --count-all" if count_all else "") + (" --yes-no" if yes_no else "")
                   + (" --extend" if extend else ""),
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
    p.add_argument("--head", choices=HEAD_KINDS, default="late",
                   help="the decision head: late (pooled lines plus a token-level match; shipped) or interact (pooled lines)")
    p.add_argument("--count-all", action="store_true",
                   help="a fifth kind, count_all: a count of everyone (not in the shipped head; see the model card)")
    p.add_argument("--yes-no", action="store_true",
                   help="a per-person yes score that answers yes/no questions (not in the shipped head; see the model card)")
    p.add_argument("--extend", action="store_true",
                   help="keep the head in --weights and train only the outputs it lacks (--count-all, --yes-no)")
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
    rec = train(a.weights, a.seed, a.examples, a.val, a.epochs, a.lr, a.threads, a.out, cache_dir=a.cache_dir,
                head=a.head, count_all=a.count_all, yes_no=a.yes_no, extend=a.extend)
    print(json.dumps({k: rec[k] for k in ("head_stage", "calibration")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
