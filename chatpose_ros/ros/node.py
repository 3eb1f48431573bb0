"""The chatpose_ros lifecycle node: image + query in, SMPL poses, markers, answers out.

A thin adapter: callbacks convert messages and submit them to a ROS-free Session
(chatpose_ros.core.session: latest frame, query queue, image policy, tracking cadence,
throttled reports); the model (core.model_worker.ModelHost: runner, state, and a ModelLoop
thread while active) takes work from the session and hands the session's events to a
publishing thread (ros/outputs.py), which publishes them.

Frames cost nothing until used: the image subscriptions are raw (serialised bytes); only the
header is read at arrival (chatpose_ros.ros.cdr) and the layout checked, and only the frame the
worker takes is decoded. The model and the profile's tracker run in a worker process of their
own (frames through shared memory; `model_in_process` keeps them here for tests): this process
imports neither torch nor a profile. If that process dies it is reported on ~/status and
/diagnostics and restarted, and the node keeps serving.

Streaming answers (a profile whose estimate calls on_pose / on_text): poses first, then the
words (ros/outputs.py; action feedback too); a profile that does not stream publishes at the end.

Lifecycle: configure = read parameters, create the (lifecycle) publishers and the action server,
start the model (a load failure fails the transition with a clear message); activate =
subscriptions, worker thread, diagnostics; deactivate = stop them; cleanup = stop the model.
An inactive node publishes nothing.

Hook for other outputs (TF, ROS4HRI): `node.output_hooks` is a list of callables
`hook(output: core.session.Output, header: std_msgs.msg.Header)`, called from the publishing
thread after every published result; `output.tracked` are the people with their track ids.
"""
from __future__ import annotations

import time
from typing import Callable

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from std_msgs.msg import Header

from chatpose_ros.core.body_mesh import BodyMesh
from chatpose_ros.core.config import NodeConfig, PipelineConfig
from chatpose_ros.core.errors import ChatPoseError
from chatpose_ros.core.model_worker import ModelHost, PipelineFactory
from chatpose_ros.core.logs import ERROR, INFO, WARN, LogSink, LogThrottle, ThrottledLog
from chatpose_ros.core.session import Output, Session
from chatpose_ros.profiles import build_pipeline, tracker_factory

from .estimate_action import EstimateAction
from .inputs import Inputs
from .outputs import NodeOutputs, PublishThread, create_publishers, log_publish_error
from .params import declare_from_dataclass, read_dataclass, runtime_changes
from .robot_io import RobotIO

MODEL_PREFIX = "model."
PUBLISH_BACKLOG = 2  # results waiting for the publisher thread before the worker waits for it
STOP_JOIN_S = 30.0  # how long deactivate waits for the inference in progress
CAMERA_CHECK_S = 0.1  # the camera watchdog's period: a stopped camera is reported this soon after camera_timeout_s
LOG_CLOSE_S = 1.0  # how long destroy_node waits for the log's queued lines


class ChatPoseNode(LifecycleNode):
    """See the module docstring, README and docs/node.md (topics, parameters, action)."""

    def __init__(self, node_name: str = "chatpose_node", pipeline_factory: PipelineFactory = build_pipeline, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self._factory = pipeline_factory
        declare_from_dataclass(self, NodeConfig)
        declare_from_dataclass(self, PipelineConfig, MODEL_PREFIX)
        self.cfg, self.model_cfg = NodeConfig(), PipelineConfig()
        self.session = Session(self.cfg, self.model_cfg.max_query_chars)
        # every line of the node goes through the log's daemon thread (core/logs.py): no callback waits on the stream
        self.log = ThrottledLog(LogSink(lambda: self.get_logger(), self.session.stats), LogThrottle(self.cfg.status_log_period_s))
        self.model = ModelHost()  # runner, model loop thread and the model's state (core/model_worker.py)
        self.output_hooks: list[Callable[[Output, Header], None]] = []
        self.robot: RobotIO | None = None  # camera_info, TF, ROS4HRI bodies, speech in (ros/robot_io.py)
        self.mesh: BodyMesh | None = None  # the chosen person's body mesh (SMPL file or Anny; core/body_mesh.py)
        self._outputs: NodeOutputs | None = None
        self._pubs: dict[str, object] = {}
        self._subs: list = []
        self._timers: list = []
        self._action: EstimateAction | None = None
        # results are published by a thread of their own, so that the model works on the next
        # frame meanwhile (publishing, markers and hooks cost milliseconds of Python)
        self._publisher = PublishThread(self._emit, log_publish_error(self.log, self.context.ok), PUBLISH_BACKLOG)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self._say(INFO, "chatpose_node created; waiting for configure (autostart does it at start-up)")

    @property
    def stats(self):
        return self.session.stats

    @property
    def model_state(self) -> str:
        return self.model.state

    # ------------------------------------------------------------------ lifecycle
    def autostart(self) -> bool:
        """Configure then activate (what a lifecycle manager would do). False when configure failed:
        the node stays unconfigured and can be configured again over its lifecycle services."""
        if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
            self._say(ERROR, "configure failed (see above): the node stays unconfigured; fix the "
                                    "parameters and trigger configure again")
            return False
        return self.trigger_activate() == TransitionCallbackReturn.SUCCESS

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.cfg = read_dataclass(self, NodeConfig)
            self.model_cfg = read_dataclass(self, PipelineConfig, MODEL_PREFIX)
            make_tracker = tracker_factory(self.model_cfg.profile)  # called beside the model only
            # the Anny mesh is computed in a thread of its own, beside the worker's next tracking update
            mesh = BodyMesh(self.cfg.mesh_body, self.model_cfg.smpl_model_path, self.cfg.tracking_rate_hz, overlapped=True)
        except ChatPoseError as exc:
            self._say(ERROR, f"configure failed: invalid parameters: {exc}")
            return TransitionCallbackReturn.FAILURE
        # counters run on across reconfigurations
        self.session = Session(self.cfg, self.model_cfg.max_query_chars, can_track=True, stats=self.session.stats)
        where, t0 = "in this process" if self.cfg.model_in_process else "in a worker process", time.monotonic()
        self.log.throttle.period_s = self.cfg.status_log_period_s
        self._say(INFO, f"loading model profile '{self.model_cfg.profile}' {where}")
        try:
            runner = self.model.load(self._factory, self.model_cfg, make_tracker, self.cfg.model_in_process)
        except Exception as exc:  # a model library failing in any way must not kill the node
            code = exc.code if isinstance(exc, ChatPoseError) else type(exc).__name__
            self._say(ERROR, f"configure failed: cannot load the model ({code}): {exc}")
            return TransitionCallbackReturn.FAILURE
        self.mesh = mesh
        self.mesh.start()  # Anny loads in a process of its own: never waited for
        self._say(INFO, f"model {runner.model_id} loaded {where} in {time.monotonic() - t0:.1f} s")
        self._pubs, out_qos = create_publishers(self, self.cfg)
        self.robot = RobotIO(self, self.cfg, self.model_cfg.max_image_pixels, self._robot_report, self._submit_speech,
                             stats=self.session.stats)
        self.robot.configure(out_qos)
        self._outputs = NodeOutputs(self, self.cfg, self._pubs, self.session.stats, self.log,
                                    self.robot, self.mesh, self.output_hooks)
        self._outputs.frame_id = self._image_frame_id
        # The action server lives from configure to cleanup (destroying it while the executor
        # waits on it races); goals are refused while the node is not active.
        self._action = EstimateAction(self, self.cfg, self.model_cfg.max_image_pixels, self.session, self._emit,
                                      lambda: self.model.loop is not None)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._subs = Inputs(self, self.cfg, self.model_cfg.max_image_pixels, lambda: self.session, self._emit,
                            self._robot_report).subscribe()
        outputs, model = self._outputs, self.model
        diagnostics = MutuallyExclusiveCallbackGroup()
        self._timers = [self.create_timer(self.cfg.diagnostics_period_s, lambda: outputs.publish_diagnostics(self.session, model),
                                          callback_group=diagnostics),
                        self.create_timer(CAMERA_CHECK_S, self._check_camera, callback_group=diagnostics)]
        self.robot.activate(MutuallyExclusiveCallbackGroup())
        self.session.start()
        outputs.start_meshes(self._publisher.put, lambda: model.loop.track_ms if model.loop is not None else None)
        self._publisher.start()
        model.serve(self.session, self._publisher.put, lambda text: self.log.write(ERROR, "worker_error", text))
        self._say(INFO, f"active: images on '{self.cfg.image_topic}' (QoS {self.cfg.image_qos}), queries on "
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
        self._say(INFO, "deactivated: subscriptions and worker stopped")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._say(INFO, "cleaned up: model released")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_worker()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self._action is not None:
            self._action.destroy()
            self._action = None
        self._outputs = None
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        if self.robot is not None:
            self.robot.release()
            self.robot = None
        self._close_runner()
        self.session.reset()

    def close_model(self) -> None:
        """Stop the worker thread and the model's process, publishing nothing (at exit, when
        the ROS context may already be shut down and no transition can run)."""
        self._publisher.discard = True  # results still queued for publishing are dropped
        self._stop_worker()
        self._close_runner()

    def destroy_node(self) -> None:
        self.log.sink.close(LOG_CLOSE_S)  # what is queued is written first (unless the stream is stuck)
        super().destroy_node()

    def _close_runner(self) -> None:
        self.model.close()
        mesh, self.mesh = self.mesh, None
        if mesh is not None:  # the Anny mesh process, asked to stop (a build it was writing is redone next time)
            mesh.close()

    def _stop_worker(self) -> None:
        self.session.stop()  # wakes the model loop
        if not self.model.stop(STOP_JOIN_S):
            self._say(WARN, f"worker still busy after {STOP_JOIN_S:.0f} s; it stops after the current inference")
        if self._outputs is not None:  # before the publisher: the mesh thread's reports go through it
            self._outputs.stop_meshes(STOP_JOIN_S)
        self._publisher.stop(STOP_JOIN_S)  # after the worker: what it produced is published first

    def _say(self, level: str, line: str) -> None:
        """A line of the node's own (lifecycle, start-up): unthrottled, written by the log's thread."""
        self.log.sink.write(level, line)

    # ------------------------------------------------------------------ run-time parameters
    def _on_set_parameters(self, params) -> SetParametersResult:
        """NodeConfig.RUNTIME parameters set while the node runs: checked as at configure (an
        invalid value is refused with the reason), then used from the next frame or query on."""
        try:
            cfg, changed = runtime_changes(NodeConfig, self.cfg, params)
        except ChatPoseError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        if changed:
            old, self.cfg = self.cfg, cfg
            self.session.config = cfg
            self.log.throttle.period_s = cfg.status_log_period_s
            outputs = self._outputs
            if outputs is not None:
                outputs.cfg = cfg
                if outputs.meshes is not None:
                    outputs.meshes.cfg = cfg
            if old.track_after_query and not cfg.track_after_query:
                self.session.drop_track()
            self._say(INFO, f"parameters set: {', '.join(f'{n}={getattr(cfg, n)!r}' for n in changed)}")
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ inputs (also ros/inputs.py)
    def _submit_speech(self, text: str, voice: str) -> None:
        self.stats["queries_received"] += 1
        self._emit(self.session.submit(text, source=voice)[1])

    def _image_frame_id(self) -> str:
        """The latest image's frame id (parameter frame_id before the first image)."""
        latest = self.session.latest
        return getattr(latest.header if latest is not None else None, "frame_id", "") or self.cfg.frame_id

    def _check_camera(self) -> None:
        """The camera watchdog (a timer): a camera that stopped is reported on ~/status and at once
        on /diagnostics, without waiting for a frame or for the diagnostics period."""
        events, outputs = self.session.check_camera(), self._outputs
        if events and outputs is not None:
            outputs.emit(events)
            outputs.publish_diagnostics(self.session, self.model)

    def _robot_report(self, level: int, code: str, message: str, throttle_key: str = "") -> None:
        self._emit([self.session.report(level, code, message, throttle_key=throttle_key)])

    # ------------------------------------------------------------------ outputs
    def _emit(self, events) -> None:
        """Publish the session's `events` now, in this thread (ros/outputs.NodeOutputs)."""
        outputs = self._outputs
        if outputs is not None:
            outputs.emit(events)
