"""Fault campaign of the node (issue 21), bounded in time and on loopback: lifecycle cycles that
must leak nothing, and a query storm whose every drop must be reported.

    python -m chatpose_ros.tools.fault_campaign lifecycle --cycles 50   # the shipped model, a worker process each
    python -m chatpose_ros.tools.fault_campaign storm --queries 1000 --seconds 10
    python -m chatpose_ros.tools.fault_campaign frames --hz 60 --seconds 10 [--size 3840x2160]
    python -m chatpose_ros.tools.fault_campaign clock

`lifecycle`: configure / activate / deactivate / cleanup, `cycles` times, then the process's
threads, open files, shared-memory blocks, child processes and RSS against the first cycle's.
`storm`: `queries` queries on ~/query within `seconds` with a camera at 30 Hz; every query the
node received is answered, dropped or refused, every drop is on ~/status, and the queue never
holds more than query_queue_size. `frames`: a camera at `hz` (frames of `size`) while the node
tracks the person a question chose: frames used, skipped and received, RSS (frame_flood).
`clock`: a bag replay under use_sim_time that starts over (clock_jump). The test suite runs them
all, smaller (tests/test_fault_campaign.py).
Prints one JSON line of figures.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import sys
import threading
import time
from pathlib import Path

from chatpose_ros.tools.bench import Spinner, rss_mb

SHM_DIR = Path("/dev/shm")
POOL_THREADS = "ThreadPoolExecutor"  # rclpy's MultiThreadedExecutor's workers (a bounded pool)


def _mapped_blocks() -> int:
    """Shared-memory blocks (multiprocessing's psm_*) this process has mapped."""
    with open("/proc/self/maps") as f:
        return len({line.split()[-2] if line.rstrip().endswith("(deleted)") else line.split()[-1]
                    for line in f if f"{SHM_DIR}/psm_" in line})


def resources() -> dict:
    """What this process holds now: Python threads (apart from an executor's pool, which grows to
    its bound on demand), open file descriptors, shared-memory blocks mapped, live child
    processes, RSS (MB)."""
    names = [t.name for t in threading.enumerate()]
    own = sorted(n for n in names if not n.startswith(POOL_THREADS))
    return {"threads": len(own), "thread_names": own, "pool_threads": len(names) - len(own),
            "fds": len(os.listdir("/proc/self/fd")), "shm_blocks": _mapped_blocks(),
            "children": len(multiprocessing.active_children()), "rss_mb": round(rss_mb(os.getpid()), 1)}


def lifecycle_cycles(node, cycles: int, on_active=None) -> dict:
    """Run `cycles` configure / activate / deactivate / cleanup cycles of `node` (a ChatPoseNode,
    spun by an executor in another thread); `on_active(node, i)` runs while it is active. Returns
    the resources after the first cycle and after the last, and the transitions that failed."""
    from rclpy.lifecycle import TransitionCallbackReturn

    failed, first, t0 = [], None, time.monotonic()
    for i in range(cycles):
        for name, step in (("configure", node.trigger_configure), ("activate", node.trigger_activate)):
            if step() != TransitionCallbackReturn.SUCCESS:
                failed.append(f"{i}:{name}")
        if on_active is not None:
            on_active(node, i)
        for name, step in (("deactivate", node.trigger_deactivate), ("cleanup", node.trigger_cleanup)):
            if step() != TransitionCallbackReturn.SUCCESS:
                failed.append(f"{i}:{name}")
        if i == 0:
            first = resources()
    return {"cycles": cycles, "seconds": round(time.monotonic() - t0, 1), "failed": failed, "after_first": first,
            "after_last": resources()}


def leaks(figures: dict, rss_slack_mb: float = 50.0) -> list[str]:
    """What grew between the first and the last cycle (beyond `rss_slack_mb` for RSS)."""
    a, b = figures["after_first"], figures["after_last"]
    out = [f"{k} {a[k]} -> {b[k]}" for k in ("threads", "fds", "shm_blocks", "children") if b[k] > a[k]]
    if b["rss_mb"] - a["rss_mb"] > rss_slack_mb:
        out.append(f"rss_mb {a['rss_mb']} -> {b['rss_mb']}")
    return out


def query_storm(harness, queries: int, seconds: float, camera_hz: float = 30.0) -> dict:
    """`queries` queries within `seconds` (and frames at `camera_hz`) into a running node through
    `harness` (tests/ros_harness.Harness or anything with publish_image, ask, node, wait_until);
    then the node's accounting. Waits (bounded) until every query received is accounted for."""
    import numpy as np

    node, stats = harness.node, harness.node.stats
    rgb = np.zeros((60, 80, 3), np.uint8)
    max_queue, t0, frames = 0, time.monotonic(), 0
    for i in range(queries):
        now = time.monotonic() - t0
        while frames < now * camera_hz:
            harness.publish_image(rgb)
            frames += 1
        harness.ask(f"the person on the right #{i}")
        max_queue = max(max_queue, node.session.queue_length)
        time.sleep(max(0.0, t0 + (i + 1) * seconds / queries - time.monotonic()))
    sent_s = time.monotonic() - t0

    def accounted():
        return (stats["queries_answered"] + stats["queries_dropped"] + stats["queries_invalid"]
                + stats["status_inference_failed"] >= stats["queries_received"]) and node.session.queue_length == 0 \
            and not node.session.busy

    harness.wait_until(accounted, timeout=120, what="every query accounted for")
    return {"queries": queries, "sent_s": round(sent_s, 1), "received": stats["queries_received"],
            "answered": stats["queries_answered"], "dropped": stats["queries_dropped"],
            "drops_on_status": stats["status_query_dropped"], "invalid": stats["queries_invalid"],
            "max_queue": max_queue, "queue_size": node.cfg.query_queue_size}


def frame_flood(harness, hz: float, seconds: float, size: tuple[int, int], query: str = "the person on the left",
                image=None) -> dict:
    """Frames of `size` (width, height) at `hz` for `seconds` from a camera thread (pre-serialised,
    as a C++ driver publishes) into a running node, with a question at the start (it starts the
    track): the node keeps answering and tracking, every frame it received is either used or
    counted as skipped (`frames_used`, `frames_skipped`, also on /diagnostics), and its RSS stays bounded.
    `image`: the frame ((H, W, 3) uint8 RGB of `size`; default: two grey halves, a person each for
    the test doubles)."""
    import numpy as np

    from chatpose_ros.tools.bench import _Camera

    node, stats = harness.node, harness.node.stats
    w, h = size
    if image is None:
        image = np.zeros((h, w, 3), np.uint8)
        image[:, : w // 2] = 90
    rgb = image
    before = dict(stats)
    rss0 = rss_mb(os.getpid())
    cam = _Camera(harness.client, node.cfg.image_topic, rgb, hz).start()
    try:
        harness.wait_until(lambda: stats["frames_received"] > before.get("frames_received", 0), 60, "a frame")
        answered = stats["queries_answered"]
        harness.ask(query)
        harness.wait_until(lambda: stats["queries_answered"] > answered, 60, "the answer during the flood")
        t0 = time.monotonic()
        rss: list[float] = []  # RSS (MB) every 0.1 s
        while time.monotonic() < t0 + seconds:
            time.sleep(0.1)
            rss.append(rss_mb(os.getpid()))
    finally:
        cam.stop()

    def delta(key: str) -> int:
        return stats[key] - before.get(key, 0)

    t_seconds = len(cam.times) / hz
    used = delta("frames_used")
    return {"size": f"{w}x{h}", "hz": hz, "sent": cam.sent, "sent_hz": round(cam.sent / max(t_seconds, 1e-6), 1),
            "received": delta("frames_received"), "skipped": delta("frames_skipped"), "invalid": delta("frames_invalid"),
            "tracking_updates": delta("tracking_updates"), "answered": delta("queries_answered"), "used": used,
            "rss_mb_before": round(rss0, 1), "rss_mb_max": round(max(rss), 1),
            # the second half against the first: a stream that leaks grows on, a bounded one levels off
            "rss_mb_max_first_half": round(max(rss[: len(rss) // 2]), 1),
            "rss_mb_max_second_half": round(max(rss[len(rss) // 2:]), 1)}


def clock_jump(harness, back_s: float = 900.0, start_s: float = 1000.0, hz: float = 20.0, seconds: float = 1.5,
               image=None) -> dict:
    """A bag replay that starts over, under use_sim_time: /clock and the image stamps run from
    `start_s` at `hz`, a question starts a track, then both jump back `back_s` seconds and run on
    for `seconds`. The node must report ``clock_jumped``, drop the track, keep publishing
    /diagnostics (on the steady clock) and answer the next question, which tracks again.
    `harness.node` must run with use_sim_time; `image`: the frame (as frame_flood's)."""
    import numpy as np
    from builtin_interfaces.msg import Time
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from std_msgs.msg import Header

    from chatpose_ros.ros.convert import rgb_to_image

    node, stats = harness.node, harness.node.stats
    clock_pub = harness.client.create_publisher(Clock, "/clock", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
    if image is None:
        image = np.zeros((60, 80, 3), np.uint8)
        image[:, :40] = 90
    rgb = image
    deadline = time.monotonic() + 120.0  # a bound for a loaded machine

    def play(t: float, n: int) -> float:
        """`n` ticks of the bag from `t`: /clock, then a frame stamped with it."""
        for _ in range(n):
            t += 1.0 / hz
            stamp = Time(sec=int(t), nanosec=int(round((t % 1.0) * 1e9)) % 1_000_000_000)
            clock_pub.publish(Clock(clock=stamp))
            harness.publish_raw_image(rgb_to_image(rgb, Header(frame_id="camera", stamp=stamp)))
            time.sleep(1.0 / hz)
            if time.monotonic() > deadline:
                raise TimeoutError("clock_jump did not finish within 120 s")
        return t

    def play_until(t: float, pred) -> float:
        while not pred():
            t = play(t, 1)
        return t

    harness.wait_until(lambda: clock_pub.get_subscription_count() > 0, 30, "the node's /clock subscription")
    t = play(start_s, int(hz / 2))
    answered = stats["queries_answered"]
    harness.ask("the person on the left")
    t = play_until(t, lambda: stats["queries_answered"] > answered and stats["tracking_updates"] > 0)
    tracking_before, diags_before = node.session.tracking, stats["status_clock_jumped"]
    n_diags = len(harness.received["diagnostics"])
    t = play_until(t - back_s, lambda: stats["clock_jumps"] > 0)
    tracking_after_jump = node.session.tracking
    t = play(t, int(hz * seconds))
    answered = stats["queries_answered"]
    harness.ask("the person on the right")
    t = play_until(t, lambda: stats["queries_answered"] > answered and node.session.tracking)
    return {"tracking_before": tracking_before, "tracking_after_jump": tracking_after_jump,
            "clock_jumps": stats["clock_jumps"], "clock_jumped_on_status": stats["status_clock_jumped"] - diags_before,
            "answered_after": stats["queries_answered"] - answered, "tracking_again": node.session.tracking,
            "diagnostics_since_jump": len(harness.received["diagnostics"]) - n_diags}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fault_campaign", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("lifecycle", "storm", "frames", "clock"))
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--hz", type=float, default=60.0, help="frames: the camera's rate")
    parser.add_argument("--size", default="640x480", help="frames: WIDTHxHEIGHT")
    parser.add_argument("--state-dir", default=str(Path.cwd() / "build" / "fault_campaign_state"))
    args = parser.parse_args(argv)

    from chatpose_ros.core.logs import quiet_libraries
    from chatpose_ros.ros.netsafe import configure_loopback_only

    configure_loopback_only(args.state_dir, domain_id=random.randint(1, 101), force=True)
    quiet_libraries()
    import rclpy
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from chatpose_ros.profiles import build_pipeline
    from chatpose_ros.ros.main import make_executor
    from chatpose_ros.ros.node import ChatPoseNode

    ctx = Context()
    rclpy.init(context=ctx)
    params = [Parameter("mesh_body", value="off"), Parameter("image_qos", value="reliable"),
              Parameter("tracking_rate_hz", value=30.0), Parameter("use_sim_time", value=args.mode == "clock")]
    node = ChatPoseNode(pipeline_factory=build_pipeline, context=ctx, parameter_overrides=params)
    executor = make_executor("multi", ctx)
    executor.add_node(node)
    spinner = Spinner(executor)
    try:
        client = _Client(node, ctx)
        executor.add_node(client.client)  # its /diagnostics subscription
        if args.mode == "lifecycle":
            figures = lifecycle_cycles(node, args.cycles, client.answer_one)
            figures["leaks"] = leaks(figures)
        else:
            assert node.autostart(), "the node did not start"
            client.connect()
            if args.mode == "storm":
                figures = query_storm(client, args.queries, args.seconds)
            elif args.mode == "frames":
                from chatpose_ros.tools.bench import DEMO_IMAGE, _image

                w, h = (int(v) for v in args.size.split("x"))
                figures = frame_flood(client, args.hz, args.seconds, (w, h), image=_image(DEMO_IMAGE, (w, h)))
            else:
                from chatpose_ros.tools.bench import DEMO_IMAGE, _image

                figures = clock_jump(client, image=_image(DEMO_IMAGE))
    finally:
        spinner.stop()
        node.close_model()
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        rclpy.shutdown(context=ctx)
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0 if not figures.get("leaks") and not figures.get("failed") else 1


class _Client:
    """The bench's client: a camera and a questioner on the node's topics (query_storm's harness)."""

    def __init__(self, node, ctx) -> None:
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        from diagnostic_msgs.msg import DiagnosticArray

        self.node = node
        self.client = Node("fault_campaign_client", context=ctx)
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self._img = self.client.create_publisher(Image, node.cfg.image_topic, qos)
        self._query = self.client.create_publisher(String, "/chatpose_node/query", qos)
        self.received: dict[str, list] = {"diagnostics": []}
        self.client.create_subscription(DiagnosticArray, "/diagnostics", self.received["diagnostics"].append, 10)

    def publish_image(self, rgb) -> None:
        from std_msgs.msg import Header

        from chatpose_ros.ros.convert import rgb_to_image

        self._img.publish(rgb_to_image(rgb, Header(frame_id="camera", stamp=self.client.get_clock().now().to_msg())))

    def publish_raw_image(self, msg) -> None:
        self._img.publish(msg)

    def ask(self, text: str) -> None:
        from std_msgs.msg import String

        self._query.publish(String(data=text))

    def wait_until(self, pred, timeout: float, what: str) -> None:
        t_end = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > t_end:
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(0.01)

    def connect(self) -> None:
        self.wait_until(lambda: self._query.get_subscription_count() > 0 and self._img.get_subscription_count() > 0,
                        60, "the node's subscriptions")

    def answer_one(self, node, i: int) -> None:
        """While active: a frame and a question, answered (a frame through shared memory)."""
        import numpy as np

        self.connect()
        n = node.stats["queries_answered"] + 1
        self.publish_image(np.zeros((240, 320, 3), np.uint8))
        self.wait_until(lambda: node.session.latest is not None, 30, "the frame")
        self.ask(f"the person on the left #{i}")
        self.wait_until(lambda: node.stats["queries_answered"] >= n, 60, "the answer")


if __name__ == "__main__":
    sys.exit(main())
