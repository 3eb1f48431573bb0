"""The chatpose_ros lifecycle node: image + query in, SMPL poses, markers, answers out.

Thin by design: callbacks convert messages, hand work to the pipeline (chatpose_ros.core.pipeline)
on a worker thread, convert the result back and publish. The image callback only decodes and
stores the latest frame; it never waits for inference.

Lifecycle: configure = read parameters and load the model (a load failure fails the transition
with a clear message); activate = subscriptions, action server, worker; deactivate = stop them;
cleanup = release the model.
"""
from __future__ import annotations

import collections
import dataclasses
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from chatpose_ros.action import EstimatePose
from chatpose_ros.core.config import NodeConfig, PipelineConfig
from chatpose_ros.core.errors import ChatPoseError, InvalidQueryError
from chatpose_ros.core.pipeline import PosePipeline, validate_query
from chatpose_ros.core.types import PoseResult
from chatpose_ros.msg import PipelineStatus, SmplPose, SmplPoseArray
from chatpose_ros.profiles import build_pipeline, tracker_factory

from . import convert, markers
from .params import declare_from_dataclass, read_dataclass

MODEL_PREFIX = "model."
PipelineFactory = Callable[[PipelineConfig], PosePipeline]


@dataclass
class _Frame:
    rgb: np.ndarray
    header: Header
    received: float  # time.monotonic() at arrival
    seq: int


@dataclass
class _Job:
    query: str
    image: _Frame | None = None  # explicit image (action goal); None = latest camera frame
    done: threading.Event = field(default_factory=threading.Event)
    result: PoseResult | None = None
    header: Header | None = None
    error: str = ""
    code: str = ""
    stage: str = "queued"
    cancelled: bool = False


class ChatPoseNode(LifecycleNode):
    """See the module docstring and README (topics, parameters, action)."""

    def __init__(self, node_name: str = "chatpose_node", pipeline_factory: PipelineFactory = build_pipeline, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._factory = pipeline_factory
        declare_from_dataclass(self, NodeConfig)
        declare_from_dataclass(self, PipelineConfig, MODEL_PREFIX)
        self.cfg = NodeConfig()
        self.model_cfg = PipelineConfig()
        self.pipeline: PosePipeline | None = None
        self.model_state = "unconfigured"
        self._lock = threading.Condition()
        self._latest: _Frame | None = None
        self._frame_seq = 0
        self._queue: collections.deque[_Job] = collections.deque()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._tracker = None  # chatpose_ros.models.default.tracking.PersonTracker while tracking
        self._track_query = ""
        self._last_track_seq = -1
        self._last_track_time = 0.0
        self._throttle: dict[str, float] = {}
        self.stats = collections.Counter()
        self._latencies: collections.deque[float] = collections.deque(maxlen=200)
        self.image_delays_ms: collections.deque[float] = collections.deque(maxlen=1000)
        self.image_arrivals: collections.deque[float] = collections.deque(maxlen=1000)
        self._pubs: dict[str, object] = {}
        self._subs: list = []
        self._timers: list = []
        self._action: ActionServer | None = None
        self._busy = False
        self.get_logger().info("chatpose_node created; waiting for configure (autostart does it at start-up)")

    # ------------------------------------------------------------------ lifecycle
    def autostart(self) -> bool:
        """Configure then activate (what a lifecycle manager would do). False when configure failed:
        the node stays unconfigured and can be configured again over its lifecycle services."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self.get_logger().error("configure failed (see above): the node stays unconfigured; fix the "
                                    "parameters and trigger configure again")
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.cfg = read_dataclass(self, NodeConfig)
            self.model_cfg = read_dataclass(self, PipelineConfig, MODEL_PREFIX)
        except ChatPoseError as exc:
            self.get_logger().error(f"configure failed: invalid parameters: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.model_state = "loading"
        t0 = time.monotonic()
        self.get_logger().info(f"loading model profile '{self.model_cfg.profile}'")
        try:
            self.pipeline = self._factory(self.model_cfg)
        except ChatPoseError as exc:
            self.model_state = f"load failed: {exc}"
            self.get_logger().error(f"configure failed: cannot load the model ({exc.code}): {exc}")
            return TransitionCallbackReturn.FAILURE
        except Exception as exc:  # a model library failing in an unexpected way must not kill the node
            self.model_state = f"load failed: {exc}"
            self.get_logger().error(f"configure failed: unexpected error while loading the model: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.model_state = "loaded"
        self.get_logger().info(f"model {self.pipeline.model_id} loaded in {time.monotonic() - t0:.1f} s")
        out_qos = QoSProfile(depth=self.cfg.output_qos_depth, history=HistoryPolicy.KEEP_LAST,
                             reliability=ReliabilityPolicy.RELIABLE if self.cfg.output_qos == "reliable" else ReliabilityPolicy.BEST_EFFORT)
        self._pubs = {
            "poses": self.create_publisher(SmplPoseArray, "~/poses", out_qos),
            "pose": self.create_publisher(SmplPose, "~/pose", out_qos),
            "markers": self.create_publisher(MarkerArray, "~/markers", out_qos),
            "answer": self.create_publisher(String, "~/answer", out_qos),
            "status": self.create_publisher(PipelineStatus, "~/status", out_qos),
            "diagnostics": self.create_publisher(DiagnosticArray, "/diagnostics", 10),
        }
        # The action server lives from configure to cleanup (destroying it while the executor
        # waits on it races); goals are refused while the node is not active.
        self._action = ActionServer(self, EstimatePose, "~/estimate", execute_callback=self._execute_goal,
                                    goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT,
                                    callback_group=ReentrantCallbackGroup())
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.cfg.image_qos == "sensor_data":
            img_qos = qos_profile_sensor_data
        else:
            img_qos = QoSProfile(depth=self.cfg.image_qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        img_group = MutuallyExclusiveCallbackGroup()
        self._subs = [
            self.create_subscription(Image, self.cfg.image_topic, self._on_image, img_qos, callback_group=img_group),
            # raw=True: the query is deserialised here, so non-UTF-8 payloads are reported, not fatal
            self.create_subscription(String, self.cfg.query_topic, self._on_query_raw, 10,
                                     callback_group=MutuallyExclusiveCallbackGroup(), raw=True),
        ]
        if self.cfg.compressed_image_topic:
            self._subs.append(self.create_subscription(CompressedImage, self.cfg.compressed_image_topic,
                                                       self._on_compressed, img_qos, callback_group=img_group))
        self._timers = [self.create_timer(self.cfg.diagnostics_period_s, self._publish_diagnostics,
                                          callback_group=MutuallyExclusiveCallbackGroup())]
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="chatpose_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"active: images on '{self.cfg.image_topic}' (QoS {self.cfg.image_qos}), queries on "
            f"'{self.resolve_topic_name(self.cfg.query_topic)}', action '{self.get_fully_qualified_name()}/estimate'")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        for sub in self._subs:
            self.destroy_subscription(sub)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subs, self._timers = [], []
        self.get_logger().info("deactivated: subscriptions and worker stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self.get_logger().info("cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self._action is not None:
            self._action.destroy()
            self._action = None
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        if self.pipeline is not None:
            try:
                self.pipeline.close()
            finally:
                self.pipeline = None
        self.model_state = "unconfigured"
        with self._lock:
            self._tracker, self._latest = None, None

    def _stop_worker(self) -> None:
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
            pending = list(self._queue)
            self._queue.clear()
        for job in pending:
            job.error, job.code = "node deactivated before the query was answered", "query_dropped"
            job.done.set()
        if self._worker is not None:
            self._worker.join(timeout=30.0)
            if self._worker.is_alive():
                self.get_logger().warn("worker still busy after 30 s; it will stop after the current inference")
            self._worker = None

    # ------------------------------------------------------------------ inputs
    def _store_frame(self, decode: Callable[[], np.ndarray], header: Header) -> None:
        self.stats["frames_received"] += 1
        self.image_arrivals.append(time.monotonic())
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        if stamp > 0:  # transport + queueing delay of the frame (camera stamp to callback), ms
            self.image_delays_ms.append((self.get_clock().now().nanoseconds * 1e-9 - stamp) * 1000.0)
        try:
            rgb = decode()
        except ChatPoseError as exc:
            self.stats["frames_invalid"] += 1
            # a camera sending the same bad frame at 30 Hz is reported once a second, not 30 times
            self._report(PipelineStatus.ERROR, exc.code, f"image refused: {exc}", throttle_key=f"image:{exc}")
            return
        if not header.frame_id:
            header.frame_id = self.cfg.frame_id
        with self._lock:
            self._frame_seq += 1
            self._latest = _Frame(rgb, header, time.monotonic(), self._frame_seq)
            if self._tracker is not None:
                self._lock.notify_all()

    def _on_image(self, msg: Image) -> None:
        self._store_frame(lambda: convert.image_to_rgb(msg, self.model_cfg.max_image_pixels), msg.header)

    def _on_compressed(self, msg: CompressedImage) -> None:
        self._store_frame(lambda: convert.compressed_to_rgb(msg, self.model_cfg.max_image_pixels), msg.header)

    def _on_query_raw(self, raw: bytes) -> None:
        self.stats["queries_received"] += 1
        try:
            text = convert.string_from_cdr(raw)
        except InvalidQueryError as exc:
            self.stats["queries_invalid"] += 1
            self._report(PipelineStatus.ERROR, exc.code, f"query refused: {exc}")
            return
        self.submit_query(text)

    def submit_query(self, text: str, image: _Frame | None = None) -> _Job | None:
        """Validate and queue a query; returns the job, or None when it was refused."""
        try:
            query = validate_query(text, self.model_cfg.max_query_chars)
        except InvalidQueryError as exc:
            self.stats["queries_invalid"] += 1
            self._report(PipelineStatus.ERROR, exc.code, f"query refused: {exc}", query=str(text)[:200])
            return None
        job = _Job(query=query, image=image)
        dropped = None
        with self._lock:
            if len(self._queue) >= self.cfg.query_queue_size:
                dropped = self._queue.popleft()
            self._queue.append(job)
            self._lock.notify_all()
        if dropped is not None:
            self.stats["queries_dropped"] += 1
            dropped.error, dropped.code = "dropped: the query queue was full and a newer query arrived", "query_dropped"
            dropped.done.set()
            self._report(PipelineStatus.WARN, "query_dropped",
                         f"query queue full ({self.cfg.query_queue_size}): dropped the oldest query '{dropped.query[:80]}'",
                         query=dropped.query)
        return job

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                job = self._queue.popleft() if self._queue else None
                frame = self._latest
                track_due = (job is None and self._tracker is not None and frame is not None
                             and frame.seq != self._last_track_seq
                             and time.monotonic() - self._last_track_time >= 1.0 / self.cfg.tracking_rate_hz)
                if job is None and not track_due:
                    self._lock.wait(timeout=0.1)
                    continue
            self._busy = True
            try:
                if job is not None:
                    self._answer(job, frame)
                else:
                    self._track(frame)
            except Exception as exc:  # the worker must outlive any bug in publishing or tracking
                self.get_logger().error(f"worker error (recovered): {type(exc).__name__}: {exc}")
                if job is not None and not job.done.is_set():
                    job.error, job.code = f"{type(exc).__name__}: {exc}", "inference_failed"
                    job.done.set()
            finally:
                self._busy = False

    def _answer(self, job: _Job, latest: _Frame | None) -> None:
        if job.cancelled:
            job.error, job.code = "cancelled", "cancelled"
            job.done.set()
            return
        frame = job.image or latest
        image, header = None, Header(frame_id=self.cfg.frame_id)
        header.stamp = self.get_clock().now().to_msg()
        if frame is None:
            self._report(PipelineStatus.WARN, "no_image",
                         f"no image received yet on '{self.cfg.image_topic}': answering from the text alone", query=job.query)
        elif job.image is None and self.cfg.max_image_age_s > 0 and time.monotonic() - frame.received > self.cfg.max_image_age_s:
            age = time.monotonic() - frame.received
            self._report(PipelineStatus.WARN, "stale_image",
                         f"latest image is {age:.1f} s old (max_image_age_s={self.cfg.max_image_age_s}): "
                         "answering from the text alone", query=job.query)
        else:
            image, header = frame.rgb, frame.header
        job.stage, job.header = "estimating", header
        t0 = time.monotonic()
        try:
            result = self.pipeline.estimate(image, job.query)
        except ChatPoseError as exc:
            job.error, job.code = str(exc), exc.code
            self._report(PipelineStatus.ERROR, exc.code, f"query not answered: {exc}", query=job.query)
            job.done.set()
            return
        except Exception as exc:  # an inference bug must not take the node down
            job.error, job.code = f"{type(exc).__name__}: {exc}", "inference_failed"
            self.get_logger().error(f"inference failed on query '{job.query[:80]}': {type(exc).__name__}: {exc}")
            self._report(PipelineStatus.ERROR, "inference_failed", f"query not answered: {type(exc).__name__}: {exc}", query=job.query)
            job.done.set()
            return
        latency = (time.monotonic() - t0) * 1000.0
        self._latencies.append(latency)
        self.stats["queries_answered"] += 1
        result = self._start_tracking(result, image is not None, frame)
        job.stage, job.result = "publishing", result
        self._publish_result(result, header, answer=True)
        self._report(PipelineStatus.OK, "ok", f"answered in {latency:.0f} ms: {result.answer[:120]}", query=job.query)
        self.get_logger().info(f"query '{job.query[:80]}' -> '{result.answer[:80]}' "
                               f"({len(result.people)} people, selected {result.selected}, {latency:.0f} ms)")
        job.done.set()

    def _start_tracking(self, result: PoseResult, used_image: bool, frame: _Frame | None) -> PoseResult:
        """Track the chosen person from now on (when enabled and the person has a box); returns
        the result with the chosen person's track id set."""
        chosen = result.selected_person
        with self._lock:
            self._tracker = None
            if not (self.cfg.track_after_query and used_image and chosen is not None and chosen.box is not None):
                return result
            tracker = tracker_factory(self.model_cfg.profile)()
            tracked = tracker.start(chosen)
            self._tracker, self._track_query = tracker, result.query
            self._last_track_seq = frame.seq if frame is not None else -1
        people = list(result.people)
        people[result.selected] = tracked
        return dataclasses.replace(result, people=tuple(people))

    def _track(self, frame: _Frame) -> None:
        self._last_track_seq, self._last_track_time = frame.seq, time.monotonic()
        tracker = self._tracker
        try:
            people = self.pipeline.observe(frame.rgb, near=tracker.last_box)
        except Exception as exc:
            self._report(PipelineStatus.ERROR, "inference_failed", f"tracking update failed: {type(exc).__name__}: {exc}",
                         throttle_key="track_error")
            return
        person = tracker.update(people)
        if person is None:
            if tracker.lost:
                with self._lock:
                    if self._tracker is tracker:
                        self._tracker = None
                self._report(PipelineStatus.WARN, "track_lost",
                             f"lost the person chosen by '{self._track_query[:80]}'; send a new query", query=self._track_query)
            return
        self.stats["tracking_updates"] += 1
        result = PoseResult(query=self._track_query, answer="", people=(person,), selected=0,
                            model_id=self.pipeline.model_id, image_size=(frame.rgb.shape[1], frame.rgb.shape[0]))
        self._publish_result(result, frame.header, answer=False)

    # ------------------------------------------------------------------ outputs
    def _publish_result(self, result: PoseResult, header: Header, answer: bool) -> None:
        pubs = self._pubs
        if not pubs:
            return
        arr = convert.result_to_msg(result, header)
        pubs["poses"].publish(arr)
        if 0 <= result.selected < len(arr.poses):
            pubs["pose"].publish(arr.poses[result.selected])
        pubs["markers"].publish(markers.result_markers(
            result, header, self.cfg.marker_lifetime_s, self.cfg.marker_joint_diameter_m, self.cfg.default_depth_m))
        if answer:
            pubs["answer"].publish(String(data=result.answer))

    def _report(self, level: int, code: str, message: str, query: str = "", throttle_key: str = "") -> None:
        """Log and publish a PipelineStatus; reports sharing a `throttle_key` are limited to one
        per second (the others are counted in the `suppressed_reports` statistic)."""
        if throttle_key:
            now = time.monotonic()
            if now - self._throttle.get(throttle_key, -1e9) < 1.0:
                self.stats["suppressed_reports"] += 1
                return
            self._throttle[throttle_key] = now
            if len(self._throttle) > 256:  # keep the table small whatever the input
                self._throttle = {k: t for k, t in self._throttle.items() if now - t < 1.0}
        # rclpy binds a severity to each logging call site: one call per severity
        if level == PipelineStatus.OK:
            self.get_logger().info(f"[{code}] {message}")
        elif level == PipelineStatus.WARN:
            self.get_logger().warn(f"[{code}] {message}")
        else:
            self.get_logger().error(f"[{code}] {message}")
        pub = self._pubs.get("status")
        if pub is not None:
            self.stats[f"status_{code}"] += 1
            pub.publish(convert.status_msg(level, code, message, query, self.get_clock().now().to_msg(), self.cfg.frame_id))

    def _publish_diagnostics(self) -> None:
        lat = list(self._latencies)
        p50 = statistics.median(lat) if lat else 0.0
        level = DiagnosticStatus.OK
        msg = "ok"
        if self.pipeline is None:
            level, msg = DiagnosticStatus.ERROR, f"model not loaded ({self.model_state})"
        elif lat and lat[-1] > self.cfg.latency_warn_ms:
            level, msg = DiagnosticStatus.WARN, f"last answer took {lat[-1]:.0f} ms (> latency_warn_ms)"
        values = {"model_id": self.pipeline.model_id if self.pipeline else "", "model_state": self.model_state,
                  "busy": str(self._busy), "queue_length": str(len(self._queue)),
                  "last_latency_ms": f"{lat[-1]:.1f}" if lat else "", "median_latency_ms": f"{p50:.1f}",
                  "tracking": str(self._tracker is not None),
                  "median_image_delay_ms": f"{statistics.median(self.image_delays_ms):.1f}" if self.image_delays_ms else ""}
        values.update({k: str(v) for k, v in sorted(self.stats.items())})
        status = DiagnosticStatus(level=level, name=f"{self.get_name()}: pipeline", hardware_id="chatpose_ros", message=msg,
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._pubs["diagnostics"].publish(arr)

    # ------------------------------------------------------------------ action
    def _on_goal(self, _goal) -> GoalResponse:
        if self._worker is None:
            self.get_logger().warn("action goal refused: the node is not active")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_goal(self, goal_handle) -> EstimatePose.Result:
        goal = goal_handle.request
        result = EstimatePose.Result()
        frame = None
        if goal.use_image:
            try:
                rgb = convert.image_to_rgb(goal.image, self.model_cfg.max_image_pixels)
            except ChatPoseError as exc:
                self._report(PipelineStatus.ERROR, exc.code, f"action goal refused: {exc}", query=goal.query)
                result.success, result.message = False, f"{exc.code}: {exc}"
                goal_handle.abort()
                return result
            header = goal.image.header
            header.frame_id = header.frame_id or self.cfg.frame_id
            frame = _Frame(rgb, header, time.monotonic(), -1)
        job = self.submit_query(goal.query, frame)
        if job is None:
            result.success, result.message = False, "invalid_query: see ~/status"
            goal_handle.abort()
            return result
        last_stage = ""
        while not job.done.wait(timeout=0.05):
            if goal_handle.is_cancel_requested:
                job.cancelled = True
            if job.stage != last_stage:
                last_stage = job.stage
                goal_handle.publish_feedback(EstimatePose.Feedback(stage=job.stage))
        if job.result is None:
            result.success, result.message = False, f"{job.code}: {job.error}"
            if job.cancelled and goal_handle.is_cancel_requested:
                goal_handle.canceled()
            else:
                goal_handle.abort()
            return result
        result.success, result.message, result.answer = True, "ok", job.result.answer
        result.poses = convert.result_to_msg(job.result, job.header or Header())
        goal_handle.succeed()
        return result
