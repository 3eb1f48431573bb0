"""The chatpose_ros lifecycle node: image + query in, SMPL poses, markers, answers out.

A thin adapter: callbacks convert messages and submit them to a ROS-free Session
(chatpose_ros.core.session: latest frame, query queue, image policy, tracking cadence,
throttled reports); one worker thread takes work from the session, runs the model through a
runner (chatpose_ros.core.model_worker) and publishes what the session returns.

Frames cost nothing until used: the image subscriptions are raw (serialised bytes); only the
header is read at arrival (chatpose_ros.ros.cdr) and the layout checked, and only the frame the
worker takes is decoded. The model runs in a worker process of its own (frames through shared
memory; `model_in_process` keeps it here for tests); if that process dies it is reported on
~/status and /diagnostics and restarted, and the node keeps serving.

Lifecycle: configure = read parameters, create the (lifecycle) publishers and the action server,
start the model (a load failure fails the transition with a clear message); activate =
subscriptions, worker thread, diagnostics; deactivate = stop them; cleanup = stop the model.
An inactive node publishes nothing.

Hook for other outputs (TF, ROS4HRI): `node.output_hooks` is a list of callables
`hook(output: core.session.Output, header: std_msgs.msg.Header)`, called from the worker thread
after every published result; `output.tracked` are the people with their track ids.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from chatpose_ros.core.body_mesh import BodyMesh
from chatpose_ros.core.config import NodeConfig, PipelineConfig
from chatpose_ros.core.errors import ChatPoseError, InvalidQueryError, WorkerCrashedError
from chatpose_ros.core.image_codec import check_raw_layout
from chatpose_ros.core.model_worker import InProcessRunner, ModelRunner, PipelineFactory, ProcessRunner, RawImage
from chatpose_ros.core.session import Answer, Frame, LogThrottle, Output, Report, Session
from chatpose_ros.msg import PipelineStatus, SmplPose, SmplPoseArray
from chatpose_ros.profiles import build_pipeline, tracker_factory

from . import cdr, convert
from .diagnostics import pipeline_diagnostics
from .estimate_action import EstimateAction
from .outputs import PublishThread, log_report, publish_result
from .mesh_markers import MeshMarkers
from .params import declare_from_dataclass, read_dataclass
from .robot_io import RobotIO

MODEL_PREFIX = "model."
WORKER_WAIT_S = 0.1  # the worker thread's longest wait for work (then it checks stop and the model's health)
PUBLISH_BACKLOG = 2  # results waiting for the publisher thread before the worker waits for it
STOP_JOIN_S = 30.0  # how long deactivate waits for the inference in progress


class ChatPoseNode(LifecycleNode):
    """See the module docstring and README (topics, parameters, action)."""

    def __init__(self, node_name: str = "chatpose_node", pipeline_factory: PipelineFactory = build_pipeline, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._factory = pipeline_factory
        declare_from_dataclass(self, NodeConfig)
        declare_from_dataclass(self, PipelineConfig, MODEL_PREFIX)
        self.cfg, self.model_cfg = NodeConfig(), PipelineConfig()
        self.session = Session(self.cfg, self.model_cfg.max_query_chars)
        self._log_throttle = LogThrottle(self.cfg.status_log_period_s)
        self.runner: ModelRunner | None = None
        self.model_state = "unconfigured"
        self.output_hooks: list[Callable[[Output, Header], None]] = []
        self.robot: RobotIO | None = None  # camera_info, TF, ROS4HRI bodies, speech in (ros/robot_io.py)
        self.mesh: BodyMesh | None = None  # the chosen person's body mesh (SMPL file or Anny; core/body_mesh.py)
        self._meshes: MeshMarkers | None = None  # the Anny mesh, dressed and published off the pose path
        self._track_ms: float | None = None  # how long the last tracking update took (worker thread)
        self._pubs: dict[str, object] = {}
        self._subs: list = []
        self._timers: list = []
        self._action: EstimateAction | None = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        # the worker's results are published by a thread of their own, so that the model works
        # on the next frame meanwhile (publishing, markers and hooks cost milliseconds of Python)
        self._publisher = PublishThread(self._emit, self._log_publish_error, PUBLISH_BACKLOG)
        self.get_logger().info("chatpose_node created; waiting for configure (autostart does it at start-up)")

    @property
    def stats(self):
        return self.session.stats

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
            make_tracker = tracker_factory(self.model_cfg.profile)
            # the Anny mesh is computed in a thread of its own, beside the worker's next tracking update
            mesh = BodyMesh(self.cfg.mesh_body, self.model_cfg.smpl_model_path, self.cfg.tracking_rate_hz, overlapped=True)
        except ChatPoseError as exc:
            self.get_logger().error(f"configure failed: invalid parameters: {exc}")
            return TransitionCallbackReturn.FAILURE
        stats = self.session.stats  # counters run on across reconfigurations
        self.session = Session(self.cfg, self.model_cfg.max_query_chars, tracker_factory=make_tracker)
        self.session.stats = stats
        self._log_throttle = LogThrottle(self.cfg.status_log_period_s)
        where = "in this process" if self.cfg.model_in_process else "in a worker process"
        self.model_state, t0 = "loading", time.monotonic()
        self.get_logger().info(f"loading model profile '{self.model_cfg.profile}' {where}")
        runner = (InProcessRunner if self.cfg.model_in_process else ProcessRunner)(self._factory, self.model_cfg)
        try:
            runner.start()
        except Exception as exc:  # a model library failing in any way must not kill the node
            code = exc.code if isinstance(exc, ChatPoseError) else type(exc).__name__
            self.model_state = f"load failed: {exc}"
            self.get_logger().error(f"configure failed: cannot load the model ({code}): {exc}")
            runner.close()
            return TransitionCallbackReturn.FAILURE
        self.runner, self.model_state = runner, "loaded"
        self.mesh = mesh
        self.mesh.start()  # Anny loads in a process of its own: never waited for
        self.get_logger().info(f"model {runner.model_id} loaded {where} in {time.monotonic() - t0:.1f} s")
        reliability = ReliabilityPolicy.RELIABLE if self.cfg.output_qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
        out_qos = QoSProfile(depth=self.cfg.output_qos_depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability)
        topics = {"poses": (SmplPoseArray, "~/poses"), "pose": (SmplPose, "~/pose"), "markers": (MarkerArray, "~/markers"),
                  "answer": (String, "~/answer"), "status": (PipelineStatus, "~/status")}
        self._pubs = {k: self.create_lifecycle_publisher(t, n, out_qos) for k, (t, n) in topics.items()}
        self._pubs["diagnostics"] = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)
        self.robot = RobotIO(self, self.cfg, self.model_cfg.max_image_pixels, self._robot_report, self._submit_speech)
        self.robot.configure(out_qos)
        # The action server lives from configure to cleanup (destroying it while the executor
        # waits on it races); goals are refused while the node is not active.
        self._action = EstimateAction(self, self.cfg, self.model_cfg.max_image_pixels, self.session, self._emit,
                                      lambda: self._worker is not None)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        img_qos = qos_profile_sensor_data if self.cfg.image_qos == "sensor_data" else \
            QoSProfile(depth=self.cfg.image_qos_depth, reliability=ReliabilityPolicy.RELIABLE)
        img_group = MutuallyExclusiveCallbackGroup()
        # raw=True: frames stay serialised until the worker takes one; queries are decoded here
        # so that non-UTF-8 payloads are reported, not fatal
        self._subs = [self.create_subscription(Image, self.cfg.image_topic, self._on_image, img_qos,
                                               callback_group=img_group, raw=True),
                      self.create_subscription(String, self.cfg.query_topic, self._on_query_raw, 10,
                                               callback_group=MutuallyExclusiveCallbackGroup(), raw=True)]
        if self.cfg.compressed_image_topic:
            self._subs.append(self.create_subscription(CompressedImage, self.cfg.compressed_image_topic, self._on_compressed,
                                                       img_qos, callback_group=img_group, raw=True))
        self._timers = [self.create_timer(self.cfg.diagnostics_period_s, self._publish_diagnostics,
                                          callback_group=MutuallyExclusiveCallbackGroup())]
        self.robot.activate(MutuallyExclusiveCallbackGroup())
        self.session.start()
        self._stop.clear()
        self._worker = threading.Thread(target=self._work, name="chatpose_worker", daemon=True)
        if self.mesh is not None and self.mesh.mode == "anny":
            self._meshes = MeshMarkers(self.mesh, self.cfg, self._publish_mesh, self._emit_later, self._log_publish_error)
            self._meshes.start()
        self._publisher.start()
        self._worker.start()
        self.get_logger().info(f"active: images on '{self.cfg.image_topic}' (QoS {self.cfg.image_qos}), queries on "
                               f"'{self.resolve_topic_name(self.cfg.query_topic)}', "
                               f"action '{self.get_fully_qualified_name()}/estimate'")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        for sub in self._subs:
            self.destroy_subscription(sub)
        for timer in self._timers:
            self.destroy_timer(timer)
        self._subs, self._timers = [], []
        if self.robot is not None:
            self.robot.deactivate()
        self._stop_worker()
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
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        if self.robot is not None:
            self.robot.release()
            self.robot = None
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.close()
        mesh, self.mesh = self.mesh, None
        if mesh is not None:
            mesh.close()
        self.model_state = "unconfigured"
        self.session.reset()

    def close_model(self) -> None:
        """Stop the worker thread and the model's process, publishing nothing (at exit, when
        the ROS context may already be shut down and no transition can run)."""
        self._publisher.discard = True  # results still queued for publishing are dropped
        self._stop_worker()
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.close()
        mesh, self.mesh = self.mesh, None
        if mesh is not None:  # the Anny mesh process, asked to stop (a build it was writing is redone next time)
            mesh.close()

    def _stop_worker(self) -> None:
        self._stop.set()
        self.session.stop()
        if self._worker is not None:
            self._worker.join(timeout=STOP_JOIN_S)
            if self._worker.is_alive():
                self.get_logger().warn(f"worker still busy after {STOP_JOIN_S:.0f} s; it stops after the current inference")
            self._worker = None
        if self._meshes is not None:  # before the publisher: the mesh thread's reports go through it
            self._meshes.close(STOP_JOIN_S)
            self._meshes = None
        self._publisher.stop(STOP_JOIN_S)  # after the worker: what it produced is published first

    # ------------------------------------------------------------------ inputs
    def _header(self, stamp: cdr.Stamped) -> Header:
        if not stamp.frame_id:
            self._robot_report(PipelineStatus.WARN, "missing_frame_id", "image without header.frame_id: using "
                               f"frame_id '{self.cfg.frame_id}' (parameter frame_id) for its poses and TF", "missing_frame_id")
        return Header(stamp=Time(sec=stamp.sec, nanosec=stamp.nanosec), frame_id=stamp.frame_id or self.cfg.frame_id)

    def _put(self, raw: bytes, parse: Callable) -> None:
        try:
            stamp, image = parse(raw)
            if isinstance(image, RawImage):  # the layout only: pixels are decoded when the frame is used
                check_raw_layout(image.width, image.height, image.encoding, image.step, image.nbytes,
                                 self.model_cfg.max_image_pixels)
        except ChatPoseError as exc:
            self._emit(self.session.refuse_frame(exc.code, str(exc)))
            return
        delay = None
        if stamp.sec > 0 or stamp.nanosec > 0:  # transport + queueing delay (camera stamp to callback), ms
            delay = (self.get_clock().now().nanoseconds - stamp.sec * 10**9 - stamp.nanosec) * 1e-6
        self.session.put_frame(Frame(image=image, header=self._header(stamp)), delay_ms=delay)

    def _on_image(self, raw: bytes) -> None:
        self._put(raw, cdr.parse_image)

    def _on_compressed(self, raw: bytes) -> None:
        self._put(raw, cdr.parse_compressed)

    def _on_query_raw(self, raw: bytes) -> None:
        self.stats["queries_received"] += 1
        try:
            text = convert.string_from_cdr(raw)
        except InvalidQueryError as exc:
            self._emit(self.session.refuse_query(exc))
            return
        self._emit(self.session.submit(text)[1])

    def _submit_speech(self, text: str, voice: str) -> None:
        self.stats["queries_received"] += 1
        self._emit(self.session.submit(text, source=voice)[1])

    def _robot_report(self, level: int, code: str, message: str, throttle_key: str = "") -> None:
        self._emit([self.session.report(level, code, message, throttle_key=throttle_key)])

    # ------------------------------------------------------------------ worker
    def _work(self) -> None:
        while not self._stop.is_set():
            work = self.session.take(timeout=WORKER_WAIT_S)
            try:
                if work is None:
                    if self.runner is not None and self.model_state == "loaded" and not self.runner.alive \
                            and not self._stop.is_set():
                        self._recover(WorkerCrashedError("the model worker died while idle"))
                elif isinstance(work, Answer):
                    self._emit_later(work.reports)
                    result, _size = self.runner.estimate(work.frame.image if work.frame else None, work.job.query)
                    self._emit_later(self.session.finish_answer(work, result))
                else:
                    t0 = time.monotonic()
                    people, size = self.runner.observe(work.frame.image, work.near)
                    self._track_ms = (time.monotonic() - t0) * 1000.0
                    self._emit_later(self.session.finish_track(work, people, self.runner.model_id, size))
            except WorkerCrashedError as exc:
                self._emit_later(self.session.fail(work, exc) if work is not None else [])
                self._recover(exc)
            except Exception as exc:  # model errors (typed or not) are reported; the worker lives on
                if not isinstance(exc, ChatPoseError):
                    self.get_logger().error(f"worker error (recovered): {type(exc).__name__}: {exc}")
                self._emit_later(self.session.fail(work, exc) if work is not None else [])

    def _recover(self, exc: WorkerCrashedError) -> None:
        """The model's process died: report it, forget the track, start a new one."""
        self.stats["worker_crashes"] += 1
        self.model_state = "restarting"
        self._emit_later([Report(PipelineStatus.ERROR, exc.code, f"{exc}; restarting the model worker")])
        self.session.drop_track()
        try:
            self.runner.restart()
        except Exception as err:
            self.model_state = f"restart failed: {err}"
            self._emit_later([Report(PipelineStatus.ERROR, "model_load_failed", f"model worker restart failed: {err}")])
            return
        self.model_state = "loaded"
        self._emit_later([Report(PipelineStatus.WARN, "worker_restarted", f"model worker restarted ({self.runner.model_id})")])

    # ------------------------------------------------------------------ outputs
    def _emit_later(self, events) -> None:
        """Publish `events` from the publisher thread (in order with the worker's other events)."""
        self._publisher.put(events)

    def _log_publish_error(self, exc: Exception) -> None:
        self.get_logger().error(f"publishing failed (recovered): {type(exc).__name__}: {exc}")

    def _publish_mesh(self, raw: bytes) -> None:
        pub = self._pubs.get("markers")
        if pub is not None and not self._publisher.discard:
            pub.publish(raw)

    def _emit(self, events) -> None:
        for ev in events:
            if isinstance(ev, Report):
                self._report(ev)
            elif isinstance(ev, Output):
                self._publish(ev)

    def _publish(self, out: Output) -> None:
        if not self._pubs:
            return
        header = out.frame.header if out.frame is not None else Header(stamp=self.get_clock().now().to_msg(),
                                                                       frame_id=self.cfg.frame_id)
        if self.robot is not None:  # translations from camera_info (or unknown) before anything is published
            out = self.robot.place(out)
        out = publish_result(out, header, self._pubs, self.cfg, self.mesh, self.get_logger())
        meshes = self._meshes
        if meshes is not None:  # the Anny mesh marker follows when the mesh process answers (never waited for)
            meshes.submit(out, header, None if out.answer else self._track_ms)
        if self.robot is not None:
            self.robot.publish(out, header)
        for hook in self.output_hooks:
            hook(out, header)

    def _report(self, rep: Report) -> None:
        log_report(rep, self._log_throttle, self.cfg.status_log_period_s, self.get_logger())
        pub = self._pubs.get("status")
        if pub is not None and pub.is_activated:
            self.stats[f"status_{rep.code}"] += 1
            pub.publish(convert.status_msg(rep.level, rep.code, rep.message, rep.query, self.get_clock().now().to_msg(),
                                           self.cfg.frame_id))

    def _publish_diagnostics(self) -> None:
        if self.mesh is not None:  # the Anny mesh reports its readiness without waiting for traffic
            self._emit(self.mesh.poll())
        self._pubs["diagnostics"].publish(pipeline_diagnostics(self.get_name(), self.get_clock().now().to_msg(), self.cfg,
                                                               self.runner, self.model_state, self.session, self.mesh))
