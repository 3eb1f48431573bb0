"""The Anny body mesh off the pose path: a thread of its own dresses the newest result and
publishes the mesh marker when the mesh process answers.

The node publishes poses and skeleton markers at once and hands each result here (`submit`);
while a mesh is in flight, newer results replace the waiting one (updates in between get no
mesh: the newest one is dressed next), so a mesh round trip never delays pose publishing. Tracking
updates are dressed at most `mesh_rate_hz` times a second (answers always). The mesh marker
(namespace chatpose/mesh, id of the person, as markers.person_markers draws it) replaces the
previous one in RViz.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from std_msgs.msg import Header

from chatpose_ros.core.body_mesh import BodyMesh
from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.session import Output, RateLimit

from . import markers


class MeshMarkers:
    """Dresses results with `mesh` in a thread; `publish(bytes)` gets the mesh markers (a
    serialised visualization_msgs/MarkerArray), `emit(reports)` the mesh's reports.
    `start()` / `close()` the thread."""

    def __init__(self, mesh: BodyMesh, cfg: NodeConfig, publish: Callable[[bytes], None],
                 emit: Callable[[list], None], on_error: Callable[[Exception], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.mesh, self.cfg = mesh, cfg
        self._rate = RateLimit(cfg.mesh_rate_hz, clock)  # tracking updates dressed (answers always)
        self._publish, self._emit, self._on_error = publish, emit, on_error
        self._cond = threading.Condition()
        self._pending: tuple | None = None  # (output, header, track_ms) waiting for the thread
        self._stop = False
        self._thread: threading.Thread | None = None
        self.skipped = 0  # results replaced while a mesh was in flight or the rate limit held them

    def start(self) -> None:
        with self._cond:
            self._stop = False
        self._thread = threading.Thread(target=self._loop, name="chatpose_mesh", daemon=True)
        self._thread.start()

    def submit(self, out: Output, header: Header, track_ms: float | None) -> None:
        """Dress `out` (the newest result; `track_ms` for tracking updates, None for answers) soon."""
        with self._cond:
            if self._pending is not None:
                self.skipped += 1
            self._pending = (out, header, track_ms)
            self._cond.notify()

    def close(self, timeout: float) -> None:
        """Stop the thread after the mesh in flight (the waiting result is dropped)."""
        with self._cond:
            self._stop, self._pending = True, None
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._stop:
                        return
                    if self._pending is None:
                        self._cond.wait()
                        continue
                    hold = 0.0 if self._pending[0].answer else self._rate.wait()
                    if hold <= 0:
                        break
                    # a newer result or an answer may come meanwhile (an injected clock: re-checked then)
                    self._cond.wait(None if hold == float("inf") else hold)
                (out, header, track_ms), self._pending = self._pending, None
            if not out.answer:
                self._rate.mark()
            try:
                self._dress(out, header, track_ms)
            except Exception as exc:  # the mesh thread outlives any bug in a conversion
                self._on_error(exc)

    def _dress(self, out: Output, header: Header, track_ms: float | None) -> None:
        frame = out.frame
        result, reports = self.mesh.dress(out.result, frame.seq if frame else None, frame.received if frame else None,
                                          None if out.answer else track_ms)
        self._emit(reports)
        i, person = result.selected, result.selected_person
        mesh = None if person is None else markers.mesh_marker(person, i, header, self.cfg.marker_lifetime_s,
                                                                self.cfg.default_depth_m)
        if mesh is not None:  # serialised by numpy: thousands of Point objects cost tens of ms
            self._publish(markers.serialize_markers([mesh[0]], {0: mesh[1]}))
