"""Which body mesh the node draws for the chosen person, and when it stops drawing it (ROS-free).

    mesh = BodyMesh("auto", smpl_model_path="", tracking_rate_hz=15.0)
    mesh.start()                                   # Anny starts loading in a process of its own
    result, reports = mesh.dress(result, frame_seq, frame_time, track_ms)   # per published result
    mesh.snapshot()                                # values for /diagnostics
    mesh.close()

Modes (NodeConfig.mesh_body): ``smpl`` = the mesh the pipeline gives from the user's SMPL file
(``model.smpl_model_path``), nothing added; ``anny`` = the Anny body (no SMPL licence, see
core.anny_mesh) posed with the chosen person's theta; ``auto`` = ``smpl`` when a SMPL file is set,
else ``anny``; ``off`` = no mesh (any mesh the pipeline gave is dropped).

Anny never delays the node: it loads in a spawned process (``AnnyProcess``; the first build
takes minutes and writes about 0.55 GB under ~/.cache/chatpose_ros/anny, later loads seconds)
while the node answers without a mesh; ``dress`` only polls whether it is ready. Once ready, the
selected person of every result (answers and tracking updates) gets the mesh: theta goes to the
process (one torch thread), vertices come back (about 2,000 x 3 floats).

Switch-off rule (``mesh_slows_tracking``): tracking runs one update per frame at most, and at
most ``tracking_rate_hz``: one update every max(camera period, 1 / tracking_rate_hz). A mesh
computed after each update by the same thread slows tracking when the update and the mesh together
take longer than that interval; one computed by another thread while the next update runs
(``overlapped``, the node's mesh thread, ros/mesh_markers.py) when the mesh alone does. After MIN_TIMED_UPDATES
timed tracking updates, with the medians of the last TIMING_WINDOW (mesh time, tracking time and
the camera period measured from the frames' arrival times and numbers), the mesh is switched off for good (until the node is
configured again) with one report ``mesh_off``. Answers to queries are not timed (they take far
longer than a mesh; their mesh is always drawn while the mesh is on).
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import multiprocessing
import signal
import statistics
import threading
import time
from typing import Callable, Protocol

import numpy as np

from .errors import ConfigError, ModelLoadError, WorkerCrashedError
from .session import ERROR, OK, WARN, Report
from .types import PoseResult

log = logging.getLogger(__name__)

MESH_MODES = ("auto", "smpl", "anny", "off")
TIMING_WINDOW = 10  # recent mesh / tracking times and camera periods whose medians the rule compares
MIN_TIMED_UPDATES = 5  # timed tracking updates before the rule is applied
MESH_PROCESS_THREADS = 1  # torch threads of the mesh process: a 2,000-vertex mesh needs no more
MESH_REPLY_TIMEOUT_S = 30.0  # a mesh process that does not answer a frame within this is taken for dead
POLL_S = 0.1  # how often a wait for the mesh process checks that it lives
MESH_STOP_S = 5.0  # how long close() waits for a ready mesh process to exit before killing it
BENCH_WARMUP = 10  # untimed frames of main()


def resolve_mode(mode: str, smpl_model_path: str) -> str:
    """NodeConfig.mesh_body -> "smpl", "anny" or "off" (ConfigError for an unknown mode)."""
    if mode not in MESH_MODES:
        raise ConfigError(f"mesh_body={mode!r}: expected one of {MESH_MODES}")
    if mode == "auto":
        return "smpl" if smpl_model_path else "anny"
    return mode


def tracking_interval_ms(camera_period_ms: float, tracking_rate_hz: float) -> float:
    """Interval between tracking updates the camera and the rate limit allow (ms)."""
    return max(camera_period_ms, 1000.0 / tracking_rate_hz)


def mesh_slows_tracking(mesh_ms: float, track_ms: float, camera_period_ms: float, tracking_rate_hz: float,
                        overlapped: bool = False) -> bool:
    """True when the mesh makes tracking updates come further apart than the interval the camera
    and the rate limit allow (see `tracking_interval_ms`): in series (the mesh computed after each
    update by the same thread) when `track_ms + mesh_ms` exceeds it; `overlapped` (the mesh
    computed by another thread while the next update runs) when `mesh_ms` alone does."""
    busy = mesh_ms if overlapped else track_ms + mesh_ms
    return busy > tracking_interval_ms(camera_period_ms, tracking_rate_hz)


class MeshBackend(Protocol):
    """A posable body mesh that loads in the background."""

    def ready(self) -> bool:
        """True once loaded (never blocks); ModelLoadError when loading failed."""
        ...

    @property
    def faces(self) -> np.ndarray:
        """(F, 3) int32 triangles (valid once ready)."""
        ...

    def mesh(self, theta: np.ndarray) -> np.ndarray:
        """(72,) SMPL axis-angle theta -> (V, 3) float32 vertices (m, pelvis-relative, camera optical frame)."""
        ...

    def close(self) -> None:
        ...


def _anny_worker(conn, cache_dir: str | None) -> None:
    """The mesh process: build Anny, then answer theta -> vertices until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the node stops this process itself
    import torch

    torch.set_num_threads(MESH_PROCESS_THREADS)
    from .anny_mesh import AnnyBody

    try:
        body = AnnyBody(cache_dir)
    except BaseException as exc:  # report why, then exit
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", body.faces, body.load_seconds))
    while True:
        try:
            theta = conn.recv()
        except EOFError:
            return
        if theta is None:
            return
        try:
            conn.send(("ok", body.mesh(theta).vertices))
        except Exception as exc:  # one bad pose does not end the process
            conn.send(("error", f"{type(exc).__name__}: {exc}"))


class AnnyProcess:
    """The Anny body in a spawned process: loading never holds the node's interpreter, and a mesh
    is one round trip over a pipe. `cache_dir`: see core.anny_mesh.AnnyBody."""

    def __init__(self, cache_dir: str | None = None) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_anny_worker, args=(child, cache_dir), name="chatpose_anny_mesh", daemon=True)
        self._proc.start()
        child.close()
        self._faces: np.ndarray | None = None
        self.load_seconds: float | None = None

    @property
    def faces(self) -> np.ndarray:
        return self._faces

    def ready(self) -> bool:
        if self._faces is not None:
            return True
        try:
            if not self._conn.poll():
                if not self._proc.is_alive():
                    raise ModelLoadError(f"the Anny mesh process exited while loading (exit code {self._proc.exitcode})")
                return False
            reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise ModelLoadError(f"the Anny mesh process died while loading ({exc})") from exc
        if reply[0] != "ready":
            raise ModelLoadError(f"cannot load the Anny body: {reply[1]}")
        self._faces, self.load_seconds = reply[1], float(reply[2])
        return True

    def mesh(self, theta: np.ndarray) -> np.ndarray:
        try:
            self._conn.send(np.asarray(theta, np.float32))
            waited = 0.0
            while not self._conn.poll(POLL_S):
                waited += POLL_S
                if not self._proc.is_alive() or waited >= MESH_REPLY_TIMEOUT_S:
                    raise WorkerCrashedError("the Anny mesh process died or stopped answering")
            reply = self._conn.recv()
        except (EOFError, OSError) as exc:
            raise WorkerCrashedError(f"the Anny mesh process died ({exc})") from exc
        if reply[0] != "ok":
            raise ValueError(reply[1])
        return reply[1]

    def close(self) -> None:
        """Stop the process: asked when it is ready, at once while it is still loading (a cache
        file it was writing is then found truncated and rebuilt by the next load)."""
        try:
            if self._proc.is_alive() and self._faces is not None:
                self._conn.send(None)
                self._proc.join(timeout=MESH_STOP_S)
        except (BrokenPipeError, OSError):
            pass
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=MESH_STOP_S)
        self._conn.close()


class BodyMesh:
    """See the module docstring.

    Args:
        mode: NodeConfig.mesh_body ("auto", "smpl", "anny", "off").
        smpl_model_path: PipelineConfig.smpl_model_path ("" = none).
        tracking_rate_hz: NodeConfig.tracking_rate_hz (the rule's rate limit).
        backend_factory: makes the Anny backend (default AnnyProcess; tests inject a fake).
        clock: monotonic seconds, times the mesh (injected in tests).
        overlapped: the mesh is computed while the next tracking update runs (a publisher thread
            of its own) rather than after it in the same thread: see `mesh_slows_tracking`.
    """

    def __init__(self, mode: str, smpl_model_path: str, tracking_rate_hz: float,
                 backend_factory: Callable[[], MeshBackend] = AnnyProcess, clock: Callable[[], float] = time.monotonic,
                 overlapped: bool = False) -> None:
        self.mode = resolve_mode(mode, smpl_model_path)
        self.overlapped = bool(overlapped)
        self.tracking_rate_hz = float(tracking_rate_hz)
        self._factory, self._clock = backend_factory, clock
        self._backend: MeshBackend | None = None
        self.state = {"smpl": "smpl file", "off": "off", "anny": "not started"}[self.mode]
        self._mesh_ms: collections.deque[float] = collections.deque(maxlen=TIMING_WINDOW)
        self._track_ms: collections.deque[float] = collections.deque(maxlen=TIMING_WINDOW)
        self._periods_ms: collections.deque[float] = collections.deque(maxlen=TIMING_WINDOW)
        self._last_frame: tuple[int, float] | None = None
        self._timed = 0
        self._started = 0.0
        self.last_off_message = ""  # why the mesh was switched off ("" while it is not)
        self._lock = threading.RLock()  # dress (worker thread) and poll (diagnostics timer) share the backend

    def start(self) -> None:
        """Start loading Anny (mode anny); returns at once."""
        if self.mode == "anny" and self._backend is None:
            self._started = self._clock()
            self._backend = self._factory()
            self.state = "loading"

    def close(self) -> None:
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            backend.close()

    @property
    def drawing(self) -> bool:
        return self.state == "on"

    def poll(self) -> list[Report]:
        """Move loading -> on (or failed) when the backend is ready; never blocks (call it
        periodically, e.g. with /diagnostics, so readiness is reported without traffic)."""
        with self._lock:
            return self._poll()

    def _poll(self) -> list[Report]:
        if self.state != "loading":
            return []
        try:
            if not self._backend.ready():
                return []
        except ModelLoadError as exc:
            self.state = f"failed: {exc}"
            self.close()
            return [Report(ERROR, "mesh_unavailable", f"no body mesh: {exc}")]
        self.state = "on"
        return [Report(OK, "mesh_ready", f"Anny body mesh (no SMPL licence) loaded after "
                                           f"{self._clock() - self._started:.1f} s; drawing it for the chosen person")]

    def dress(self, result: PoseResult, frame_seq: int | None = None, frame_time: float | None = None,
              track_ms: float | None = None) -> tuple[PoseResult, list[Report]]:
        """`result` with the mesh on its selected person (mode anny, once loaded), and reports.

        `frame_seq`, `frame_time`: the frame's arrival number and time (s) (None: text-only);
        `track_ms`: how long the tracking update that made `result` took (None for answers):
        tracking updates are timed against the camera period (see the module docstring)."""
        if self.mode == "off":
            people = tuple(dataclasses.replace(p, vertices=None, faces=None) if p.vertices is not None else p
                           for p in result.people)
            return dataclasses.replace(result, people=people), []
        if self.mode == "smpl":
            return result, []
        with self._lock:
            return self._dress(result, frame_seq, frame_time, track_ms)

    def _dress(self, result: PoseResult, frame_seq: int | None, frame_time: float | None,
               track_ms: float | None) -> tuple[PoseResult, list[Report]]:
        reports = self._poll()
        person = result.selected_person
        if self.state != "on" or person is None:
            return result, reports
        t0 = self._clock()
        try:
            vertices = self._backend.mesh(person.theta)
        except (WorkerCrashedError, ValueError) as exc:
            self.state = f"failed: {exc}"
            self.close()
            return result, reports + [Report(ERROR, "mesh_unavailable", f"body mesh stopped: {exc}")]
        mesh_ms = (self._clock() - t0) * 1000.0
        if not self._mesh_ms:
            reports.append(Report(OK, "mesh_timing", f"Anny body mesh: {mesh_ms:.1f} ms per frame "
                                                     f"({len(vertices)} vertices, {len(self._backend.faces)} faces)"))
        self._mesh_ms.append(mesh_ms)
        people = list(result.people)
        people[result.selected] = dataclasses.replace(person, vertices=vertices, faces=self._backend.faces)
        result = dataclasses.replace(result, people=tuple(people))
        if track_ms is not None and frame_seq is not None and frame_time is not None:
            reports += self._time_tracking(mesh_ms, track_ms, frame_seq, frame_time)
        return result, reports

    def _time_tracking(self, mesh_ms: float, track_ms: float, seq: int, t: float) -> list[Report]:
        last, self._last_frame = self._last_frame, (seq, t)
        if last is not None and seq > last[0] and t > last[1]:
            self._periods_ms.append((t - last[1]) * 1000.0 / (seq - last[0]))
        self._track_ms.append(track_ms)
        self._timed += 1
        if self._timed < MIN_TIMED_UPDATES or not self._periods_ms:
            return []
        mesh, track, period = (statistics.median(d) for d in (self._mesh_ms, self._track_ms, self._periods_ms))
        if not mesh_slows_tracking(mesh, track, period, self.tracking_rate_hz, self.overlapped):
            return []
        self.state = "switched off (too slow)"
        self.close()
        interval = tracking_interval_ms(period, self.tracking_rate_hz)
        busy = f"mesh {mesh:.1f} ms" if self.overlapped else f"tracking {track:.1f} ms + mesh {mesh:.1f} ms"
        self.last_off_message = (f"body mesh switched off: {busy} per update > {interval:.1f} ms between updates "
                                 f"(camera period {period:.1f} ms, tracking_rate_hz {self.tracking_rate_hz:g}); "
                                 "set mesh_body:=off to skip it")
        return [Report(WARN, "mesh_off", self.last_off_message)]

    def snapshot(self) -> dict[str, str]:
        """Values for /diagnostics: mesh_body (state), mesh_ms_per_frame (median of the recent frames)."""
        with self._lock:
            return {"mesh_body": f"{self.mode}: {self.state}" if self.mode == "anny" else self.state,
                    "mesh_ms_per_frame": f"{statistics.median(self._mesh_ms):.1f}" if self._mesh_ms else ""}


def main(argv: list[str] | None = None) -> None:
    """``python -m chatpose_ros.core.body_mesh [--frames N]``: the Anny mesh as the node gets it
    (AnnyProcess): time until ready, and round trip per frame (theta -> vertices), median and p90."""
    import argparse

    ap = argparse.ArgumentParser(description="Anny mesh round trip per frame through its process")
    ap.add_argument("--frames", type=int, default=50)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    t0 = time.monotonic()
    proc = AnnyProcess()
    try:
        while not proc.ready():
            time.sleep(POLL_S)
        log.info("Anny process ready after %.1f s (Anny load %.1f s)", time.monotonic() - t0, proc.load_seconds)
        rng = np.random.default_rng(0)
        times = []
        for i in range(BENCH_WARMUP + max(1, args.frames)):
            theta = rng.normal(0.0, 0.3, 72).astype(np.float32)
            t = time.perf_counter()
            vertices = proc.mesh(theta)
            if i >= BENCH_WARMUP:
                times.append(1000.0 * (time.perf_counter() - t))
        log.info("%d vertices, %d faces: %.1f ms per frame median, p90 %.1f ms (%d frames)", len(vertices), len(proc.faces),
                 np.median(times), np.percentile(times, 90), len(times))
    finally:
        proc.close()


if __name__ == "__main__":
    main()
