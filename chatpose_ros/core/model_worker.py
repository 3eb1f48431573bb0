"""The model of one node (ROS-free): `ModelHost` loads it in a runner (core.model_runners,
core.worker_process) and serves the node's Session from a thread of its own (`ModelLoop`).

    host = ModelHost()
    host.load(build_pipeline, PipelineConfig(), make_tracker, in_process=False)   # ModelLoadError
    host.serve(session, emit, on_error)          # the loop takes the session's work
    host.stop(timeout); host.close()
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from .config import PipelineConfig
from .errors import ChatPoseError, WorkerCrashedError
from .model_runners import InProcessRunner, ModelRunner, PipelineFactory, TrackerFactory
from .session import ERROR, WARN, Answer, Report
from .worker_process import ProcessRunner

WORKER_WAIT_S = 0.1  # the loop's longest wait for work (then it checks stop and the model's health)


class ModelLoop:
    """The thread that serves a Session with a runner: takes work (`session.take`), runs it on the
    model (answers streamed when the pipeline streams; tracking updates through the tracker
    beside the model), and hands the session's events to `emit` in order. If the model's
    process dies (during work or while idle) it is reported, the track dropped, and the model
    restarted; the loop serves on. ROS-free: the node passes its publishing queue as `emit`.

    Args:
        session, runner: what to serve, and where the model runs.
        emit: `emit(events)` publishes a list of session events (Report, Output, AnswerDelta).
        on_error: `on_error(text)` logs an unexpected (non-ChatPoseError) model error.
        state: the model's state to start from ("loaded"); `state` follows restarts.
    """

    def __init__(self, session: Any, runner: ModelRunner, emit: Callable[[list], None],
                 on_error: Callable[[str], None], state: str = "loaded") -> None:
        self.session, self.runner = session, runner
        self._emit, self._on_error = emit, on_error
        self.state = state
        self.track_ms: float | None = None  # how long the last tracking update took (ms)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="chatpose_worker", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def stop(self, timeout: float) -> bool:
        """Stop after the work in progress; False when it is still busy after `timeout` s (it
        stops after the current inference). The session must be stopped too (it wakes `take`)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is None:
            return True
        thread.join(timeout=timeout)
        return not thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            work = self.session.take(timeout=WORKER_WAIT_S)
            try:
                if work is None:
                    if self.state == "loaded" and not self.runner.alive and not self._stop.is_set():
                        self._recover(WorkerCrashedError("the model worker died while idle"))
                elif isinstance(work, Answer):
                    self._answer(work)
                else:
                    t0 = time.monotonic()
                    update, size = self.runner.track(work.frame.image, work.request)
                    self.track_ms = (time.monotonic() - t0) * 1000.0
                    self._emit(self.session.finish_track(work, update, self.runner.model_id, size))
            except WorkerCrashedError as exc:
                self._emit(self.session.fail(work, exc) if work is not None else [])
                self._recover(exc)
            except Exception as exc:  # model errors (typed or not) are reported; the loop lives on
                if not isinstance(exc, ChatPoseError):
                    self._on_error(f"worker error (recovered): {type(exc).__name__}: {exc}")
                self._emit(self.session.fail(work, exc) if work is not None else [])

    def _answer(self, work: Answer) -> None:
        self._emit(list(work.reports))
        result, _size = self.runner.estimate(work.frame.image if work.frame else None, work.job.query,
                                             on_pose=lambda r: self._emit(self.session.answer_pose(work, r)),
                                             on_text=lambda d: self._emit(self.session.answer_text(work, d)),
                                             conversation=work.job.source or "query",
                                             on_stage=lambda stage: self.session.stage(work, stage))
        self._emit(self.session.finish_answer(work, result))

    def _recover(self, exc: WorkerCrashedError) -> None:
        """The model's process died: report it, forget the track, start a new one."""
        self.session.stats["worker_crashes"] += 1
        self.state = "restarting"
        self._emit([Report(ERROR, exc.code, f"{exc}; restarting the model worker")])
        self.session.drop_track()
        try:
            self.runner.restart()
        except Exception as err:
            self.state = f"restart failed: {err}"
            self._emit([Report(ERROR, "model_load_failed", f"model worker restart failed: {err}")])
            return
        self.state = "loaded"
        self._emit([Report(WARN, "worker_restarted", f"model worker restarted ({self.runner.model_id})")])


class ModelHost:
    """The model of one node, ROS-free: its runner (loaded at configure, closed at cleanup), the
    ModelLoop that serves the node's Session while it is active, and the model's state for
    diagnostics: "unconfigured", "loading", "loaded", "load failed: ...", then the loop's
    ("restarting", "restart failed: ...", kept when the loop stops)."""

    def __init__(self) -> None:
        self.runner: ModelRunner | None = None
        self.loop: ModelLoop | None = None
        self._state = "unconfigured"

    @property
    def state(self) -> str:
        return self.loop.state if self.loop is not None else self._state

    def load(self, factory: PipelineFactory, config: PipelineConfig, tracker_factory: TrackerFactory | None,
             in_process: bool) -> ModelRunner:
        """Start the model, in this process (InProcessRunner) or in a worker process
        (ProcessRunner). On failure the runner is closed, `state` says why and the error is raised."""
        self._state = "loading"
        runner = (InProcessRunner if in_process else ProcessRunner)(factory, config, tracker_factory)
        try:
            runner.start()
        except Exception as exc:
            self._state = f"load failed: {exc}"
            runner.close()
            raise
        self.runner, self._state = runner, "loaded"
        return runner

    def serve(self, session: Any, emit: Callable[[list], None], on_error: Callable[[str], None]) -> None:
        """Start a ModelLoop on `session` (see ModelLoop for `emit` and `on_error`)."""
        self.loop = ModelLoop(session, self.runner, emit, on_error, self._state)
        self.loop.start()

    def stop(self, timeout: float) -> bool:
        """Stop the loop after the work in progress (stop the session first: that wakes it);
        False when it is still busy after `timeout` s (it stops after the current inference)."""
        loop, self.loop = self.loop, None
        if loop is None:
            return True
        self._state = loop.state
        return loop.stop(timeout)

    def close(self) -> None:
        """Stop the model (a worker process and its shared memory); state "unconfigured"."""
        runner, self.runner = self.runner, None
        if runner is not None:
            runner.close()
        self._state = "unconfigured"
