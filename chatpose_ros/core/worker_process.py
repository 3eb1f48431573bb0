"""The model in a worker process of its own (ROS-free): `ProcessRunner` and the worker's side of
the protocol (`worker_main`).

    runner = ProcessRunner(build_pipeline, PipelineConfig(), make_tracker)   # or InProcessRunner(...)
    runner.start()                                   # spawns the worker and loads the model (ModelLoadError)
    result, size = runner.estimate(RawImage(...), "the person on the left", on_pose=..., on_text=...)
    update, size = runner.track(RawImage(...), TrackRequest(near=box, seed=person))
    people, size = runner.observe(RawImage(...), near=box)
    runner.close()

Images travel *undecoded* (core.images) and are decoded by the worker, i.e. only for the frames
the model is given. The runner copies the bytes once, into a shared memory block
(multiprocessing.shared_memory); the worker decodes them there, so neither the decode nor the
model holds the node's GIL. Results come back pickled over a pipe (a few kB). A streamed
estimate sends each callback over the pipe as it happens and the callback runs in the caller's
thread, before `estimate` returns.

If the worker dies, the call raises WorkerCrashedError; `restart()` spawns and loads a new one.
The worker is started with the "spawn" method (no fork of a process running DDS threads).
"""
from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import threading
import traceback
from multiprocessing import shared_memory
from typing import Any

from . import errors
from .config import PipelineConfig
from .errors import ChatPoseError, InferenceError, ModelLoadError, WorkerCrashedError
from .images import Image, Size, image_size, rebuild_image
from .model_runners import (Box, OnPose, OnText, PipelineFactory, TrackerFactory, TrackerHost, estimate_streaming,
                            run_callback)
from .session import TrackRequest, TrackUpdate
from .types import PersonPose, PoseResult

log = logging.getLogger(__name__)

WORKER_POLL_S = 0.1  # how often a waiting call checks that the worker is alive
WORKER_STOP_S = 10.0  # how long close() waits for the worker to exit before killing it


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

    Requests: ("estimate", shm name | None, image meta | None, nbytes, (query, stream, conversation)),
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
    conn.send(("ok", pipeline.model_id, str(getattr(pipeline, "runtime", ""))))
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
                    image = rebuild_image(meta, blocks[name].buf[:nbytes])
                rgb = None if image is None else image.decode(config.max_image_pixels)
                if op == "estimate":
                    query, stream, conversation = arg
                    on_pose = (lambda result: conn.send(("pose", result))) if stream else None
                    on_text = (lambda delta: conn.send(("text", delta))) if stream else None
                    value = (estimate_streaming(pipeline, rgb, query, on_pose, on_text, conversation, tracking.gestures),
                             None if rgb is None else image_size(rgb))
                elif op == "track":
                    value = (tracking.track(pipeline, rgb, arg), image_size(rgb))
                else:
                    value = (list(pipeline.observe(rgb, near=arg)), image_size(rgb))
                conn.send(("ok", value))
            except Exception as exc:  # the worker outlives any error of one request
                conn.send(_error_reply(exc))
                _forget_frames(exc)
            finally:  # no view into the shared block outlives its request, failed or not
                image = rgb = None
    finally:
        _close_blocks(blocks)
        pipeline.close()


def _forget_frames(exc: BaseException) -> None:
    """Clear the locals of the finished frames that `exc` and the errors it chains passed through:
    the views into a shared block they hold go now, not when the error is (a pipeline may keep its
    last error; a re-raised one makes a reference cycle that only the garbage collector breaks)."""
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
        self.runtime = ""

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
        self.runtime = reply[2] if len(reply) > 2 else ""
        log.info("model worker %d loaded %s (%s)", proc.pid, self.model_id, self.runtime or "runtime not reported")

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
                run_callback(on_pose if reply[0] == "pose" else on_text, reply[1])
        if reply[0] != "ok":
            _raise_reply(reply)
        return reply[1]

    def estimate(self, image: Image | None, query: str, on_pose: OnPose = None,
                 on_text: OnText = None, conversation: str = "") -> tuple[PoseResult, Size | None]:
        stream = on_pose is not None or on_text is not None
        return self._call("estimate", image, (query, stream, conversation), on_pose, on_text)

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
