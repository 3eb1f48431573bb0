"""Bad-input storm against the node in a process of its own, over ROS 2 on loopback: how much
log it writes, whether it still answers a good question after it, and whether it does so with
its stderr a full pipe that nobody reads.

    python -m chatpose_ros.tools.log_storm --inputs 1000 --stderr file     # log bytes of the storm
    python -m chatpose_ros.tools.log_storm --inputs 1000 --stderr unread   # stderr never read

The storm (seeded, repeatable): raw images with unknown, empty, control-character and
70,000-character encodings, truncated data, a too-small step, a 480 x 1 image; compressed
images of garbage bytes; empty, blank, over-long and control-character queries, and short valid
ones (answered from the latest image). Then one good image and a good question: the node must
answer it within `answer_timeout_s`. Prints one JSON line of figures.

Bounded: `inputs` messages at most `rate_hz`, each wait has a time limit, the node is stopped
(SIGINT, then killed) at the end; DDS stays on loopback (chatpose_ros.ros.netsafe).
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

GOOD_QUERY = "the person on the left, after the storm"
SMALL_PIPE_BYTES = 4096  # the unread stderr pipe: full after the first lines of start-up
LONG_ENCODING_CHARS = 70_000
NODE_NAME = "chatpose_node"
NOT_FINAL = ("no_image", "stale_image")  # statuses said before a query's answer


def node_command(state_dir: str, launcher: list[str] | None = None, params: tuple[str, ...] = ()) -> list[str]:
    """The node started as `launcher` (default: chatpose-node, the shipped node), reliable image
    QoS so that the storm arrives, and `params` ("name:=value") more."""
    launcher = launcher or [sys.executable, "-m", "chatpose_ros.ros.main"]
    params = ("image_qos:=reliable", "image_qos_depth:=20", "mesh_body:='off'",
              "compressed_image_topic:=/camera/image_raw/compressed", "max_image_age_s:=0.0", *params)
    return [*launcher, "--state-dir", state_dir, "--ros-args", *[a for p in params for a in ("-p", p)]]


def bad_inputs(n: int, seed: int = 0):
    """`n` (kind, payload) pairs: kind 'image' (sensor_msgs/Image fields as a dict),
    'compressed' (bytes) or 'query' (str)."""
    rng = random.Random(seed)
    encodings = ["", "rgb9", "x" * LONG_ENCODING_CHARS, "bgr8\n[ERROR] forged line", "\x1b[31mred\x1b[0m",
                 "é" * 300, "32FC1", "yuv422"]
    queries = ["", "   ", "q" * 700, "\x00\x01\x02", "\n\n", "the person on the right", "who is waving?",
               "\u202e\u200b\ufeffthe man on the left"]
    for i in range(n):
        kind = rng.choice(("image", "image", "compressed", "query", "query"))
        if kind == "image":
            case = rng.randrange(4)
            if case == 0:
                enc = rng.choice(encodings)
                yield "image", dict(width=8, height=8, encoding=enc, step=24, data=bytes(192))
            elif case == 1:  # truncated
                yield "image", dict(width=64, height=48, encoding="rgb8", step=192, data=bytes(rng.randrange(0, 9000)))
            elif case == 2:  # step smaller than a row
                yield "image", dict(width=64, height=48, encoding="rgb8", step=rng.randrange(0, 191), data=bytes(9216))
            else:  # a layout that passes, pixels no model can use
                yield "image", dict(width=480, height=1, encoding="rgb8", step=1440, data=bytes(1440))
        elif kind == "compressed":
            yield "compressed", bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300)))
        else:
            yield "query", rng.choice(queries) + ("" if rng.random() < 0.5 else f" #{i}")


def _log_size(path: Path | None) -> int:
    return path.stat().st_size if path is not None and path.exists() else 0


def run_storm(inputs: int = 1000, stderr: str = "file", rate_hz: float = 200.0, answer_timeout_s: float = 60.0,
              start_timeout_s: float = 300.0, node_cmd: Callable[[str], list[str]] | None = None,
              state_dir: str | None = None, seed: int = 0, loopback: bool = True) -> dict:
    """Start the node, storm it, ask the good question; the figures (see the module docstring).

    stderr: 'file' (the node's stderr and stdout into a file; `log_bytes` counts the storm's)
    or 'unread' (a pipe of SMALL_PIPE_BYTES that nobody reads). `loopback`: set this process's
    DDS environment (netsafe, a random domain); False keeps the one already set (tests)."""
    from chatpose_ros.ros.netsafe import configure_loopback_only

    state = state_dir or str(Path.cwd() / "build" / "log_storm_state")
    Path(state).mkdir(parents=True, exist_ok=True)
    if loopback:
        configure_loopback_only(state, domain_id=random.randint(1, 101), force=True)
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image
    from std_msgs.msg import Header, String

    from chatpose_ros.msg import PipelineStatus
    from chatpose_ros.ros.convert import rgb_to_image

    cmd = (node_cmd or node_command)(state)
    log_file: Path | None = None
    read_fd = None
    if stderr == "file":
        log_file = Path(tempfile.mkdtemp(dir=state)) / "node.log"
        out = open(log_file, "wb")
    elif stderr == "unread":
        read_fd, write_fd = os.pipe()
        fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, SMALL_PIPE_BYTES)
        out = os.fdopen(write_fd, "wb")
    else:
        raise ValueError(f"stderr must be 'file' or 'unread', not {stderr!r}")
    proc = subprocess.Popen(cmd, stdout=out, stderr=out, stdin=subprocess.DEVNULL, env=os.environ.copy())
    out.close()
    ctx = Context()
    rclpy.init(context=ctx)
    node = Node("log_storm_client", context=ctx)
    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    answers: list[str] = []  # the good question's final statuses (ok, no_match or an error)
    node.create_subscription(PipelineStatus, f"/{NODE_NAME}/status",
                             lambda m: answers.append(m.code) if m.query == GOOD_QUERY and m.code not in NOT_FINAL else None,
                             qos)
    img_pub = node.create_publisher(Image, "/camera/image_raw", qos)
    cmp_pub = node.create_publisher(CompressedImage, "/camera/image_raw/compressed", qos)
    q_pub = node.create_publisher(String, f"/{NODE_NAME}/query", qos)
    figures: dict = {"inputs": inputs, "stderr": stderr}

    def spin_until(pred, timeout):
        t_end = time.monotonic() + timeout
        while not pred() and time.monotonic() < t_end and proc.poll() is None:
            ex.spin_once(timeout_sec=0.05)
        return pred()

    try:
        up = spin_until(lambda: all(p.get_subscription_count() > 0 for p in (img_pub, cmp_pub, q_pub)), start_timeout_s)
        figures["node_up"] = up
        if not up:
            return figures
        spin_until(lambda: False, 1.0)  # the node's start-up lines are out before the storm is counted
        before = _log_size(log_file)
        t0 = time.monotonic()
        for i, (kind, payload) in enumerate(bad_inputs(inputs, seed)):
            header = Header(frame_id="storm_camera")
            if kind == "image":
                img_pub.publish(Image(header=header, **payload))
            elif kind == "compressed":
                cmp_pub.publish(CompressedImage(header=header, format="jpeg", data=payload))
            else:
                q_pub.publish(String(data=payload))
            ex.spin_once(timeout_sec=0.0)
            time.sleep(max(0.0, t0 + (i + 1) / rate_hz - time.monotonic()))
        figures["storm_s"] = round(time.monotonic() - t0, 2)
        rgb = np.zeros((240, 320, 3), np.uint8)
        rgb[40:220, 60:120] = 200
        rgb[40:220, 200:260] = 120
        t1 = time.monotonic()
        img_pub.publish(rgb_to_image(rgb, Header(frame_id="storm_camera", stamp=node.get_clock().now().to_msg())))
        spin_until(lambda: False, 0.3)
        answers.clear()
        q_pub.publish(String(data=GOOD_QUERY))
        answered = spin_until(lambda: bool(answers), answer_timeout_s)
        figures["answered_after_storm"] = answered
        figures["answer_code"] = answers[-1] if answers else None
        figures["answer_s"] = round(time.monotonic() - t1, 2) if answered else None
        spin_until(lambda: False, 1.0)  # the answer's log lines
        figures["log_bytes"] = _log_size(log_file) - before if log_file is not None else None
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
            figures["exit_on_sigint"] = True
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
            figures["exit_on_sigint"] = False
        figures["exit_code"] = proc.returncode
        if read_fd is not None:
            os.close(read_fd)
        if log_file is not None:
            text = log_file.read_text(errors="replace")
            figures["tracebacks"] = text.count("Traceback")
            figures["publish_errors"] = text.count("publishing failed")
            figures["log_file"] = str(log_file)
        ex.shutdown(timeout_sec=5.0)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="log_storm", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--stderr", choices=("file", "unread"), default="file")
    parser.add_argument("--rate-hz", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    figures = run_storm(args.inputs, args.stderr, args.rate_hz, seed=args.seed)
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0 if figures.get("answered_after_storm") else 1


if __name__ == "__main__":
    sys.exit(main())
