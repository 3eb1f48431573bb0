"""`chatpose-bench`: speed, throughput and memory of the node, printed as tables.

    chatpose-bench overhead              node overhead alone per frame (conversion, messages, markers)
    chatpose-bench frames                what a camera frame costs the node: deserialised vs raw bytes
    chatpose-bench callback              our node vs a baseline that infers inside the image callback,
                                         side by side in one run (callback delay, dropped frames)
    chatpose-bench e2e [--queries 20]    the same model in process, then over ROS 2 on loopback (node in
                                         its own process): query latency, tracking rate, image callback
                                         gaps while answering, node RSS (--json FILE: the figures)
    chatpose-bench memory [--seconds 120] RSS over a long run (camera + a query every second), slope
    chatpose-bench depth                 tracking rate with depth_enabled off, then on (camera_info in both;
                                         the camera also sends an aligned 16UC1 depth image and its
                                         camera_info in the second run), side by side
    chatpose-bench executors [--rounds 2] [--busy 1]   the node's executors side by side: action vs topic
                                         latency, feedback stages, tracking rate and the CPU per tracked
                                         frame of each process, /tf after ~/pose, outputs while the
                                         camera pauses
    chatpose-bench all

Every ROS process here stays on loopback (chatpose_ros.ros.netsafe). Figures depend on the
machine: compare ratios measured in the same run.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

DEMO_IMAGE = "/usr/share/doc/opencv-doc/examples/data/basketball1.png"
MESH_STARTING = ("anny: not started", "anny: loading")  # /diagnostics mesh_body values while the mesh loads
CAMERA_TIMES_KEPT = 100_000  # send times a benchmark camera remembers (about an hour at 30 Hz)
BENCH_DEPTH_MM = 3000  # the benchmark camera's depth image: a wall 3 m away
CAMERA_MAX_S = 3600.0  # an e2e run stops its camera process itself; this bounds it if the run dies


def _pct(xs, q):
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if len(xs) else float("nan")


def _table(title: str, rows: list[tuple[str, str]]) -> None:
    w = max(len(k) for k, _ in rows)
    print(f"\n## {title}")
    for k, v in rows:
        print(f"  {k:<{w}}  {v}")


def _image(path: str, size=(640, 480)) -> np.ndarray:
    """The benchmark frame: `path` read as RGB (chatpose_ros.core.image_files.read_image), resized to `size`."""
    import cv2

    from chatpose_ros.core.image_files import read_image

    return cv2.resize(read_image(path), size)


def _pipeline(args):
    from chatpose_ros.core.config import PipelineConfig
    from chatpose_ros.profiles import build_pipeline

    return build_pipeline(PipelineConfig(profile=args.profile, checkpoint=args.checkpoint, cpu_threads=args.cpu_threads))


def bench_overhead(args) -> dict:
    """Per-frame cost of what the node adds around the model: decode the Image message,
    build the SmplPoseArray and the MarkerArray for a result, serialise them."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from chatpose_ros.core.types import PoseResult
    from chatpose_ros.ros import convert, markers

    pipeline = _pipeline(args)
    img = _image(args.image)
    people = pipeline.observe(img) or list(pipeline.estimate(img, "the person on the left").people)
    pipeline.close()
    result = PoseResult(query="the person on the left", answer="Sure, it is [POSE].", people=tuple(people), selected=0,
                        model_id="x")
    header = Header(frame_id="cam")
    msg = convert.rgb_to_image(img, header, "bgr8")
    n = args.repeats * 50
    t = {"decode": [], "pose_msgs": [], "markers": [], "serialise": []}
    for _ in range(n):
        t0 = time.perf_counter()
        convert.image_to_rgb(msg, 16_000_000)
        t1 = time.perf_counter()
        arr = convert.result_to_msg(result, header)
        t2 = time.perf_counter()
        marr = markers.result_markers(result, header)
        t3 = time.perf_counter()
        serialize_message(arr)
        serialize_message(marr)
        t4 = time.perf_counter()
        for k, a, b in (("decode", t0, t1), ("pose_msgs", t1, t2), ("markers", t2, t3), ("serialise", t3, t4)):
            t[k].append((b - a) * 1000)
    total = [sum(v) for v in zip(*t.values())]
    rows = [(f"{k} (p50 / p95 ms)", f"{_pct(v, 50):.3f} / {_pct(v, 95):.3f}") for k, v in t.items()]
    rows.append(("total per frame (p50 / p95 ms)", f"{_pct(total, 50):.3f} / {_pct(total, 95):.3f}"))
    rows.append(("people per frame", str(len(people))))
    _table(f"node overhead alone per 640x480 frame ({n} runs)", rows)
    return {"overhead_ms_p50": _pct(total, 50), "overhead_ms_p95": _pct(total, 95)}


def CAMERA_QOS():
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)


class _Camera:
    """Publishes a frame at `hz` from its own thread, stamping each with the send time.

    The Image is serialised once and only its stamp is patched per frame: rclpy's own
    conversion of a 640x480 Image costs about 24 ms of Python per publish, which a real (C++)
    camera driver does not spend, and which would starve a 2-core machine.

    QoS: reliable, depth 1 (and the nodes subscribe so). Best-effort frames arrive as well
    since the loopback profile is really loaded (`chatpose-bench qos`; before, Fast DDS ran on
    its default 512 KiB shared-memory segment and delivered about a quarter of them)."""

    def __init__(self, node, topic, img, hz, camera_info: bool = False, depth: bool = False):
        from rclpy.serialization import serialize_message
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import Header

        from chatpose_ros.core.camera import CameraIntrinsics
        from chatpose_ros.ros.convert import rgb_to_image
        from chatpose_ros.ros.tf import camera_info_msg

        self.node, self.hz, self.sent = node, hz, 0
        self.times: collections.deque[float] = collections.deque(maxlen=CAMERA_TIMES_KEPT)  # send times (monotonic)
        self.pub = node.create_publisher(Image, topic, CAMERA_QOS())
        self.raw = bytearray(serialize_message(rgb_to_image(img, Header(frame_id="cam"), "bgr8")))
        self._endian = "<" if self.raw[1] & 1 else ">"  # CDR encapsulation: byte 1 = endianness
        # with the frame (same stamp): camera_info and, with `depth`, an aligned depth image (a
        # wall at BENCH_DEPTH_MM) and its camera_info, each serialised once and stamped per frame
        self.extra: list[tuple[object, bytearray]] = []
        h, w = img.shape[:2]
        info = serialize_message(camera_info_msg(CameraIntrinsics.from_focal(float(w), w, h), Header(frame_id="cam")))
        if camera_info:
            self.extra.append((node.create_publisher(CameraInfo, "/camera/camera_info", CAMERA_QOS()), bytearray(info)))
        if depth:
            z = np.full((h, w), BENCH_DEPTH_MM, "<u2")
            depth_msg = Image(header=Header(frame_id="cam"), height=h, width=w, encoding="16UC1", is_bigendian=0,
                              step=2 * w, data=z.tobytes())
            self.extra += [(node.create_publisher(Image, "/camera/aligned_depth_to_color/image_raw", CAMERA_QOS()),
                            bytearray(serialize_message(depth_msg))),
                           (node.create_publisher(CameraInfo, "/camera/aligned_depth_to_color/camera_info", CAMERA_QOS()),
                            bytearray(info))]
        self.paused = threading.Event()  # set: no frames (a camera that stops, then comes back)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        import struct

        t0, ticks = time.monotonic(), 0
        while not self._stop.is_set():
            ticks += 1
            if not self.paused.is_set():
                ns = self.node.get_clock().now().nanoseconds
                # header.stamp (int32 sec, uint32 nanosec) is the first field after the 4-byte CDR header
                struct.pack_into(self._endian + "iI", self.raw, 4, ns // 1_000_000_000, ns % 1_000_000_000)
                for pub, raw in self.extra:  # depth first: the node matches it to the frame after the model ran
                    struct.pack_into(self._endian + "iI", raw, 4, ns // 1_000_000_000, ns % 1_000_000_000)
                    pub.publish(bytes(raw))
                self.pub.publish(bytes(self.raw))
                self.times.append(time.monotonic())
                self.sent += 1
            time.sleep(max(0.0, t0 + ticks / self.hz - time.monotonic()))

    def start(self):
        self._t.start()
        return self

    def stop(self):
        self._stop.set()
        self._t.join()


class Spinner:
    """Spins `executor` in a daemon thread with spin_once until `stop()`: shutting down an executor
    that waits in spin() races rclpy's guard condition."""

    def __init__(self, executor) -> None:
        self._executor = executor
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running.is_set():
            self._executor.spin_once(timeout_sec=0.1)

    def stop(self, timeout: float = 10.0) -> None:
        self._running.clear()
        self._thread.join(timeout)


def _stop_ros_run(cam, spinner: Spinner, ex, client, proc, first=None, shutdown=None) -> None:
    """End a bench run over ROS: the camera process, the client's spin thread and executor, the
    client node (after `first`, e.g. an action client; then `shutdown`, e.g. rclpy's), and the node
    process (SIGINT, killed after 30 s)."""
    if cam is not None:
        _stop_camera(cam)
    spinner.stop()
    ex.shutdown(timeout_sec=5)
    if first is not None:
        first()
    client.destroy_node()
    if shutdown is not None:
        shutdown()
    proc.send_signal(2)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _stop_camera(cam: subprocess.Popen) -> list[float]:
    """Stop a `chatpose-bench camera` process; its send times (monotonic s)."""
    cam.terminate()
    try:
        text = cam.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        cam.kill()
        return []
    lines = [ln for ln in text.splitlines() if ln.startswith("{")]
    return json.loads(lines[-1])["times"] if lines else []


def run_camera(args) -> int:
    """Hidden mode: be the camera (own process) for `args.seconds`, publishing at `args.hz`."""
    from chatpose_ros.ros.netsafe import configure_loopback_only

    configure_loopback_only(Path.cwd() / "build" / "bench_state")
    import rclpy
    from rclpy.node import Node

    rclpy.init(args=[])  # not sys.argv: the benchmark's own options are no ROS arguments
    node = Node("bench_camera")
    cam = _Camera(node, "/camera/image_raw", _image(args.image), args.hz, args.camera_info, args.depth).start()
    stop = threading.Event()  # SIGTERM ends the run early (e2e stops its camera so)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # SIGUSR1 pauses the camera, the next one resumes it (executors: outputs while the camera pauses)
    signal.signal(signal.SIGUSR1, lambda *_: cam.paused.clear() if cam.paused.is_set() else cam.paused.set())
    stop.wait(args.seconds)
    cam.stop()
    # send times on the system-wide monotonic clock (time.monotonic), comparable across processes
    print(json.dumps({"sent": cam.sent, "times": list(cam.times)}), flush=True)
    node.destroy_node()
    rclpy.shutdown()
    return 0


def bench_callback(args) -> dict:
    """Side by side, one run, same pipeline, same camera (its own process): our node (inference
    on a worker thread) against the common pattern of running inference inside the image
    callback. Measures the frames each node's image callback gets and the gaps between them."""
    from chatpose_ros.ros.netsafe import configure_loopback_only

    configure_loopback_only(Path.cwd() / "build" / "bench_state", force=True)
    import rclpy
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    from chatpose_ros.ros.convert import image_to_rgb
    from chatpose_ros.ros.node import ChatPoseNode

    pipeline = _pipeline(args)
    img = _image(args.image)
    pipeline.estimate(img, "warm up")

    class BaselineNode(Node):
        """Inference inside the image callback (as ros2_nanollm-style nodes do)."""

        def __init__(self, **kw):
            super().__init__("baseline_node", **kw)
            self.pending = None
            self.image_arrivals: list[float] = []
            self.image_delays_ms: list[float] = []
            self.stats = {"frames_received": 0, "queries_answered": 0}
            self.create_subscription(Image, "/camera/image_raw", self.on_image, CAMERA_QOS())
            self.create_subscription(String, "~/query", lambda m: setattr(self, "pending", m.data), 10)

        def on_image(self, msg):
            self.stats["frames_received"] += 1
            self.image_arrivals.append(time.monotonic())
            stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
            self.image_delays_ms.append((self.get_clock().now().nanoseconds * 1e-9 - stamp) * 1000)
            rgb = image_to_rgb(msg, 16_000_000)
            if self.pending is not None:
                query, self.pending = self.pending, None
                pipeline.estimate(rgb, query)
                self.stats["queries_answered"] += 1

    rows, out = [], {}
    rclpy.init(args=[])  # not sys.argv: the benchmark's own options are no ROS arguments
    try:
        for name in ("ours", "baseline"):
            if name == "ours":
                node = ChatPoseNode(pipeline_factory=lambda cfg: pipeline,
                                    parameter_overrides=[Parameter("track_after_query", value=False),
                                                         Parameter("model_in_process", value=True),
                                                         Parameter("mesh_body", value="off"),  # the baseline draws none
                                                         Parameter("image_qos", value="reliable")])
                node.autostart()
            else:
                node = BaselineNode()
            client = Node(f"bench_client_{name}")
            qpub = client.create_publisher(String, f"/{node.get_name()}/query", 10)
            ex = MultiThreadedExecutor(num_threads=4)
            ex.add_node(node)
            ex.add_node(client)
            th = threading.Thread(target=ex.spin, daemon=True)
            th.start()
            seconds = 3.0 + args.queries * args.query_period
            cam = subprocess.Popen([sys.executable, "-m", "chatpose_ros.tools.bench", "camera", "--hz", str(args.hz),
                                    "--seconds", str(seconds), "--image", args.image],
                                   env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            time.sleep(3.0)  # camera process up and connected
            t_start = time.monotonic()
            frames0 = node.stats["frames_received"]
            if name == "ours":
                node.session.drain_image_gaps()
            for i in range(args.queries):
                qpub.publish(String(data="the person on the left"))
                time.sleep(args.query_period)
            t_end = time.monotonic()
            cam_out = cam.communicate(timeout=60)[0]
            if name == "ours":
                gaps = np.array(node.session.drain_image_gaps() or [float("nan")])
            else:
                arrivals = [t for t in node.image_arrivals if t_start <= t <= t_end]
                gaps = np.diff(arrivals) * 1000 if len(arrivals) > 1 else np.array([float("nan")])
            received = node.stats["frames_received"] - frames0
            expected = (t_end - t_start) * args.hz
            answered = node.stats["queries_answered"]
            rows.append((name, f"frames received {received} of ~{expected:.0f} sent ({100 * received / expected:.0f}%), "
                               f"gap between image callbacks p50 {_pct(gaps, 50):.0f} ms, p95 {_pct(gaps, 95):.0f} ms, "
                               f"max {np.nanmax(gaps):.0f} ms; queries answered {answered}"))
            out[name] = {"frames_received": received, "frames_expected": expected, "gap_p50_ms": _pct(gaps, 50),
                         "gap_p95_ms": _pct(gaps, 95), "gap_max_ms": float(np.nanmax(gaps)), "answered": answered,
                         "camera": json.loads(cam_out.strip().splitlines()[-1]) if cam_out.strip() else {}}
            if name == "ours":
                node.trigger_deactivate()
            ex.shutdown(timeout_sec=5)
            th.join(timeout=10)
            if name == "ours":
                node.model.runner = None  # the pipeline is shared with the baseline: closed once at the end
            node.destroy_node()
            client.destroy_node()
    finally:
        rclpy.shutdown()
        pipeline.close()
    base, ours = out["baseline"], out["ours"]
    rows.append(("max callback gap, baseline / ours", f"{base['gap_max_ms'] / max(ours['gap_max_ms'], 1e-3):.1f}x"))
    rows.append(("frames received, ours / baseline", f"{ours['frames_received'] / max(base['frames_received'], 1):.1f}x"))
    _table(f"image callback while answering ({args.queries} queries every {args.query_period} s, camera {args.hz} Hz "
           f"in its own process, same pipeline)", rows)
    return out


def bench_depth(args) -> dict:
    """Tracking with depth_enabled off and on, `args.pairs` pairs alternating in one run (camera_info
    in both, so that both place people; "on" also reads the depth image): tracking pose messages
    per second, and their ratio per pair."""
    import copy

    runs: dict[str, list[dict]] = {"off": [], "on": []}
    for i in range(args.pairs):
        for depth in ((False, True) if i % 2 == 0 else (True, False)):
            a = copy.copy(args)
            a.camera_info, a.depth = True, depth
            a.node_param = [*args.node_param] + (["depth_enabled:=true"] if depth else [])
            print(f"# pair {i + 1}: e2e with depth_enabled {'on' if depth else 'off'}", flush=True)
            runs["on" if depth else "off"].append(bench_e2e(a))
    off = [r["tracking_hz_ros"] for r in runs["off"]]
    on = [r["tracking_hz_ros"] for r in runs["on"]]
    ratios = [b / a if a else float("nan") for a, b in zip(off, on)]
    out = {"tracking_hz_depth_off": off, "tracking_hz_depth_on": on, "ratio_on_to_off": ratios,
           "median_ratio_on_to_off": float(np.median(ratios)),
           "camera_hz": [r["camera_hz"] for r in runs["off"] + runs["on"]],
           "query_p50_ms_ros_off_on": [[r["query_p50_ms_ros"] for r in runs["off"]], [r["query_p50_ms_ros"] for r in runs["on"]]],
           "load_average_1min": [r["load_average_1min"] for r in runs["off"] + runs["on"]], "runs": runs}
    _table(f"tracking with depth off / on ({args.pairs} pairs, alternating, one run)", [
        ("tracking pose messages per second, off", " / ".join(f"{v:.1f}" for v in off)),
        ("tracking pose messages per second, on", " / ".join(f"{v:.1f}" for v in on)),
        ("on / off per pair (target >= 1.0 within noise)", " / ".join(f"{v:.2f}" for v in ratios)),
        ("camera (Hz)", " / ".join(f"{v:.1f}" for v in out["camera_hz"])),
        ("people placed from depth / monocular, depth on", " / ".join(
            f"{r['translations'].get('translations_depth', 0)}/{r['translations'].get('translations_monocular', 0)}"
            for r in runs["on"]))])
    return out


def _node_process(args, state: Path, executor: str = "", params: tuple[str, ...] = ()):
    cmd = [sys.executable, "-m", "chatpose_ros.ros.main", "--state-dir", str(state), "--executor",
           executor or args.node_executor,
           "--ros-args",
           "-p", f"model.profile:={args.profile}", "-p", "track_after_query:=true", "-p", "max_image_age_s:=0.0",
           "-p", "image_qos:=reliable", "-p", f"tracking_rate_hz:={args.hz}", "-p", "diagnostics_period_s:=1.0",
           "-p", f"model.cpu_threads:={args.cpu_threads}"]
    if args.checkpoint:
        cmd += ["-p", f"model.checkpoint:={args.checkpoint}"]
    for param in [*args.node_param, *params]:
        cmd += ["-p", param]
    log = open(state / "node.log", "w")  # the node's own log: why it stopped, if it did
    return subprocess.Popen(cmd, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)


def bench_in_process(args, img: np.ndarray, queries: list[str]) -> dict:
    """The same model, same frame, no ROS: query latency and tracking rate (observe near the
    tracked box + tracker update, as the node does per frame) in this process. The latency is
    to the pose, as over ROS: a streaming profile hands the pose out (on_pose) before its words,
    and the whole answer's latency is kept beside it."""
    from chatpose_ros.core.model_runners import timed_estimate
    from chatpose_ros.profiles import tracker_factory

    pipeline = _pipeline(args)
    try:
        pipeline.estimate(img, "warm up")
        lat, whole, result = [], [], None
        for q in queries:
            result, to_pose_ms, whole_ms = timed_estimate(pipeline, img, q)
            lat.append(to_pose_ms)
            whole.append(whole_ms)
        tracker = tracker_factory(args.profile)()
        frames = 0
        if result is not None and result.selected_person is not None and result.selected_person.box is not None:
            tracker.start(result.selected_person)
            t0 = time.monotonic()
            while time.monotonic() - t0 < args.track_seconds:
                tracker.update(pipeline.observe(img, near=tracker.last_box))
                frames += 1
            hz = frames / (time.monotonic() - t0)
        else:
            hz = float("nan")
    finally:
        pipeline.close()
    return {"query_p50_ms_in_process": _pct(lat, 50), "query_p95_ms_in_process": _pct(lat, 95),
            "answer_p50_ms_in_process": _pct(whole, 50), "tracking_hz_in_process": hz}


def _children(pid: int) -> list[int]:
    """The child processes of `pid` (the model worker, multiprocessing's resource tracker), from
    /proc/*/stat (some kernels have no /proc/PID/task/TID/children)."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def _family_rss(pid: int) -> tuple[float, float]:
    """(RSS of `pid`, summed RSS of its child processes: the model worker) in MB."""
    return rss_mb(pid), float(sum(rss_mb(c) for c in _children(pid)))


def cpu_s(pid: int, tid: int | None = None) -> float:
    """CPU time (user + system, s) of process `pid` (or of its thread `tid`) so far; 0 when gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent between `start()` and `stop()` by named processes and by each thread of
    process `threads_of` (the node's: they have no names outside Python, so listed busiest first)."""

    def __init__(self, pids: dict[str, int], threads_of: int | None = None) -> None:
        self.pids, self.threads_of = pids, threads_of
        self._t0: dict = {}

    def _sample(self) -> dict:
        out = {name: cpu_s(pid) for name, pid in self.pids.items()}
        if self.threads_of is not None:
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{self.threads_of}/task")]
            except OSError:
                tids = []
            out.update({("thread", t): cpu_s(self.threads_of, t) for t in tids})
        return out

    def start(self) -> None:
        self._t0 = self._sample()

    def stop(self) -> tuple[dict[str, float], list[float]]:
        """({name: CPU s}, the node's threads' CPU s, busiest first) since `start()`."""
        t1 = self._sample()
        spent = {k: v - self._t0.get(k, 0.0) for k, v in t1.items()}
        procs = {k: v for k, v in spent.items() if not isinstance(k, tuple)}
        threads = sorted((v for k, v in spent.items() if isinstance(k, tuple)), reverse=True)
        return procs, threads


def bench_e2e(args, seconds: float | None = None) -> dict:
    """One run: the model in this process first (reference), then the node in its own process
    with this process as the camera and the user. Measures query -> pose message latency,
    tracking updates per second, the gaps between the node's image callbacks while it answers
    (from its /diagnostics), and (memory mode) the node's RSS over time."""
    img = _image(args.image)
    n = args.queries if seconds is None else int(seconds / args.query_period)
    queries = [f"the person on the left #{i}" for i in range(n)]
    before = bench_in_process(args, img, queries[: args.queries]) if seconds is None else {}
    load_before = os.getloadavg()[0]

    from chatpose_ros.ros.netsafe import configure_loopback_only

    state = Path.cwd() / "build" / "bench_state"
    configure_loopback_only(state, force=True)
    proc = _node_process(args, state)
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from std_msgs.msg import String

    from chatpose_ros.msg import SmplPoseArray

    rclpy.init(args=[])  # not sys.argv: the benchmark's own options are no ROS arguments
    client = Node("bench_e2e_client")
    answers: dict[str, float] = {}
    tracking: list[float] = []
    diags: list[tuple[float, dict]] = []

    asked = set(queries)
    words: list[float] = []  # arrival times of the complete answers (~/answer), in query order

    def on_poses(msg):
        # the first pose message about a query is its answer's (streamed before the words, or
        # with them): later ones are tracking updates of the person it chose
        if msg.query in asked and msg.query not in answers:
            answers[msg.query] = time.monotonic()
        else:
            tracking.append(time.monotonic())

    def on_diag(msg):
        for st in msg.status:
            if st.name.startswith("chatpose_node"):
                diags.append((time.monotonic(), {kv.key: kv.value for kv in st.values}))

    client.create_subscription(SmplPoseArray, "/chatpose_node/poses", on_poses, 50)
    client.create_subscription(String, "/chatpose_node/answer", lambda _msg: words.append(time.monotonic()), 50)
    client.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 50)
    qpub = client.create_publisher(String, "/chatpose_node/query", 10)
    ex = MultiThreadedExecutor(num_threads=2)
    ex.add_node(client)
    spinner = Spinner(ex)
    # the camera in a process of its own, as a camera driver is: its timing does not depend on
    # this process's polling and subscriptions
    cam = subprocess.Popen([sys.executable, "-m", "chatpose_ros.tools.bench", "camera", "--hz", str(args.hz),
                            "--seconds", str(CAMERA_MAX_S), "--image", args.image]
                           + ["--camera-info"] * args.camera_info + ["--depth"] * args.depth,
                           env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out: dict = {}
    try:
        t0 = time.monotonic()
        # ready: the model loaded, frames arriving, and the Anny mesh process done loading (it
        # loads in the background after configure: its seconds of CPU would land on the first queries)
        while not (diags and diags[-1][1].get("model_state") == "loaded" and int(diags[-1][1].get("frames_received", 0)) > 0
                   and diags[-1][1].get("mesh_body", "") not in MESH_STARTING):
            if time.monotonic() - t0 > 300 or proc.poll() is not None:
                raise RuntimeError("the node did not come up (model and mesh load) within 300 s")
            time.sleep(0.2)
        print(f"node ready after {time.monotonic() - t0:.1f} s (model load included)", flush=True)
        lat, lat_words, rss = [], [], []
        t_start = time.monotonic()
        busy_windows = []
        for q in queries:
            sent, n_words = time.monotonic(), len(words)
            qpub.publish(String(data=q))
            while (q not in answers or len(words) == n_words) and time.monotonic() - sent < 30:
                time.sleep(0.002)
            if q in answers:
                lat.append((answers[q] - sent) * 1000)
                busy_windows.append((sent, answers[q]))
            if len(words) > n_words:
                lat_words.append((words[n_words] - sent) * 1000)
            rss.append((time.monotonic() - t_start, *_family_rss(proc.pid)))
            time.sleep(max(0.0, args.query_period - (time.monotonic() - sent)))
        elapsed = time.monotonic() - t_start
        # gaps between image callbacks: each diagnostics message carries those since the last
        # one; keep the messages whose period overlaps an answer in progress
        period = 1.0
        gaps = [float(g) for t, v in diags if t_start <= t <= t_start + elapsed + period and v.get("image_gaps_ms")
                and any(a - period <= t <= b + period for a, b in busy_windows)
                for g in v["image_gaps_ms"].split(",")]
        # then tracking alone (no new query): the rate the node keeps up with a person
        t_track = time.monotonic()
        time.sleep(args.track_seconds)
        track_hz = len([t for t in tracking if t >= t_track]) / (time.monotonic() - t_track)
        node_rss, worker_rss = _family_rss(proc.pid)
        load_during = os.getloadavg()[0]
        cam_times = _stop_camera(cam)
        cam = None
        sent_in_run = [t for t in cam_times if t_start <= t <= t_start + elapsed]
        camera_hz = len(sent_in_run) / elapsed
        camera_gaps = np.diff(sent_in_run) * 1000 if len(sent_in_run) > 1 else []
        out = {"query_p50_ms_ros": _pct(lat, 50), "query_p95_ms_ros": _pct(lat, 95), "answered": len(lat),
               "query_words_p50_ms_ros": _pct(lat_words, 50),
               "asked": len(queries), "tracking_hz_ros": track_hz, "camera_hz": camera_hz,
               "callback_gap_p95_ms": _pct(gaps, 95), "callback_gap_max_ms": float(np.max(gaps)) if gaps else float("nan"),
               "camera_send_gap_p95_ms": _pct(camera_gaps, 95),
               "node_rss_mb": node_rss, "worker_rss_mb": worker_rss, "cpu_threads": args.cpu_threads,
               "node_executor": args.node_executor,
               "load_average_1min": [load_before, load_during],
               # where the node's translations came from (its /diagnostics counters at the end)
               "translations": {k: int(v) for k, v in (diags[-1][1] if diags else {}).items()
                                if k.startswith(("translations_", "depth_"))}}
        rows = [("query -> pose message over ROS (p50 / p95 ms)",
                  f"{out['query_p50_ms_ros']:.0f} / {out['query_p95_ms_ros']:.0f}"),
                 ("query -> complete answer on ~/answer (p50 ms)", f"{out['query_words_p50_ms_ros']:.0f}"),
                 ("answered / asked", f"{len(lat)} / {len(queries)}"),
                 (f"tracking pose messages per second, {args.track_seconds:.0f} s without queries",
                  f"{track_hz:.1f} (camera {camera_hz:.1f} Hz)"),
                 ("image callback gap while answering (p95 / max ms)",
                  f"{out['callback_gap_p95_ms']:.0f} / {out['callback_gap_max_ms']:.0f} ({len(gaps)} gaps); "
                  f"the camera's own send gap p95 {out['camera_send_gap_p95_ms']:.0f}"),
                 ("RSS node / model worker (MB)", f"{node_rss:.0f} / {worker_rss:.0f}")]
        if seconds is not None and len(rss) > 4:
            t = np.array([r[0] for r in rss])
            m = np.array([r[1] + r[2] for r in rss])
            h = len(m) // 2
            slope = float(np.polyfit(t[h:], m[h:], 1)[0]) * 60
            out.update({"rss_mb_start": m[0], "rss_mb_end": m[-1], "rss_slope_mb_per_min_second_half": slope})
            rows.append(("node + worker RSS start -> end (MB)", f"{m[0]:.0f} -> {m[-1]:.0f}"))
            rows.append(("RSS slope, second half (MB/min)", f"{slope:.2f}"))
        _table(f"end to end over ROS 2 loopback ({args.profile} profile, node in its own process, model in its worker, "
               f"{elapsed:.0f} s)", rows)
    finally:
        _stop_ros_run(cam, spinner, ex, client, proc, shutdown=rclpy.shutdown)
    if before and out:
        # the machine's load drifts: the in-process reference is measured before and after the
        # ROS run, and the ratios use their mean
        after = bench_in_process(args, img, queries[: args.queries])
        ref = {k: (before[k] + after[k]) / 2 for k in before}
        out.update(ref)
        out.update({"in_process_before": before, "in_process_after": after,
                    "query_ratio_ros_to_in_process": out["query_p50_ms_ros"] / ref["query_p50_ms_in_process"],
                    "tracking_ratio_ros_to_min_in_process_camera":
                        out["tracking_hz_ros"] / min(ref["tracking_hz_in_process"], out["camera_hz"])})
        _table("the same model in this process, before / after the ROS run", [
            ("query -> pose (p50 ms)", f"{before['query_p50_ms_in_process']:.0f} / {after['query_p50_ms_in_process']:.0f}"),
            ("query -> whole answer (p50 ms)",
             f"{before['answer_p50_ms_in_process']:.0f} / {after['answer_p50_ms_in_process']:.0f}"),
            ("tracking (frames/s)", f"{before['tracking_hz_in_process']:.1f} / {after['tracking_hz_in_process']:.1f}"),
            ("ROS p50 / in-process p50, mean of both (target <= 1.3)", f"{out['query_ratio_ros_to_in_process']:.2f}"),
            ("tracking ROS / min(in process, camera) (target >= 0.9)",
             f"{out['tracking_ratio_ros_to_min_in_process_camera']:.2f}"),
            ("callback gap p95 while answering (target <= 40 ms)", f"{out['callback_gap_p95_ms']:.0f} ms"),
            ("1-min load average before / during (2 cores)", f"{load_before:.1f} / {out['load_average_1min'][1]:.1f}")])
    return out


def run_busy(args) -> int:
    """Hidden mode: one busy process for `args.seconds` (bounded): single-threaded numpy matrix
    products, as another job on the robot's computer would be (executors --busy)."""
    end, a = time.monotonic() + args.seconds, np.random.default_rng(0).random((256, 256))
    while time.monotonic() < end:
        a = a @ a
        a /= np.abs(a).max()
    return 0


class _Recorder:
    """The executors bench's client: arrival times (monotonic s) of the node's outputs."""

    def __init__(self, client) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from tf2_msgs.msg import TFMessage

        from chatpose_ros.msg import PipelineStatus, SmplPose, SmplPoseArray

        self.poses: list[tuple[float, str]] = []  # (t, query)
        self.pose: list[tuple[float, int]] = []  # (t, stamp ns)
        self.tf: list[tuple[float, int]] = []
        self.status: list[tuple[float, str, str]] = []  # (t, code, query)
        self.diags: list[tuple[float, int, dict]] = []  # (t, level, values; "message" too)
        stamp = lambda h: h.stamp.sec * 10**9 + h.stamp.nanosec  # noqa: E731
        sub = client.create_subscription
        sub(SmplPoseArray, "/chatpose_node/poses", lambda m: self.poses.append((time.monotonic(), m.query)), 100)
        sub(SmplPose, "/chatpose_node/pose", lambda m: self.pose.append((time.monotonic(), stamp(m.header))), 100)
        sub(TFMessage, "/tf", lambda m: self.tf.append((time.monotonic(), stamp(m.transforms[0].header)))
            if m.transforms else None, 100)
        sub(PipelineStatus, "/chatpose_node/status", lambda m: self.status.append((time.monotonic(), m.code, m.query)), 100)
        sub(DiagnosticArray, "/diagnostics", self._on_diag, 50)

    def _on_diag(self, msg) -> None:
        for st in msg.status:
            if st.name.startswith("chatpose_node"):
                level = st.level[0] if isinstance(st.level, bytes) else int(st.level)  # a byte field
                self.diags.append((time.monotonic(), level, {**{kv.key: kv.value for kv in st.values}, "message": st.message}))

    def poses_of(self, query: str, after: float) -> float | None:
        """When the first ~/poses about `query` arrived (its answer; a streaming profile's pose)."""
        return next((t for t, q in list(self.poses) if q == query and t >= after), None)

    def status_of(self, query: str, after: float) -> float | None:
        """When the answer's status (ok / no_match / clarify) for `query` arrived."""
        return next((t for t, c, q in list(self.status) if q == query and t >= after and c in ("ok", "no_match", "clarify")),
                    None)

    def first_status(self, code: str, after: float) -> float | None:
        return next((t for t, c, _q in list(self.status) if c == code and t >= after), None)

    def tf_delays_ms(self, t0: float, t1: float) -> list[float]:
        """For each ~/pose received in [t0, t1], how long after it the /tf of the same stamp came
        (negative: before it), as this client's callbacks saw them. A frame can have several
        outputs (an answer and a tracking update on the same frame): each ~/pose is paired with
        the /tf of its stamp nearest to it in time."""
        tf_at: dict[int, list[float]] = collections.defaultdict(list)
        for t, st in list(self.tf):
            tf_at[st].append(t)
        return [min((u - t for u in tf_at[st]), key=abs) * 1000 for t, st in list(self.pose)
                if t0 <= t <= t1 and st in tf_at]


def _executor_run(args, layout: str, img_path: str, busy_pids: tuple[int, ...] = ()) -> dict:
    """One node process spun by `layout`: see bench_executors (`busy_pids`: the busy processes, whose CPU is counted)."""
    from rclpy.action import ActionClient
    from rclpy.node import Node
    from std_msgs.msg import String

    from chatpose_ros.action import EstimatePose
    from chatpose_ros.ros.main import make_executor

    state = Path.cwd() / "build" / "bench_state"
    executor, _, params = layout.partition(":")  # e.g. "multi:model.worker_nice:=0"
    proc = _node_process(args, state, executor, tuple(p for p in params.split(";") if p))
    client = Node("bench_executors_client")
    rec = _Recorder(client)
    qpub = client.create_publisher(String, "/chatpose_node/query", 10)
    action = ActionClient(client, EstimatePose, "/chatpose_node/estimate")
    # the events executor (one thread, its loop in C++): callbacks in the order the messages arrive, and
    # about 1/4 of the CPU of a MultiThreadedExecutor's (8 ms per tracked frame): the client is no second busy process
    ex = make_executor("events")
    ex.add_node(client)
    spinner = Spinner(ex)
    cam = subprocess.Popen([sys.executable, "-m", "chatpose_ros.tools.bench", "camera", "--hz", str(args.hz),
                            "--seconds", str(CAMERA_MAX_S), "--image", img_path, "--camera-info"],
                           env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    status_lag: list[float] = []  # ~/status after the answer's ~/poses (ms): outputs of one answer waiting

    def ask_topic(q: str) -> float:
        """The question on ~/query: ms to its ~/poses (what a topic user waits for); waits for its status too."""
        t0 = time.monotonic()
        qpub.publish(String(data=q))
        while (t := rec.status_of(q, t0)) is None and time.monotonic() - t0 < 60:
            time.sleep(0.002)
        t_poses = rec.poses_of(q, t0)
        if t is not None and t_poses is not None:
            status_lag.append((t - t_poses) * 1000)
        return float("nan") if t_poses is None else (t_poses - t0) * 1000

    parts: dict[str, list[float]] = collections.defaultdict(list)  # where an action goal's time goes (ms)

    def ask_action(q: str) -> tuple[float, list[str]]:
        stages: list[str] = []
        t0 = time.monotonic()
        fut = action.send_goal_async(EstimatePose.Goal(query=q), feedback_callback=lambda f: stages.append(f.feedback.stage))
        while not fut.done() and time.monotonic() - t0 < 60:
            time.sleep(0.002)
        parts["accepted"].append((time.monotonic() - t0) * 1000)
        res = fut.result().get_result_async() if fut.done() and fut.result().accepted else None
        while res is not None and not res.done() and time.monotonic() - t0 < 60:
            time.sleep(0.002)
        ok = res is not None and res.done() and res.result().result.success
        t_end = time.monotonic()
        t_status = rec.status_of(q, t0)  # the session's answer, on ~/status: the rest is the action's own way back
        if t_status is not None:
            parts["answered_on_status"].append((t_status - t0) * 1000)
        return ((t_end - t0) * 1000 if ok else float("nan")), stages

    out: dict = {"layout": layout}
    try:
        t0 = time.monotonic()
        while not (rec.diags and rec.diags[-1][2].get("model_state") == "loaded"
                   and int(rec.diags[-1][2].get("frames_received", 0)) > 0
                   and rec.diags[-1][2].get("mesh_body", "") not in MESH_STARTING and action.server_is_ready()):
            if time.monotonic() - t0 > 300 or proc.poll() is not None:
                raise RuntimeError(f"the node ({layout}) did not come up within 300 s")
            time.sleep(0.2)
        ask_topic(f"the person on the left {layout} warm-up")
        topic, act, stages = [], [], collections.Counter()
        t_q = time.monotonic()
        for i in range(args.queries):  # the same question on the topic, then as an action goal
            topic.append(ask_topic(f"the person on the left {layout} #{i}"))
            ms, st = ask_action(f"the person on the left {layout} #{i}")
            act.append(ms)
            stages[" > ".join(dict.fromkeys(s.split(":")[0] for s in st))] += 1
        # tracking alone: pose messages per second against the camera's frames, and the CPU each process spent
        kids = _children(proc.pid)  # the model worker, multiprocessing's resource tracker (and the Anny mesh's)
        meter = CpuMeter({"camera": cam.pid, "node": proc.pid, "client": os.getpid(),
                          **{f"node_child_{k}": k for k in kids}, **{f"busy_{i}": b for i, b in enumerate(busy_pids)}},
                         threads_of=proc.pid)
        meter.start()
        t_track = time.monotonic()
        time.sleep(args.track_seconds)
        t_end = time.monotonic()
        cpu, node_threads = meter.stop()
        track = [t for t, _q in rec.pose if t_track <= t <= t_end]
        children = sorted((v for k, v in cpu.items() if k.startswith("node_child_")), reverse=True)
        # per tracked frame: ms of CPU; the node's busiest child is the model worker
        per_frame = {name: 1000.0 * v / max(len(track), 1) for name, v in
                     {"camera": cpu["camera"], "node": cpu["node"], "worker": children[0] if children else 0.0,
                      "client": cpu["client"], "busy": sum(v for k, v in cpu.items() if k.startswith("busy_"))}.items()}
        tf_ms = rec.tf_delays_ms(t_q, t_end)
        # the camera pauses: the stop reported, /diagnostics keeps its period, answers and TF keep coming
        cam.send_signal(signal.SIGUSR1)
        t_pause = time.monotonic()
        time.sleep(args.pause_seconds / 2)
        pause_topic = ask_topic(f"the person on the left {layout} paused")
        pause_action, _ = ask_action(f"the person on the left {layout} paused")
        time.sleep(max(0.0, t_pause + args.pause_seconds - time.monotonic()))
        t_resume = time.monotonic()
        cam.send_signal(signal.SIGUSR1)
        time.sleep(1.0)
        stall_status = rec.first_status("camera_stalled", t_pause)
        stall_diag = next((t for t, lvl, v in list(rec.diags) if t >= t_pause and lvl == 1
                           and v["message"].startswith("camera stopped")), None)
        diag_t = [t for t, _l, _v in list(rec.diags) if t_pause <= t <= t_resume]
        diag_gap = max(np.diff([t_pause] + diag_t + [t_resume])) * 1000
        pause_tf = rec.tf_delays_ms(t_pause, t_resume)
        cam_times = _stop_camera(cam)
        cam = None
        cam_hz = len([t for t in cam_times if t_track <= t <= t_end]) / (t_end - t_track)
        out.update({
            "topic_ms_p50": _pct(topic, 50), "topic_ms_p95": _pct(topic, 95),
            "action_ms_p50": _pct(act, 50), "action_ms_p95": _pct(act, 95),
            "action_to_topic_p50": _pct(act, 50) / _pct(topic, 50), "action_answered": int(np.isfinite(act).sum()),
            # each question's goal against the same question on the topic just before it (the load
            # of the moment shared): the median of these ratios
            "action_to_topic_paired_p50": _pct([a / t for a, t in zip(act, topic)], 50),
            "feedback_stages": dict(stages), "status_after_poses_ms_p95": _pct(status_lag, 95),
            **{f"action_{k}_ms_p50": _pct(v, 50) for k, v in parts.items()},
            "tracking_hz": len(track) / (t_end - t_track), "camera_hz": cam_hz,
            "tracking_to_camera": len(track) / (t_end - t_track) / max(cam_hz, 1e-6),
            "cpu_ms_per_tracked_frame": per_frame,
            "cpu_share_of_a_core": {k: v * len(track) / 1000.0 / (t_end - t_track) for k, v in per_frame.items()},
            "node_threads_cpu_ms_per_tracked_frame": [1000.0 * v / max(len(track), 1) for v in node_threads[:6]],
            "tf_after_pose_ms_p50": _pct(tf_ms, 50), "tf_after_pose_ms_p95": _pct(tf_ms, 95),
            "tf_after_pose_ms_max": float(np.max(tf_ms)) if tf_ms else float("nan"), "tf_matched": len(tf_ms),
            "tf_after_pose_ms_min": float(np.min(tf_ms)) if tf_ms else float("nan"),
            "tf_before_pose_share": float(np.mean([d <= 0 for d in tf_ms])) if tf_ms else float("nan"),
            "pause_stall_on_status_s": float("nan") if stall_status is None else stall_status - t_pause,
            "pause_stall_on_diagnostics_s": float("nan") if stall_diag is None else stall_diag - t_pause,
            "pause_diagnostics_max_gap_ms": float(diag_gap),
            "pause_topic_ms": pause_topic, "pause_action_ms": pause_action,
            "pause_tf_after_pose_ms_max": float(np.max(pause_tf)) if pause_tf else float("nan"),
            "load_average_1min": os.getloadavg()[0]})
    finally:
        _stop_ros_run(cam, spinner, ex, client, proc, first=action.destroy)
    return out


def bench_executors(args) -> dict:
    """The node's executor layouts (`--layouts`, chatpose-node --executor) side by side in one
    run, in alternating rounds, each a node process of its own with the shipped model, a camera
    process (frames + camera_info) and `--busy` other busy processes: the same question on
    ~/query and as an ~/estimate goal (latency p50 / p95 to its answer's status / result; the
    feedback stages seen), tracking pose messages per second against the camera's frames, /tf
    after its ~/pose, then the camera paused `--pause-seconds`: when the stop shows on ~/status and
    /diagnostics, the longest gap between /diagnostics messages, a question on the topic and as a
    goal meanwhile, /tf after ~/pose."""
    from chatpose_ros.ros.netsafe import configure_loopback_only

    configure_loopback_only(Path.cwd() / "build" / "bench_state", force=True)
    import rclpy

    busy = [subprocess.Popen([sys.executable, "-m", "chatpose_ros.tools.bench", "busy", "--seconds", str(CAMERA_MAX_S)],
                             env={**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"})
            for _ in range(args.busy)]
    runs = []
    rclpy.init(args=[])  # not sys.argv: the benchmark's own options are no ROS arguments
    try:
        for r in range(args.rounds):
            layouts = args.layouts.split(",")
            for layout in layouts if r % 2 == 0 else layouts[::-1]:
                runs.append({"round": r, **_executor_run(args, layout, args.image, tuple(b.pid for b in busy))})
                print(json.dumps(runs[-1]), flush=True)
    finally:
        rclpy.shutdown()
        for b in busy:
            b.terminate()
            b.wait(timeout=10)
    rows = []
    for run in runs:
        rows.append((f"{run['layout']} (round {run['round']})",
                     f"action / topic p50 {run['action_ms_p50']:.0f} / {run['topic_ms_p50']:.0f} ms "
                     f"({run['action_to_topic_p50']:.2f}x; paired {run['action_to_topic_paired_p50']:.2f}x), "
                     f"p95 {run['action_ms_p95']:.0f} / {run['topic_ms_p95']:.0f}; "
                     f"tracking {run['tracking_hz']:.1f} Hz ({run['tracking_to_camera']:.2f}x camera); "
                     f"tf after pose p50 {run['tf_after_pose_ms_p50']:.1f} p95 {run['tf_after_pose_ms_p95']:.1f} "
                     f"min {run['tf_after_pose_ms_min']:.1f} max {run['tf_after_pose_ms_max']:.1f} ms "
                     f"(before it: {100 * run['tf_before_pose_share']:.0f} %); "
                     "CPU ms per tracked frame " + ", ".join(f"{k} {v:.1f}" for k, v in run["cpu_ms_per_tracked_frame"].items())
                     + "; node threads " + " / ".join(f"{v:.1f}" for v in run["node_threads_cpu_ms_per_tracked_frame"]) + "; "
                     f"paused: stall on status {run['pause_stall_on_status_s']:.2f} s, diagnostics "
                     f"{run['pause_stall_on_diagnostics_s']:.2f} s, "
                     f"diagnostics gap {run['pause_diagnostics_max_gap_ms']:.0f} ms, "
                     f"topic / action {run['pause_topic_ms']:.0f} / {run['pause_action_ms']:.0f} ms; "
                     f"stages {run['feedback_stages']}; load {run['load_average_1min']:.1f}"))
    _table(f"executor layouts side by side ({args.queries} questions each, camera {args.hz} Hz with camera_info in its "
           f"own process, {args.busy} busy process(es))", rows)
    return {"runs": runs}


def bench_frames(args) -> dict:
    """What one 640x480 bgr8 camera frame costs the node, per way of receiving it: rclpy's
    deserialisation (a plain subscription) against keeping the serialised bytes (raw=True) and
    reading only the header (ros/cdr) plus the layout check; then, for the frame the model takes,
    the decode and the copy into shared memory."""
    from multiprocessing import shared_memory

    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from chatpose_ros.core.image_codec import check_raw_layout
    from chatpose_ros.ros import cdr
    from chatpose_ros.ros.convert import image_to_rgb, rgb_to_image

    raw = serialize_message(rgb_to_image(_image(args.image), Header(frame_id="cam"), "bgr8"))
    shm = shared_memory.SharedMemory(create=True, size=len(raw))
    n = args.repeats * 40

    def per_call(fn):
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1000)
        return _pct(ts, 50)

    def header_only():
        _, im = cdr.parse_image(raw)
        check_raw_layout(im.width, im.height, im.encoding, im.step, im.nbytes, 16_000_000)

    try:
        _, image = cdr.parse_image(raw)
        msg = deserialize_message(raw, Image)
        out = {"deserialise_ms": per_call(lambda: deserialize_message(raw, Image)),
               "deserialise_and_decode_ms": per_call(lambda: image_to_rgb(deserialize_message(raw, Image), 16_000_000)),
               "raw_header_and_check_ms": per_call(header_only),
               "decode_taken_frame_ms": per_call(lambda: image.decode(16_000_000)),
               "copy_into_shm_ms": per_call(lambda: shm.buf.__setitem__(slice(0, image.nbytes), image.data)),
               "bytes_per_frame": len(raw)}
        del msg
    finally:
        shm.close()
        shm.unlink()
    _table(f"cost of one 640x480 bgr8 frame at the node (p50 of {n}, ms)", [
        ("plain subscription: rclpy deserialisation", f"{out['deserialise_ms']:.3f}"),
        ("  + decode to RGB (what the old node did per frame)", f"{out['deserialise_and_decode_ms']:.3f}"),
        ("raw subscription: header + layout check (now, per frame)", f"{out['raw_header_and_check_ms']:.4f}"),
        ("decode of the frame the model takes (in its worker)", f"{out['decode_taken_frame_ms']:.3f}"),
        ("copy of the frame the model takes into shared memory", f"{out['copy_into_shm_ms']:.3f}")])
    return out


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` (MB), from /proc; nan when unreadable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="chatpose-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("overhead", "frames", "callback", "e2e", "memory", "qos", "depth", "executors", "all",
                                    "camera", "busy"), nargs="?", default="all")
    from chatpose_ros.core.config import PipelineConfig

    profiles = PipelineConfig.__dataclass_fields__["profile"].metadata["choices"]
    p.add_argument("--profile", default="default", choices=profiles)
    p.add_argument("--checkpoint", default="")
    p.add_argument("--image", default=DEMO_IMAGE)
    p.add_argument("--hz", type=float, default=30.0, help="camera rate")
    p.add_argument("--queries", type=int, default=20)
    p.add_argument("--query-period", type=float, default=1.0, help="seconds between queries")
    p.add_argument("--seconds", type=float, default=120.0, help="memory run length")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--track-seconds", type=float, default=10.0, help="tracking-only phase after the queries (e2e)")
    p.add_argument("--cpu-threads", type=int, default=0, help="model.cpu_threads (0 = torch default)")
    p.add_argument("--json", default="", help="write the figures here")
    p.add_argument("--node-param", action="append", default=[], metavar="NAME:=VALUE",
                   help="extra ROS parameter for the node (e2e, memory), e.g. hri_enabled:=false; repeatable")
    from chatpose_ros.ros.main import DEFAULT_EXECUTOR, EXECUTORS

    p.add_argument("--node-executor", choices=EXECUTORS, default=DEFAULT_EXECUTOR,
                   help="the node process's executor (chatpose-node --executor; e2e, memory)")
    p.add_argument("--pairs", type=int, default=2, help="depth: off/on pairs, alternating")
    p.add_argument("--camera-info", action="store_true", help="the camera also sends camera_info (e2e, memory)")
    p.add_argument("--depth", action="store_true", help="the camera also sends an aligned depth image and its "
                   "camera_info, and the node has depth_enabled (e2e, memory)")
    p.add_argument("--layouts", default=",".join(EXECUTORS),
                   help="executors: the layouts compared, comma-separated: EXECUTOR[:PARAM:=VALUE;...], "
                        "e.g. multi,multi:model.worker_nice:=0")
    p.add_argument("--rounds", type=int, default=2, help="executors: alternating rounds of every layout")
    p.add_argument("--busy", type=int, default=0, help="executors: other busy processes on the machine meanwhile")
    p.add_argument("--pause-seconds", type=float, default=4.0, help="executors: how long the camera pauses")
    args = p.parse_args(argv)
    if args.what == "camera":
        return run_camera(args)
    if args.what == "busy":
        return run_busy(args)
    if args.what == "depth":
        figures = {"depth": bench_depth(args)}
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1))
        return 0
    if args.depth:
        args.node_param = [*args.node_param, "depth_enabled:=true"]
    figures = {}
    if args.what in ("overhead", "all"):
        figures["overhead"] = bench_overhead(args)
    if args.what in ("frames", "all"):
        figures["frames"] = bench_frames(args)
    if args.what in ("callback", "all"):
        figures["callback"] = bench_callback(args)
    if args.what in ("qos", "all"):  # camera frames delivered across processes, best effort and reliable
        from chatpose_ros.tools.qos_probe import measure

        figures["qos"] = {r["qos"]: r for r in measure(hz=args.hz)}
    if args.what == "executors":  # not in "all": several node processes, minutes
        figures["executors"] = bench_executors(args)
    if args.what in ("e2e", "all"):
        figures["e2e"] = bench_e2e(args)
    if args.what in ("memory", "all"):
        figures["memory"] = bench_e2e(args, seconds=args.seconds)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
