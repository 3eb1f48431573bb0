"""`chatpose`: the command line, no ROS needed except for `demo`.

    chatpose ask IMAGE "the man holding the basketball" [--out result.png] [--json out.json]
    chatpose ask - "what pose would a tired person take?"      (text only, no image)
    chatpose demo [--image PATH] [--query TEXT]                 (over ROS 2 on loopback)
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.core.errors import ChatPoseError
from chatpose_ros.core.image_files import read_image

DEMO_IMAGE = "/usr/share/doc/opencv-doc/examples/data/basketball1.png"
DEMO_QUERY = "the person on the left"


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="default", choices=("default", "chatpose"), help="model profile")
    p.add_argument("--checkpoint", default="", help="ChatPose checkpoint folder (profile chatpose)")
    p.add_argument("--weights-dir", default="", help="default profile weights folder (default: shipped)")
    p.add_argument("--smpl-model", default="", help="optional SMPL model file for the mesh")
    p.add_argument("--device", default="auto")
    p.add_argument("--vision-backend", default="torch", choices=("torch", "onnx", "tensorrt"))


def _pipeline_config(args) -> PipelineConfig:
    return PipelineConfig(profile=args.profile, checkpoint=args.checkpoint, weights_dir=args.weights_dir,
                          smpl_model_path=args.smpl_model, device=args.device, vision_backend=args.vision_backend)


def cmd_ask(args) -> int:
    from chatpose_ros.profiles import build_pipeline
    from chatpose_ros.core.viz import result_picture, save_png

    image = None if args.image == "-" else read_image(args.image)
    t0 = time.monotonic()
    pipeline = build_pipeline(_pipeline_config(args))
    load_s = time.monotonic() - t0
    try:
        result = pipeline.estimate(image, args.query)
    finally:
        pipeline.close()
    out = result.to_json()
    out["load_s"] = round(load_s, 2)
    text = json.dumps(out, indent=None if args.compact else 1)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    if args.out:
        save_png(args.out, result_picture(image, result))
        logging.getLogger("chatpose").info("picture written to %s", args.out)
    return 0


def cmd_demo(args) -> int:
    from chatpose_ros.ros.demo import run_demo

    return run_demo(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chatpose", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)
    ask = sub.add_parser("ask", help="answer one query about one image and print the SMPL result as JSON")
    ask.add_argument("image", help="image file, or - for a text-only question")
    ask.add_argument("query")
    ask.add_argument("--out", default="chatpose_result.png", help="picture to write ('' = none)")
    ask.add_argument("--json", default="", help="also write the JSON here")
    ask.add_argument("--compact", action="store_true", help="one-line JSON")
    _add_model_args(ask)
    ask.set_defaults(func=cmd_ask)
    demo = sub.add_parser(
        "demo", help="start the node, send a real photo and a query over ROS 2 (loopback), print and draw the answer")
    demo.add_argument("--image", default=DEMO_IMAGE)
    demo.add_argument("--query", default=DEMO_QUERY)
    demo.add_argument("--out", default="out/demo.png")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer")
    _add_model_args(demo)
    demo.set_defaults(func=cmd_demo)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="[%(levelname)s] %(name)s: %(message)s")
    try:
        return args.func(args)
    except ChatPoseError as exc:
        logging.getLogger("chatpose").error("%s: %s", exc.code, exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
