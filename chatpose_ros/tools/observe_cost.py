"""What tracking every body would cost: `observe` near the tracked box against the whole frame.

    python -m chatpose_ros.tools.observe_cost [--threads 1] [--repeats 7] [IMAGE ...]

For each photo (default: the demo photo and two face-api photos of the test data), the default
profile's `observe` (perception + pose regressor, no LLM) is timed searching near the first
person's box (what a tracking update does: one perception pass on the box) and on the whole
frame (what `track_all_bodies` does at every update). Prints the median wall time of each and
their ratio. Wall times depend on the machine and on its load; the ratio, measured side by side,
less so.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IMAGES = ("/usr/share/doc/opencv-doc/examples/data/basketball1.png",
                  str(ROOT / "tests" / "data" / "people" / "faceapi_sample5.jpg"),
                  str(ROOT / "tests" / "data" / "people" / "faceapi_sample2.jpg"))


def _median_ms(fn, repeats: int) -> tuple[float, int]:
    fn()  # warm-up
    times, n = [], 0
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        n = len(fn())
        times.append(1000.0 * (time.perf_counter() - t0))
    return float(np.median(times)), n


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="observe near a box vs the whole frame (default profile)")
    ap.add_argument("images", nargs="*", default=list(DEFAULT_IMAGES))
    ap.add_argument("--threads", type=int, default=1, help="torch threads (model.cpu_threads)")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.core.image_files import read_image
    from chatpose_ros.profiles import build_pipeline

    pipeline = build_pipeline(PipelineConfig(cpu_threads=args.threads))
    try:
        for path in args.images:
            image = read_image(path)
            people = pipeline.observe(image)
            if not people:
                print(f"{Path(path).name}: nobody found, skipped")
                continue
            box = people[0].box
            near, n_near = _median_ms(lambda: pipeline.observe(image, near=box), args.repeats)
            whole, n_whole = _median_ms(lambda: pipeline.observe(image), args.repeats)
            print(f"{Path(path).name} {image.shape[1]}x{image.shape[0]}: near the box {near:.1f} ms ({n_near} people), "
                  f"whole frame {whole:.1f} ms ({n_whole} people), ratio {whole / near:.1f}x "
                  f"(median of {args.repeats}, {args.threads} thread(s))")
    finally:
        pipeline.close()


if __name__ == "__main__":
    main()
