"""Where the model runs: in the caller's process, or in a worker process of its own (ROS-free).

    runner = ProcessRunner(build_pipeline, PipelineConfig(), make_tracker)   # or InProcessRunner(...)
    runner.start()                                   # spawns the worker and loads the model (ModelLoadError)
    result, size = runner.estimate(RawImage(...), "the person on the left", on_pose=..., on_text=...)
    update, size = runner.track(RawImage(...), TrackRequest(near=box, seed=person))
    people, size = runner.observe(RawImage(...), near=box)
    runner.close()

Images travel *undecoded* (`RawImage`: the pixel bytes of a sensor_msgs/Image as received,
`EncodedImage`: JPEG/PNG bytes, `RgbImage`: an array) and are decoded by the runner, i.e. only
for the frames the model is given. The process runner copies the bytes once, into a shared
memory block (multiprocessing.shared_memory); the worker decodes them there, so neither the
decode nor the model holds the node's GIL. Results come back pickled over a pipe (a few kB).

Streaming: `estimate(..., on_pose, on_text)` passes the callbacks to the pipeline (see
core.pipeline.PosePipeline.estimate); in the worker process each call is sent over the pipe as it
happens and the callback runs in the caller's thread, before `estimate` returns. A pipeline that
does not call them streams nothing (the caller publishes the returned result).

Tracking: the profile's tracker lives where the model lives (`tracker_factory`, a picklable
callable making a core.session.Tracker); `track` observes a frame and matches the tracked person
in one round trip (core.session.TrackRequest in, TrackUpdate out), so the caller's process never
imports a profile's tracker.

If the worker dies, the call raises WorkerCrashedError; `restart()` spawns and loads a new one.
The worker is started with the "spawn" method (no fork of a process running DDS threads).
"""
from __future__ import annotations

import gc
import inspect
import logging
import multiprocessing
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any, Callable, Protocol

import numpy as np

from . import errors
from .config import PipelineConfig
from .errors import ChatPoseError, InferenceError, ModelLoadError, WorkerCrashedError
from .image_codec import decode_compressed, decode_raw
from .pipeline import PosePipeline, validate_image
from .session import ERROR, WARN, Answer, Report, Tracker, TrackRequest, TrackUpdate
from .types import PersonPose, PoseResult

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
Size = tuple[int, int]  # (width, height) px
PipelineFactory = Callable[[PipelineConfig], PosePipeline]
TrackerFactory = Callable[[], Tracker]
OnPose = Callable[[PoseResult], None] | None
OnText = Callable[[str], None] | None

WORKER_POLL_S = 0.1  # how often a waiting call checks that the worker is alive
WORKER_STOP_S = 10.0  # how long close() waits for the worker to exit before killing it


# ---------------------------------------------------------------------- undecoded images
@dataclass(frozen=True)
class RawImage:
    """Raw pixels as in sensor_msgs/Image, not decoded. `data`: a buffer (bytes, memoryview)
    of at least `step * height` bytes, e.g. a memoryview into the serialised message."""

    data: Any
    width: int
    height: int
    encoding: str
    step: int
    is_bigendian: bool = False

    @property
    def nbytes(self) -> int:
        return memoryview(self.data).nbytes

    def decode(self, max_pixels: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB; InvalidImageError."""
        return decode_raw(self.data, self.width, self.height, self.encoding, self.step, self.is_bigendian, max_pixels)

    def meta(self) -> tuple:
        return ("raw", self.width, self.height, self.encoding, self.step, self.is_bigendian)


@dataclass(frozen=True)
class EncodedImage:
    """Compressed (JPEG/PNG) bytes, not decoded."""

    data: Any

    @property
    def nbytes(self) -> int:
        return memoryview(self.data).nbytes

    def decode(self, max_pixels: int) -> np.ndarray:
        return decode_compressed(self.data, max_pixels)

    def meta(self) -> tuple:
        return ("encoded",)


@dataclass(frozen=True)
class RgbImage:
    """An image already decoded: (H, W, 3) uint8 RGB."""

    rgb: np.ndarray

    @property
    def data(self) -> memoryview:
        return memoryview(np.ascontiguousarray(self.rgb)).cast("B")

    @property
    def nbytes(self) -> int:
        return self.rgb.nbytes

    def decode(self, max_pixels: int) -> np.ndarray:
        return validate_image(self.rgb, max_pixels)

    def meta(self) -> tuple:
        return ("rgb", self.rgb.shape[0], self.rgb.shape[1])


Image = RawImage | EncodedImage | RgbImage


def _rebuild(meta: tuple, buf: memoryview) -> Image:
    """The image record of `meta` over `buf` (in the worker)."""
    kind = meta[0]
    if kind == "raw":
        return RawImage(buf, *meta[1:])
    if kind == "encoded":
        return EncodedImage(buf)
    return RgbImage(np.ndarray((meta[1], meta[2], 3), np.uint8, buffer=buf))


def _size(rgb: np.ndarray) -> Size:
    return (int(rgb.shape[1]), int(rgb.shape[0]))


class ModelRunner(Protocol):
    """What the node needs to run the model, wherever it runs."""

    model_id: str

    def start(self) -> None:
        """Load the model (ModelLoadError / ChatPoseError when it cannot be loaded)."""
        ...

    def estimate(self, image: Image | None, query: str, on_pose: OnPose = None,
                 on_text: OnText = None) -> tuple[PoseResult, Size | None]:
        """Decode `image` and answer `query` about it; also returns the image size. `on_pose` /
        `on_text`: the pipeline's streaming callbacks, called in this thread before it returns."""
        ...

    def observe(self, image: Image, near: Box | None) -> tuple[list[PersonPose], Size]:
        """Decode `image` and find every person in it (near `near` when given)."""
        ...

    def track(self, image: Image, request: TrackRequest) -> tuple[TrackUpdate, Size]:
        """Decode `image`, (re)start the tracker when `request.seed` is set, observe and match."""
        ...

    def close(self) -> None:
        ...

    @property
    def alive(self) -> bool:
        """False when the model's process died (then `restart()` it)."""
        ...

    def restart(self) -> None:
        """Stop and start again (a new process, the model loaded anew)."""
        ...


class InProcessRunner:
    """The model in this process (tests, debugging): decode and call the pipeline here."""

    def __init__(self, factory: PipelineFactory, config: PipelineConfig, tracker_factory: TrackerFactory | None = None) -> None:
        self._factory, self._config = factory, config
        self.pipeline: PosePipeline | None = None
        self._tracking = TrackerHost(tracker_factory)
        self.model_id = ""

    alive = True  # lives and dies with this process

    def start(self) -> None:
        self.pipeline = self._factory(self._config)
        self.model_id = self.pipeline.model_id
        self._tracking.reset()

    def estimate(self, image: Image | None, query: str, on_pose: OnPose = None,
                 on_text: OnText = None) -> tuple[PoseResult, Size | None]:
        rgb = None if image is None else image.decode(self._config.max_image_pixels)
        # a callback's error is logged, as across the pipe: the answer goes on
        pose_cb = None if on_pose is None else (lambda result: _stream(on_pose, result))
        text_cb = None if on_text is None else (lambda delta: _stream(on_text, delta))
        return estimate_streaming(self.pipeline, rgb, query, pose_cb, text_cb), None if rgb is None else _size(rgb)

    def observe(self, image: Image, near: Box | None) -> tuple[list[PersonPose], Size]:
        rgb = image.decode(self._config.max_image_pixels)
        return list(self.pipeline.observe(rgb, near=near)), _size(rgb)

    def track(self, image: Image, request: TrackRequest) -> tuple[TrackUpdate, Size]:
        rgb = image.decode(self._config.max_image_pixels)
        return self._tracking.track(self.pipeline, rgb, request), _size(rgb)

    def close(self) -> None:
        pipeline, self.pipeline = self.pipeline, None
        if pipeline is not None:
            pipeline.close()

    def restart(self) -> None:
        self.close()
        self.start()


def _streams(pipeline: PosePipeline) -> bool:
    """Whether `pipeline.estimate` takes the streaming callbacks (a profile written before them,
    e.g. the chatpose profile, takes `(image, query)` only)."""
    try:
        params = inspect.signature(pipeline.estimate).parameters
    except (TypeError, ValueError):
        return False
    return {"on_pose", "on_text"} <= set(params) or any(p.kind is p.VAR_KEYWORD for p in params.values())


def estimate_streaming(pipeline: PosePipeline, rgb: np.ndarray | None, query: str, on_pose: OnPose,
                       on_text: OnText) -> PoseResult:
    """pipeline.estimate, with the streaming callbacks when there are any and it takes them."""
    if (on_pose is None and on_text is None) or not _streams(pipeline):
        return pipeline.estimate(rgb, query)
    return pipeline.estimate(rgb, query, on_pose=on_pose, on_text=on_text)


def timed_estimate(pipeline: PosePipeline, rgb: np.ndarray | None, query: str) -> tuple[PoseResult, float, float]:
    """One query, timed: (result, ms to the pose, ms to the whole answer). A streaming pipeline
    hands the pose out (on_pose) before its words; for one that does not, both times are equal."""
    posed: list[float] = []
    t0 = time.perf_counter()
    result = estimate_streaming(pipeline, rgb, query, lambda _r: posed.append(time.perf_counter()), None)
    t_end = time.perf_counter()
    return result, ((posed[0] if posed else t_end) - t0) * 1e3, (t_end - t0) * 1e3


class TrackerHost:
    """The tracker of the person chosen last, beside the model: serves TrackRequests (see the
    module docstring). `factory` makes the profile's tracker; None = nobody is ever followed."""

    def __init__(self, factory: TrackerFactory | None) -> None:
        self._factory = factory
        self._tracker: Tracker | None = None

    def reset(self) -> None:
        self._tracker = None

    def track(self, pipeline: PosePipeline, rgb: np.ndarray, request: TrackRequest) -> TrackUpdate:
        seed = request.seed
        if seed is not None and self._factory is not None:
            if not (request.keep and self._tracker is not None):
                self._tracker = self._factory()
            self._tracker.start(seed, track_id=seed.track_id)
        people = list(pipeline.observe(rgb, near=request.near))
        tracker = self._tracker
        if tracker is None:  # nothing to follow (e.g. a new worker after a crash): the track is lost
            return TrackUpdate(person=None, people=tuple(people) if request.everyone else (), lost=True, box=None)
        person = tracker.update(people)
        return TrackUpdate(person=person, people=tuple(people) if request.everyone else (), lost=bool(tracker.lost),
                           box=tracker.last_box)


# ---------------------------------------------------------------------- worker process
def _error_reply(exc: BaseException) -> tuple:
    if isinstance(exc, ChatPoseError):  # named by its nearest class in core.errors: re-raised with the same code
        cls = next(c for c in type(exc).__mro__ if getattr(errors, c.__name__, None) is c)
        return ("error", cls.__name__, str(exc))
    return ("error", "", f"{type(exc).__name__}: {exc}")


def _raise_reply(reply: tuple) -> None:
    """Raise the typed error a worker reported (InferenceError for anything unexpected)."""
    _, name, message = reply
    cls = getattr(errors, name, None) if name else None
    if not (isinstance(cls, type) and issubclass(cls, ChatPoseError)):
        cls = InferenceError
    raise cls(message)


def _attach(name: str) -> shared_memory.SharedMemory:
    # The spawned worker shares the node's resource tracker, which already knows the block (the
    # node created it and unlinks it): attaching registers the same name again, a no-op.
    return shared_memory.SharedMemory(name=name)


def _lower_priority(nice: int) -> None:
    """Make this (worker) process `nice` steps nicer, so the node's callbacks win the CPU."""
    if nice <= 0 or not hasattr(os, "nice"):
        return
    try:
        os.nice(nice)
    except OSError as exc:  # not allowed here: run at the node's priority
        log.warning("cannot lower the model worker's priority by %d: %s", nice, exc)


def worker_main(conn, factory: PipelineFactory, config: PipelineConfig, tracker_factory: TrackerFactory | None = None) -> None:
    """The worker process: load the model, then answer requests from `conn` until "close".

    Requests: ("estimate", shm name | None, image meta | None, nbytes, (query, stream)),
    ("observe", shm name, image meta, nbytes, near) and ("track", shm name, image meta, nbytes,
    TrackRequest); replies ("ok", value) or ("error", error class name, message), before them
    for a streamed estimate ("pose", PoseResult) and ("text", delta) as the pipeline calls back."""
    # Ctrl-C in a terminal reaches the whole process group: the node stops its worker itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lower_priority(config.worker_nice)
    try:
        pipeline = factory(config)
    except BaseException as exc:  # report why the model could not load, then exit
        conn.send(_error_reply(exc))
        return
    conn.send(("ok", pipeline.model_id))
    tracking = TrackerHost(tracker_factory)
    blocks: dict[str, shared_memory.SharedMemory] = {}
    try:
        while True:
            try:
                req = conn.recv()
            except EOFError:  # the node went away
                return
            if req[0] == "close":
                return
            op, name, meta, nbytes, arg = req
            image = rgb = None
            try:
                if name is not None:
                    if name not in blocks:  # the node grew its block: let go of the old one
                        _close_blocks(blocks)
                        blocks = {name: _attach(name)}
                    image = _rebuild(meta, blocks[name].buf[:nbytes])
                rgb = None if image is None else image.decode(config.max_image_pixels)
                if op == "estimate":
                    query, stream = arg
                    on_pose = (lambda result: conn.send(("pose", result))) if stream else None
                    on_text = (lambda delta: conn.send(("text", delta))) if stream else None
                    value = (estimate_streaming(pipeline, rgb, query, on_pose, on_text), None if rgb is None else _size(rgb))
                elif op == "track":
                    value = (tracking.track(pipeline, rgb, arg), _size(rgb))
                else:
                    value = (list(pipeline.observe(rgb, near=arg)), _size(rgb))
                conn.send(("ok", value))
            except Exception as exc:  # the worker outlives any error of one request
                conn.send(_error_reply(exc))
                _forget_frames(exc)
            finally:  # no view into the shared block outlives its request, failed or not
                image = rgb = None
    finally:
        _close_blocks(blocks)
        pipeline.close()


def _stream(callback: Callable | None, value: Any) -> None:
    """Run a streaming callback in the caller's process; what it raises is logged, not raised
    (the worker's further events and its reply must still be read)."""
    if callback is None:
        return
    try:
        callback(value)
    except Exception:
        log.exception("a streaming callback failed (the answer goes on)")


def _forget_frames(exc: BaseException) -> None:
    """Clear the locals of the finished frames that `exc` and the errors it chains passed through:
    the views into a shared block they hold go now (a re-raised error makes a reference cycle
    that only the garbage collector would break, after the block was to be closed)."""
    todo, seen = [exc], set()
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        traceback.clear_frames(e.__traceback__)
        todo += [e.__cause__, e.__context__]


def _close_blocks(blocks: dict[str, shared_memory.SharedMemory]) -> None:
    for shm in blocks.values():
        try:
            shm.close()
        except BufferError:  # a view still held somewhere in a reference cycle: collect it, then close
            gc.collect()
            shm.close()


class ProcessRunner:
    """The model in its own spawned process; frames handed over through shared memory.

    Args:
        factory: builds the pipeline in the worker; it must be picklable (a module-level
            function such as chatpose_ros.profiles.build_pipeline).
        config: the pipeline configuration (sent to the worker).
        tracker_factory: makes the profile's tracker in the worker (picklable, e.g.
            chatpose_ros.profiles.tracker_factory(name)); None: `track` finds nobody to follow.
        start_timeout_s: how long `start` waits for the model to load.
    """

    def __init__(self, factory: PipelineFactory, config: PipelineConfig, tracker_factory: TrackerFactory | None = None,
                 start_timeout_s: float = 600.0) -> None:
        self._factory, self._config, self._start_timeout = factory, config, start_timeout_s
        self._tracker_factory = tracker_factory
        self._ctx = multiprocessing.get_context("spawn")
        self._proc = None
        self._conn = None
        self._shm: shared_memory.SharedMemory | None = None
        self._lock = threading.Lock()  # one request at a time
        self.model_id = ""

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def alive(self) -> bool:
        """The worker process runs (False after a crash, until `restart`)."""
        return self._proc is not None and self._proc.is_alive()

    def start(self) -> None:
        """Spawn the worker and wait until the model is loaded (ModelLoadError or the typed
        error the worker reported)."""
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=worker_main, args=(child, self._factory, self._config, self._tracker_factory),
                                 name="chatpose_model_worker", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        try:
            reply = self._wait(self._start_timeout)
        except WorkerCrashedError as exc:
            self._stop()
            raise ModelLoadError(f"the model worker exited while loading the model ({exc})") from exc
        if reply[0] != "ok":
            self._stop()
            _raise_reply(reply)
        self.model_id = reply[1]
        log.info("model worker %d loaded %s", proc.pid, self.model_id)

    def restart(self) -> None:
        """Stop the worker (dead or alive) and start a new one."""
        self._stop()
        self.start()

    def _wait(self, timeout: float | None = None) -> tuple:
        waited = 0.0
        try:
            while not self._conn.poll(WORKER_POLL_S):
                waited += WORKER_POLL_S
                if not self._proc.is_alive():
                    raise WorkerCrashedError(f"model worker {self._proc.pid} died (exit code {self._proc.exitcode})")
                if timeout is not None and waited >= timeout:
                    raise WorkerCrashedError(f"model worker {self._proc.pid} did not answer within {timeout:.0f} s")
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            self._proc.join(WORKER_POLL_S)
            raise WorkerCrashedError(f"model worker {self._proc.pid} died (exit code {self._proc.exitcode})") from exc

    def _put(self, image: Image) -> tuple[str, int]:
        """Copy `image`'s bytes into the shared block (grown when too small): the one copy."""
        src = memoryview(image.data).cast("B")
        n = src.nbytes
        if self._shm is None or self._shm.size < n:
            self._free_shm()
            self._shm = shared_memory.SharedMemory(create=True, size=max(n, 1))
        self._shm.buf[:n] = src
        return self._shm.name, n

    def _call(self, op: str, image: Image | None, arg: Any, on_pose: OnPose = None, on_text: OnText = None) -> Any:
        if self._proc is None:
            raise WorkerCrashedError("the model worker is not running")
        with self._lock:
            name, n = (None, 0) if image is None else self._put(image)
            try:
                self._conn.send((op, name, None if image is None else image.meta(), n, arg))
            except (BrokenPipeError, OSError) as exc:
                raise WorkerCrashedError(f"model worker {self._proc.pid} is gone ({exc})") from exc
            while (reply := self._wait())[0] in ("pose", "text"):  # streamed events, then the reply
                _stream(on_pose if reply[0] == "pose" else on_text, reply[1])
        if reply[0] != "ok":
            _raise_reply(reply)
        return reply[1]

    def estimate(self, image: Image | None, query: str, on_pose: OnPose = None,
                 on_text: OnText = None) -> tuple[PoseResult, Size | None]:
        stream = on_pose is not None or on_text is not None
        return self._call("estimate", image, (query, stream), on_pose, on_text)

    def observe(self, image: Image, near: Box | None) -> tuple[list[PersonPose], Size]:
        return self._call("observe", image, near)

    def track(self, image: Image, request: TrackRequest) -> tuple[TrackUpdate, Size]:
        return self._call("track", image, request)

    def _free_shm(self) -> None:
        if self._shm is not None:
            self._shm.close()
            self._shm.unlink()
            self._shm = None

    def _stop(self) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is not None:
            try:
                if proc.is_alive():
                    conn.send(("close",))
            except (BrokenPipeError, OSError):
                pass
            proc.join(WORKER_STOP_S)
            if proc.is_alive():
                log.warning("model worker %d did not stop within %.0f s: killed", proc.pid, WORKER_STOP_S)
                proc.kill()
                proc.join(WORKER_STOP_S)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Stop the worker (the model is released with its process) and free the shared block."""
        with self._lock:
            self._stop()
            self._free_shm()


# ---------------------------------------------------------------------- the worker thread
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
                                             on_text=lambda d: self._emit(self.session.answer_text(work, d)))
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
