"""Fault campaign of the node (issue 21), bounded in time and on loopback: lifecycle cycles that
must leak nothing, and a query storm whose every drop must be reported.

    python -m chatpose_ros.tools.fault_campaign lifecycle --cycles 50   # the shipped model, a worker process each
    python -m chatpose_ros.tools.fault_campaign storm --queries 1000 --seconds 10

`lifecycle`: configure / activate / deactivate / cleanup, `cycles` times, then the process's
threads, open files, shared-memory blocks, child processes and RSS against the first cycle's.
`storm`: `queries` queries on ~/query within `seconds` with a camera at 30 Hz; every query the
node received is answered, dropped or refused, every drop is on ~/status, and the queue never
holds more than query_queue_size. The test suite runs both, smaller (tests/test_fault_campaign.py).
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

from chatpose_ros.tools.bench import rss_mb

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fault_campaign", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("lifecycle", "storm"))
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
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
    params = [Parameter("mesh_body", value="off"), Parameter("image_qos", value="reliable")]
    node = ChatPoseNode(pipeline_factory=build_pipeline, context=ctx, parameter_overrides=params)
    executor = make_executor("multi", ctx)
    executor.add_node(node)
    spinning = threading.Event()
    spinning.set()

    def spin():
        while spinning.is_set():
            executor.spin_once(timeout_sec=0.1)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    try:
        client = _Client(node, ctx)
        if args.mode == "lifecycle":
            figures = lifecycle_cycles(node, args.cycles, client.answer_one)
            figures["leaks"] = leaks(figures)
        else:
            assert node.autostart(), "the node did not start"
            client.connect()
            figures = query_storm(client, args.queries, args.seconds)
    finally:
        spinning.clear()
        thread.join(10)
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

        self.node = node
        self._client = Node("fault_campaign_client", context=ctx)
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self._img = self._client.create_publisher(Image, node.cfg.image_topic, qos)
        self._query = self._client.create_publisher(String, "/chatpose_node/query", qos)

    def publish_image(self, rgb) -> None:
        from std_msgs.msg import Header

        from chatpose_ros.ros.convert import rgb_to_image

        self._img.publish(rgb_to_image(rgb, Header(frame_id="camera", stamp=self._client.get_clock().now().to_msg())))

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
