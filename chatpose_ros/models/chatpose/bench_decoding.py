"""`chatpose-bench-decoding`: KV-cached decoding vs upstream-style recomputation, same model.

For each mode the same prompt is answered `--repeats` times with exactly `--tokens` new tokens
(end-of-sequence disabled so both modes do the same work); reported: time per answer (median),
tokens/s, and peak memory (CUDA: max allocated; CPU: peak resident set growth, sampled).
Models: `--checkpoint DIR` (our layout; prompt = template + image features of a blank image) or a
random Llama in memory (`--tiny`, or `--size small` ~ 100M parameters) fed `--prompt-len`
random prompt embeddings (a stand-in for the ~600-token ChatPose prompt).
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass

import torch

from chatpose_ros.core.decoding import generate_with_pose_tokens

log = logging.getLogger(__name__)

# random Llama sizes: (hidden, layers, heads, intermediate, vocab)
SIZES = {
    "tiny": (32, 2, 4, 64, 128),
    "small": (768, 12, 12, 2048, 32000),  # ~110M parameters, vocabulary of Llama/Vicuna
}


@dataclass(frozen=True)
class BenchRow:
    mode: str
    ms_per_answer: float
    tokens_per_s: float
    peak_mem_mb: float
    steps: int


class _RssPeak:
    """Peak resident set size growth (MB) of this process while active (sampled every 2 ms)."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = 0
        self._stop = threading.Event()

    def _rss(self) -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * self.page

    def __enter__(self):
        self.base = self._rss()
        self.peak = self.base
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.base) / 2**20


def random_llama(size: str, device: torch.device, dtype: torch.dtype, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    h, n, heads, inter, vocab = SIZES[size]
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=h, num_hidden_layers=n, num_attention_heads=heads,
                      num_key_value_heads=heads, intermediate_size=inter, max_position_embeddings=4096,
                      tie_word_embeddings=False)
    return LlamaForCausalLM(cfg).to(device, dtype).eval()


class _NoTokenizer:
    """Decoding stand-in for random models (text is not looked at by the benchmark)."""

    eos_token_id = None
    all_special_ids: list[int] = []

    def decode(self, ids, skip_special_tokens=False):
        return " ".join(map(str, ids))

    def convert_ids_to_tokens(self, i):
        return str(i)


def bench(lm, tokenizer, embeds: torch.Tensor, pose_token_id: int, tokens: int, repeats: int) -> list[BenchRow]:
    """Run both modes on the same model and prompt; returns one row per mode."""
    cuda = embeds.device.type == "cuda"
    rows = []
    for mode, use_cache in (("kv-cache", True), ("recompute (upstream)", False)):
        generate_with_pose_tokens(lm, tokenizer, embeds, pose_token_id, max_new_tokens=2, eos_token_ids=[],
                                  use_cache=use_cache)  # warm-up
        times = []
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        with _RssPeak() as rss:
            for _ in range(repeats):
                t0 = time.perf_counter()
                g = generate_with_pose_tokens(lm, tokenizer, embeds, pose_token_id, max_new_tokens=tokens,
                                              eos_token_ids=[], force_pose_token=True, use_cache=use_cache)
                if cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t0)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if cuda else rss.growth_mb
        med = statistics.median(times)
        rows.append(BenchRow(mode, med * 1e3, len(g.token_ids) / med, peak, g.steps))
    return rows


def format_rows(rows: list[BenchRow], header: str) -> str:
    lines = [header, f"{'mode':<22} {'ms/answer':>10} {'tokens/s':>9} {'peak MB':>8} {'steps':>6}"]
    for r in rows:
        lines.append(f"{r.mode:<22} {r.ms_per_answer:>10.1f} {r.tokens_per_s:>9.1f} {r.peak_mem_mb:>8.1f} {r.steps:>6}")
    if len(rows) == 2:
        lines.append(f"speed-up of the KV cache: x{rows[1].ms_per_answer / rows[0].ms_per_answer:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`chatpose-bench-decoding [--checkpoint DIR | --tiny | --size small] [--device] [--tokens] [--repeats]`."""
    ap = argparse.ArgumentParser(prog="chatpose-bench-decoding", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", default=None, help="checkpoint folder in our layout")
    src.add_argument("--tiny", action="store_true", help="tiny random Llama (seconds, for CI)")
    src.add_argument("--size", choices=sorted(SIZES), default=None, help="random Llama of this size")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--dtype", default="auto", choices=("auto", "float32", "float16", "bfloat16"))
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--prompt-len", type=int, default=128, help="prompt length of the random models")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .checkpoints import resolve_device, resolve_dtype

    if args.threads:
        torch.set_num_threads(args.threads)
    dev = resolve_device(args.device)
    dt = resolve_dtype(args.dtype, dev)
    if args.checkpoint:
        from .checkpoints import load_checkpoint

        model = load_checkpoint(args.checkpoint, device=str(dev), dtype=dt)
        side = model.preprocessor.crop
        feats = model.encode_images(torch.zeros(1, 3, side, side))
        prompt = model.question_prompt("What is the pose of the person?", True)
        embeds = model.embed_ids(model.prompt_ids(prompt), feats)[None]
        lm, tok, pose = model.lm, model.tokenizer, model.pose_token_id
        name = f"checkpoint {args.checkpoint}"
    else:
        size = "tiny" if args.tiny or not args.size else args.size
        lm = random_llama(size, dev, dt)
        tok, pose = _NoTokenizer(), SIZES[size][4] - 1
        torch.manual_seed(1)
        embeds = torch.randn(1, args.prompt_len, SIZES[size][0], device=dev, dtype=dt) * 0.02
        name = f"random llama '{size}'"
    n_params = sum(p.numel() for p in lm.parameters()) / 1e6
    header = (f"{name}: {n_params:.0f}M params, prompt {embeds.shape[1]} tokens, {args.tokens} new tokens, "
              f"{dev} {str(dt).replace('torch.', '')}, threads {torch.get_num_threads()}, median of {args.repeats}")
    print(format_rows(bench(lm, tok, embeds, pose, args.tokens, args.repeats), header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
