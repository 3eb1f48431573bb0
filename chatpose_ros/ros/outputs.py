"""How the node's results leave it: its publishers, the publishing thread, the session's events
published (NodeOutputs: pose / marker / answer messages of one result, streamed answer pieces,
~/status, TF and ROS4HRI through the robot's outputs, the Anny mesh thread, output hooks,
/diagnostics), and the log lines of the session's reports (throttled) and of publishing errors.
Per result: /tf (and ~/target_pose) first, so that a transform arrives before the poses that
refer to its frame, then ~/poses, ~/pose, ~/markers, then ROS4HRI (its crops decode the image).

~/status conventions: `level` OK / WARN / ERROR (chatpose_ros/PipelineStatus), `code` a short
snake_case word (``ok``, ``no_match``, ``stale_image``, an error class's code, ...), `query` the
query it concerns ("" if none). A streamed answer publishes its poses on ~/poses, ~/pose,
~/markers (and TF, ROS4HRI) as soon as the model has chosen the person (the array's `answer`
then holds the words so far, usually ""), each new piece of the words on ~/answer_stream, and
the complete answer on ~/answer at the end, with the ``ok`` (or ``no_match``) status.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
from typing import Callable

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from chatpose_ros.core.body_mesh import BodyMesh
from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.model_worker import ModelHost
from chatpose_ros.core.logs import DEBUG, ERROR, INFO, WARN, ThrottledLog, clip
from chatpose_ros.core.session import POSES, WORDS, AnswerDelta, Output, Report, Session, TargetHidden
from chatpose_ros.msg import PipelineStatus, SmplPose, SmplPoseArray

from . import convert, markers
from .diagnostics import pipeline_diagnostics
from .mesh_markers import MeshMarkers

DIAGNOSTICS_DEPTH = 10
ANSWER_CODES = ("ok", "no_match", "clarify")  # a query's answer: logged at most once per ANSWER_LOG_PERIOD_S per source
ANSWER_LOG_PERIOD_S = 1.0


def create_publishers(node, cfg: NodeConfig) -> tuple[dict, QoSProfile]:
    """The node's lifecycle publishers by key (poses, pose, markers, answer, answer_stream,
    status, diagnostics) and the output QoS they use."""
    reliability = ReliabilityPolicy.RELIABLE if cfg.output_qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
    qos = QoSProfile(depth=cfg.output_qos_depth, history=HistoryPolicy.KEEP_LAST, reliability=reliability)
    topics = {"poses": (SmplPoseArray, "~/poses"), "pose": (SmplPose, "~/pose"), "markers": (MarkerArray, "~/markers"),
              "answer": (String, "~/answer"), "answer_stream": (String, "~/answer_stream"),
              "status": (PipelineStatus, "~/status")}
    pubs = {k: node.create_lifecycle_publisher(t, n, qos) for k, (t, n) in topics.items()}
    pubs["diagnostics"] = node.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", DIAGNOSTICS_DEPTH)
    return pubs, qos


def log_publish_error(log: ThrottledLog, context_ok: Callable[[], bool]) -> Callable[[Exception], None]:
    """`on_error` of the publishing and mesh threads: log what a batch raised (they go on). After
    the ROS context is shut down (`context_ok()` False) a failed publish is expected: debug only."""
    def on_error(exc: Exception) -> None:
        name = type(exc).__name__
        if not context_ok():
            log.write(DEBUG, "publish_after_shutdown", f"not published, the context is shut down: {name}: {exc}")
        else:
            log.write(ERROR, f"publish_error:{name}", f"publishing failed (recovered): {name}: {exc}")
    return on_error


class NodeOutputs:
    """Publishes the session's events (`emit`) for one configuration of `node`: see the module
    docstring. While the node is active, `meshes` (ros/mesh_markers.MeshMarkers, Anny mesh only:
    `start_meshes` / `stop_meshes`) dresses the results, and `track_ms` (a callable: the last
    tracking update's duration) paces it."""

    def __init__(self, node, cfg: NodeConfig, pubs: dict, stats, log: ThrottledLog, robot, mesh: BodyMesh | None,
                 hooks: list) -> None:
        self._node, self.cfg, self._pubs, self._stats = node, cfg, pubs, stats
        self._log, self._robot, self._mesh, self._hooks = log, robot, mesh, hooks
        self.meshes = None
        self.track_ms: Callable[[], float | None] = lambda: None
        self.frame_id: Callable[[], str] = lambda: cfg.frame_id  # ~/status's frame: the latest image's (set by the node)

    def emit(self, events) -> None:
        for ev in events:
            if isinstance(ev, Report):
                self.report(ev)
            elif isinstance(ev, AnswerDelta):
                self._pubs["answer_stream"].publish(String(data=ev.delta))
            elif isinstance(ev, Output):
                self.publish(ev)
            elif isinstance(ev, TargetHidden) and self._robot is not None:
                self._robot.hold(ev)

    def publish(self, out: Output) -> None:
        header = out.frame.header if out.frame is not None else Header(stamp=self._node.get_clock().now().to_msg(),
                                                                       frame_id=self.cfg.frame_id)
        if out.only == WORDS:  # the poses went out when the model chose the person
            publish_answer(out, self._pubs, self._log)
            return
        robot, bodies = self._robot, []
        if robot is not None:  # translations from camera_info (or unknown) before anything is published,
            out = robot.place(out)  # then TF: a transform comes before the messages that refer to its frame
            bodies = robot.bodies(out.result)
            robot.publish_tf(out, header, bodies)
        out = publish_result(out, header, self._pubs, self.cfg, self._mesh, self._log)
        if self.meshes is not None:  # the Anny mesh marker follows when the mesh process answers (never waited for)
            self.meshes.submit(out, header, None if out.answer else self.track_ms())
        if robot is not None:
            robot.publish_hri(out, header, bodies)
        for hook in self._hooks:
            hook(out, header)

    def publish_mesh(self, raw: bytes) -> None:
        self._pubs["markers"].publish(raw)

    def start_meshes(self, put: Callable[[list], None], track_ms: Callable[[], float | None]) -> None:
        """Activate: the Anny mesh thread (mesh_body 'anny' only); its reports go to `put` (the
        publishing thread's queue)."""
        self.track_ms = track_ms
        if self._mesh is not None and self._mesh.mode == "anny":
            on_error = log_publish_error(self._log, self._node.context.ok)
            self.meshes = MeshMarkers(self._mesh, self.cfg, self.publish_mesh, put, on_error)
            self.meshes.start()

    def stop_meshes(self, timeout: float) -> None:
        """Deactivate: stop the mesh thread after the mesh in flight (before the publishing thread
        stops: the mesh thread's reports go through it)."""
        meshes, self.meshes = self.meshes, None
        if meshes is not None:
            meshes.close(timeout)

    def publish_diagnostics(self, session: Session, model: ModelHost) -> None:
        """/diagnostics (ros/diagnostics.py); the Anny mesh reports its readiness first, without
        waiting for traffic."""
        if self._mesh is not None:
            self.emit(self._mesh.poll())
        self._pubs["diagnostics"].publish(pipeline_diagnostics(self._node.get_name(), self._node.get_clock().now().to_msg(),
                                                               self.cfg, model, session, self._mesh))

    def report(self, rep: Report) -> None:
        log_report(rep, self._log)
        pub = self._pubs.get("status")
        if pub is not None and pub.is_activated:
            self._stats[f"status_{rep.code}"] += 1
            pub.publish(convert.status_msg(rep.level, rep.code, rep.message, rep.query,
                                           self._node.get_clock().now().to_msg(), self.frame_id()))


class PublishThread:
    """Events published by `emit` from a thread of its own, in order, so that the model works on
    the next frame meanwhile; at most `backlog` batches wait (then `put` waits). `discard` drops
    what is still queued (at exit); `on_error(exc)` logs what a batch raised."""

    def __init__(self, emit: Callable[[list], None], on_error: Callable[[Exception], None], backlog: int) -> None:
        self._emit, self._on_error = emit, on_error
        self._queue: queue.Queue = queue.Queue(maxsize=backlog)
        self._thread: threading.Thread | None = None
        self.discard = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="chatpose_publisher", daemon=True)
        self._thread.start()

    def put(self, events) -> None:
        if events:
            self._queue.put(list(events))

    def stop(self, timeout: float) -> None:
        """Publish what is queued (unless discarding), then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while (events := self._queue.get()) is not None:
            if self.discard:
                continue
            try:
                self._emit(events)
            except Exception as exc:  # publishing must outlive any bug in a hook or a conversion
                self._on_error(exc)


def publish_result(out: Output, header: Header, pubs: dict, cfg: NodeConfig, mesh: BodyMesh | None,
                   log: ThrottledLog) -> Output:
    """Publish ~/poses, ~/pose (the chosen person), ~/markers and, for an answer, ~/answer (not
    for streamed poses: the words follow) of one (placed) output; returns it with the mesh of
    modes smpl / off applied (the Anny mesh follows later: ros/mesh_markers.py)."""
    arr = convert.result_to_msg(out.result, header)
    pubs["poses"].publish(arr)
    if 0 <= out.result.selected < len(arr.poses):
        pubs["pose"].publish(arr.poses[out.result.selected])
    if mesh is not None and mesh.mode != "anny":  # 'off' drops a pipeline's mesh, 'smpl' keeps it: no round trip
        out = dataclasses.replace(out, result=mesh.dress(out.result)[0])
    pubs["markers"].publish(markers.result_markers(out.result, header, cfg.marker_lifetime_s, cfg.marker_joint_diameter_m,
                                                   cfg.default_depth_m))
    if out.answer and out.only != POSES:
        publish_answer(out, pubs, log)
    return out


def publish_answer(out: Output, pubs: dict, log: ThrottledLog) -> None:
    """~/answer: the complete answer of `out` (a spoken query's answer says which voice asked);
    the debug log has it too (the ``ok`` status is the operator's line)."""
    pubs["answer"].publish(String(data=f"[voice {out.source}] {out.result.answer}" if out.source else out.result.answer))
    log.write(DEBUG, f"answer:{out.source}", f"query '{clip(out.result.query)}' -> '{clip(out.result.answer)}' "
              f"({len(out.result.people)} people, selected {out.result.selected})", ANSWER_LOG_PERIOD_S)


def log_report(rep: Report, log: ThrottledLog) -> None:
    """Log a report: per code and source, the first, then at most one per status_log_period_s
    (a query's answer: one per ANSWER_LOG_PERIOD_S), each with the count not logged since."""
    period = min(ANSWER_LOG_PERIOD_S, log.throttle.period_s) if rep.code in ANSWER_CODES else None
    level = INFO if rep.level == PipelineStatus.OK else WARN if rep.level == PipelineStatus.WARN else ERROR
    log.write(level, f"{rep.code}:{rep.source}", f"[{rep.code}] {rep.message}", period)
