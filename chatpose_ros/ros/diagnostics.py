"""The node's /diagnostics message: the model's state and runtime (which ONNX Runtime provider
and torch device run it), the session's counters and timings, the body mesh's state and the
image callback gaps since the last message."""
from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Header

from chatpose_ros.core.body_mesh import BodyMesh
from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.model_worker import ModelHost
from chatpose_ros.core.session import Session


def pipeline_diagnostics(node_name: str, stamp: Time, cfg: NodeConfig, model: ModelHost, session: Session,
                         mesh: BodyMesh | None) -> DiagnosticArray:
    """One DiagnosticStatus "<node_name>: pipeline": ERROR while the model is not loaded, WARN
    while the camera is stopped (Session.check_camera: the age of the last frame) or when the
    last answer took longer than cfg.latency_warn_ms, else OK. Drains the session's
    image callback gaps."""
    runner, model_state = model.runner, model.state
    values = {"model_id": runner.model_id if runner else "", "model_state": model_state,
              "runtime": str(getattr(runner, "runtime", "")) if runner else "",
              "model_process": "in process" if cfg.model_in_process else str(getattr(runner, "pid", "")),
              **session.snapshot(), **(mesh.snapshot() if mesh is not None else {}),
              "image_gaps_ms": ",".join(f"{g:.1f}" for g in session.drain_image_gaps())}
    last = session.last_latency_ms
    level, msg = DiagnosticStatus.OK, "ok"
    if runner is None or model_state != "loaded":
        level, msg = DiagnosticStatus.ERROR, f"model not available ({model_state})"
    elif session.camera_stalled:
        age = session.frame_age()
        level, msg = DiagnosticStatus.WARN, f"camera stopped: last frame {age:.2f} s ago"
    elif last is not None and last > cfg.latency_warn_ms:
        level, msg = DiagnosticStatus.WARN, f"last answer took {last:.0f} ms (> latency_warn_ms)"
    status = DiagnosticStatus(level=level, name=f"{node_name}: pipeline", hardware_id="chatpose_ros", message=msg,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    return DiagnosticArray(header=Header(stamp=stamp), status=[status])
