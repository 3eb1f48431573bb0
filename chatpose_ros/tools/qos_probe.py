"""Delivered rate of a camera in another process, best effort (sensor-data QoS) and reliable.

Two bare rclpy processes, both on the loopback-only Fast DDS set-up of
`chatpose_ros.ros.netsafe` (same random domain): a publisher sends `--seconds` x `--hz`
640x480 rgb8 `sensor_msgs/Image` frames (about 900 kB each, serialised once, only the stamp
patched per frame, as a C++ camera driver would cost), a subscriber with a raw subscription
(no deserialisation) counts the frames that arrive. Printed per QoS: frames sent, frames
delivered, the rate, the latency p50/p95 (stamp to arrival, same clock), the CPU seconds of
each process and the machine's load.

    python -m chatpose_ros.tools.qos_probe                  # both QoS, 10 s at 30 Hz
    python -m chatpose_ros.tools.qos_probe --qos best_effort --seconds 5 --json out.json

Bounded: each run sends a fixed number of frames and every wait has a timeout. Figures on a
loaded 2-core machine are noisy: compare QoS or profiles measured side by side.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("chatpose_ros.qos_probe")

ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = ROOT / "build" / "qos_probe_state"
TOPIC = "/qos_probe/image_raw"
RELIABLE_DEPTH = 10  # KEEP_LAST depth of the reliable runs (best effort: sensor-data QoS, KEEP_LAST 5)
MATCH_TIMEOUT_S = 15.0  # discovery of the subscriber by the publisher
ACK_TIMEOUT_S = 5.0  # reliable: wait for the last frames to be acknowledged
QUIET_S = 1.0  # subscriber: stop after the publisher is done and nothing arrived for this long
CHILD_TIMEOUT_S = 60.0  # extra wall time allowed to each child beyond the frames' duration
CDR_HEADER_BYTES = 4  # encapsulation (2 bytes kind incl. endianness, 2 bytes options)


def _qos(kind: str, depth: int | None):
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    if kind == "best_effort":
        if depth is None:
            return qos_profile_sensor_data
        return QoSProfile(depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT)
    return QoSProfile(depth=depth or RELIABLE_DEPTH, reliability=ReliabilityPolicy.RELIABLE)


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used so far, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _init(node_name: str):
    from chatpose_ros.ros.netsafe import configure_loopback_only

    configure_loopback_only(STATE_DIR)  # keeps the domain and profile the parent put in the environment
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node

    ctx = Context()
    rclpy.init(context=ctx)
    return rclpy, ctx, Node(node_name, context=ctx)


def _spin_in_thread(rclpy, ctx, node):
    from rclpy.executors import SingleThreadedExecutor

    ex = SingleThreadedExecutor(context=ctx)
    ex.add_node(node)
    t = threading.Thread(target=ex.spin, daemon=True)
    t.start()
    return ex, t


def _stop(rclpy, ctx, node, ex, t) -> None:
    ex.shutdown()
    t.join(timeout=5)
    node.destroy_node()
    rclpy.shutdown(context=ctx)


def run_subscriber(args) -> dict:
    """Count frames until stdin says the publisher is done and the topic has been quiet QUIET_S."""
    from sensor_msgs.msg import Image

    rclpy, ctx, node = _init("qos_probe_sub")
    arrivals: list[tuple[int, float]] = []  # (sequence number, latency s)
    last = [time.monotonic()]

    def on_frame(raw: bytes) -> None:
        now = time.time()
        endian = "<" if raw[1] & 1 else ">"
        sec, nsec = struct.unpack_from(endian + "iI", raw, CDR_HEADER_BYTES)
        (n,) = struct.unpack_from(endian + "I", raw, CDR_HEADER_BYTES + 8)
        seq = int(bytes(raw[CDR_HEADER_BYTES + 12:CDR_HEADER_BYTES + 12 + n]).rstrip(b"\0") or b"-1")
        arrivals.append((seq, now - (sec + nsec * 1e-9)))
        last[0] = time.monotonic()

    node.create_subscription(Image, TOPIC, on_frame, _qos(args.qos, args.depth), raw=True)
    ex, t = _spin_in_thread(rclpy, ctx, node)
    print("ready", flush=True)
    sys.stdin.readline()  # the parent writes a line when the publisher has exited
    deadline = time.monotonic() + args.seconds + CHILD_TIMEOUT_S
    while time.monotonic() - last[0] < QUIET_S and time.monotonic() < deadline:
        time.sleep(QUIET_S / 10)
    _stop(rclpy, ctx, node, ex, t)
    seqs = {s for s, _ in arrivals}
    lat = np.array([x for _, x in arrivals]) * 1000 if arrivals else np.array([np.nan])
    return {"received": len(arrivals), "unique": len(seqs), "latency_ms_p50": float(np.percentile(lat, 50)),
            "latency_ms_p95": float(np.percentile(lat, 95)), "sub_cpu_s": _cpu_s()}


def run_publisher(args) -> dict:
    """Wait for the subscriber, then send seconds x hz frames at a fixed rate."""
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    rclpy, ctx, node = _init("qos_probe_pub")
    pub = node.create_publisher(Image, TOPIC, _qos(args.qos, args.depth))
    ex, t = _spin_in_thread(rclpy, ctx, node)
    t0 = time.monotonic()
    while pub.get_subscription_count() < 1:
        if time.monotonic() - t0 > MATCH_TIMEOUT_S:
            _stop(rclpy, ctx, node, ex, t)
            raise TimeoutError(f"no subscriber matched {TOPIC} within {MATCH_TIMEOUT_S:.0f} s")
        time.sleep(0.01)
    match_s = time.monotonic() - t0
    msg = Image(height=args.height, width=args.width, encoding="rgb8", step=args.width * 3)
    msg.header.frame_id = "%08d" % 0
    msg.data = np.random.default_rng(0).integers(0, 256, args.height * args.width * 3, dtype=np.uint8).tobytes()
    raw = bytearray(serialize_message(msg))
    endian = "<" if raw[1] & 1 else ">"
    seq_at = CDR_HEADER_BYTES + 12
    n = int(round(args.seconds * args.hz))
    late = 0
    t_start = time.monotonic()
    for i in range(n):
        ns = time.time_ns()
        struct.pack_into(endian + "iI", raw, CDR_HEADER_BYTES, ns // 1_000_000_000, ns % 1_000_000_000)
        raw[seq_at:seq_at + 8] = b"%08d" % i
        pub.publish(bytes(raw))
        wait = t_start + (i + 1) / args.hz - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        else:
            late += 1
    send_s = time.monotonic() - t_start
    from rclpy.duration import Duration

    acked = pub.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S)) if args.qos == "reliable" else None
    _stop(rclpy, ctx, node, ex, t)
    return {"sent": n, "send_s": send_s, "late_sends": late, "match_s": match_s, "frame_bytes": len(raw),
            "acked": acked, "pub_cpu_s": _cpu_s()}


def _child(role: str, args, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "chatpose_ros.tools.qos_probe", "--role", role, "--qos", args.qos[0],
           "--hz", str(args.hz), "--seconds", str(args.seconds), "--width", str(args.width), "--height", str(args.height)]
    if args.depth is not None:
        cmd += ["--depth", str(args.depth)]
    return subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)


def probe(qos: str, args, extra_env: dict[str, str] | None = None) -> dict:
    """One publisher and one subscriber process for one QoS; returns their figures."""
    from chatpose_ros.ros.netsafe import configure_loopback_only

    env = dict(os.environ)
    env.update(extra_env or {})
    env["ROS_DOMAIN_ID"] = str(random.randint(1, 101))
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        env.update(configure_loopback_only(STATE_DIR))  # fills in what the environment does not set
    finally:
        os.environ.clear()
        os.environ.update(saved)
    one = argparse.Namespace(**{**vars(args), "qos": [qos]})
    limit = args.seconds + CHILD_TIMEOUT_S
    sub, pub = _child("sub", one, env), None
    try:
        if sub.stdout.readline().strip() != "ready":
            raise RuntimeError("subscriber did not start")
        pub = _child("pub", one, env)
        pub_out, _ = pub.communicate(timeout=limit)
        sub_out, _ = sub.communicate("done\n", timeout=limit)
    finally:
        for child in (sub, pub):
            if child is not None and child.poll() is None:
                child.kill()
    if pub.returncode or sub.returncode:
        raise RuntimeError(f"probe children failed (publisher rc {pub.returncode}, subscriber rc {sub.returncode})")
    res = {**json.loads(pub_out.strip().splitlines()[-1]), **json.loads(sub_out.strip().splitlines()[-1])}
    res["delivered"] = res["unique"] / max(res["sent"], 1)
    res["qos"] = qos
    res["load_1min"] = os.getloadavg()[0]
    res["profile"] = env["FASTDDS_DEFAULT_PROFILES_FILE"]
    return res


def measure(qos: tuple[str, ...] = ("best_effort", "reliable"), hz: float = 30.0, seconds: float = 10.0,
            width: int = 640, height: int = 480, depth: int | None = None, repeat: int = 1,
            extra_env: dict[str, str] | None = None) -> list[dict]:
    """Run the probe for each QoS (`repeat` times each); one dict of figures per run (see `probe`).

    For the benchmark: `delivered` is the fraction of frames that arrived, `unique` / `sent`."""
    args = argparse.Namespace(hz=hz, seconds=seconds, width=width, height=height, depth=depth)
    results = []
    for kind in qos:
        for _ in range(repeat):
            r = probe(kind, args, extra_env)
            results.append(r)
            log.info("%-11s delivered %3d of %3d (%5.1f %%)  latency p50 %6.1f ms p95 %6.1f ms  "
                     "CPU s pub %.1f sub %.1f  load %.2f", kind, r["unique"], r["sent"], 100 * r["delivered"],
                     r["latency_ms_p50"], r["latency_ms_p95"], r["pub_cpu_s"], r["sub_cpu_s"], r["load_1min"])
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="qos_probe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qos", nargs="+", choices=("best_effort", "reliable"), default=["best_effort", "reliable"])
    ap.add_argument("--hz", type=float, default=30.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--depth", type=int, default=None, help="history depth of both ends (default: sensor data 5, reliable 10)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per QoS")
    ap.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for both processes (e.g. RMW_FASTRTPS_PUBLICATION_MODE=ASYNCHRONOUS)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--role", choices=("sub", "pub"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role:
        args.qos = args.qos[0]
        out = run_subscriber(args) if args.role == "sub" else run_publisher(args)
        print(json.dumps(out), flush=True)
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    extra = dict(kv.split("=", 1) for kv in args.env)
    results = measure(tuple(args.qos), args.hz, args.seconds, args.width, args.height, args.depth, args.repeat, extra)
    if args.json:
        args.json.write_text(json.dumps({"hz": args.hz, "seconds": args.seconds, "width": args.width,
                                         "height": args.height, "env": extra, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
