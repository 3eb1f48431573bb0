"""`chatpose`: the command line, no ROS needed except for `demo`.

    chatpose ask IMAGE "the man holding the basketball" ["is he standing?" ...] [--out result.png] [--json out.json]
    chatpose ask - "what pose would a tired person take?"      (text only, no image)
    chatpose chat IMAGE_OR_VIDEO [--profile PROFILE]           (a conversation in the terminal)
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
    p.add_argument("--profile", default="grounded", choices=("grounded", "default", "reader", "chatpose"),
                   help="model profile")
    p.add_argument("--checkpoint", default="", help="ChatPose checkpoint folder (profile chatpose)")
    p.add_argument("--weights-dir", default="", help="default profile weights folder (default: shipped)")
    p.add_argument("--smpl-model", default="", help="optional SMPL model file for the mesh")
    p.add_argument("--device", default="auto")
    p.add_argument("--vision-backend", default="torch", choices=("torch", "onnx", "tensorrt"))


def _pipeline_config(args) -> PipelineConfig:
    return PipelineConfig(profile=args.profile, checkpoint=args.checkpoint, weights_dir=args.weights_dir,
                          smpl_model_path=args.smpl_model, device=args.device, vision_backend=args.vision_backend)


def _numbered(path: str, k: int) -> str:
    """result.png -> result_2.png for the k-th (from 1) of several answers."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}_{k}{p.suffix}"))


def cmd_ask(args) -> int:
    """Every query about one image with one model load, in order (a conversation: a follow-up
    such as "is he standing?" refers to the person chosen before, where the profile keeps one)."""
    from chatpose_ros.profiles import build_pipeline
    from chatpose_ros.core.viz import result_picture, save_png

    image = None if args.image == "-" else read_image(args.image)
    t0 = time.monotonic()
    pipeline = build_pipeline(_pipeline_config(args))
    load_s = time.monotonic() - t0
    outs = []
    try:
        for k, query in enumerate(args.query, 1):
            result = pipeline.estimate(image, query)
            out = result.to_json()
            out["load_s"] = round(load_s, 2)
            outs.append(out)
            print(json.dumps(out, indent=None if args.compact else 1))
            if args.out:
                path = args.out if len(args.query) == 1 else _numbered(args.out, k)
                path = save_png(path, result_picture(image, result))
                logging.getLogger("chatpose").info("picture written to %s", path)
    finally:
        pipeline.close()
    if args.json:
        Path(args.json).write_text(json.dumps(outs[0] if len(outs) == 1 else outs, indent=1))
    return 0


class _Frames:
    """The frames a conversation is held on: one image, or a video read on as the turns go by
    (`step` frames per turn, the last frame once the video ends)."""

    def __init__(self, path: str, step: int) -> None:
        import cv2

        self.step = step
        self.cap = None
        self.image = None
        if Path(path).suffix.lower() in {".avi", ".mp4", ".mov", ".mkv", ".webm"}:
            self.cap = cv2.VideoCapture(path)
            if not self.cap.isOpened():
                raise ChatPoseError(f"cannot open video {path}")
        else:
            self.image = read_image(path)

    def next(self):
        import cv2

        if self.cap is None:
            return self.image
        for _ in range(self.step if self.image is not None else 1):
            ok, frame = self.cap.read()
            if not ok:
                break
            self.image = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        return self.image


def cmd_chat(args, stdin=None) -> int:
    """A conversation in the terminal: each line a question about the current frame, answered
    with what was checked; "reset" forgets who was chosen; an empty line or "quit" ends it."""
    from chatpose_ros.profiles import build_pipeline
    from chatpose_ros.core.viz import result_picture, save_png

    stdin = stdin or sys.stdin
    frames = _Frames(args.source, args.step)
    pipeline = build_pipeline(_pipeline_config(args))
    turn = 0
    try:
        print("Ask about the people in view (empty line or 'quit' to end, 'reset' to start afresh).", flush=True)
        for line in stdin:
            query = line.strip()
            if not query or query.lower() in {"quit", "exit", "bye"}:
                break
            if query.lower() == "reset":
                getattr(pipeline, "reset_conversation", lambda: None)()
                print("(conversation reset)", flush=True)
                continue
            image = frames.next()
            turn += 1
            try:
                result = pipeline.estimate(image, query)
            except ChatPoseError as exc:
                print(f"[{exc.code}] {exc}", flush=True)
                continue
            sel = result.selected_person
            where = "" if sel is None or sel.box is None else " [box " + ", ".join(f"{v:.0f}" for v in sel.box) + "]"
            print(f"> {result.answer}{where}", flush=True)
            if args.out:
                save_png(_numbered(args.out, turn), result_picture(image, result))
    finally:
        pipeline.close()
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
    ask.add_argument("query", nargs="+", help="one or more questions, answered in order with one model load")
    ask.add_argument("--out", default="chatpose_result.png", help="picture to write ('' = none)")
    ask.add_argument("--json", default="", help="also write the JSON here")
    ask.add_argument("--compact", action="store_true", help="one-line JSON")
    _add_model_args(ask)
    ask.set_defaults(func=cmd_ask)
    chat = sub.add_parser("chat", help="hold a conversation about an image or a video in the terminal")
    chat.add_argument("source", help="image or video file")
    chat.add_argument("--step", type=int, default=15, help="video frames to move on per question")
    chat.add_argument("--out", default="", help="write a picture per answer (chat.png -> chat_1.png, ...)")
    _add_model_args(chat)
    chat.set_defaults(func=cmd_chat)
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
