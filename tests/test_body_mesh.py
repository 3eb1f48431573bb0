"""core.body_mesh (which mesh, background loading, the switch-off rule) and core.logs.LogThrottle,
with injected time and a fake mesh backend: no Anny, no ROS."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from chatpose_ros.core.anny_mesh import drop_truncated_cache_files
from chatpose_ros.core.body_mesh import (MIN_TIMED_UPDATES, BodyMesh, mesh_slows_tracking, resolve_mode,
                                         tracking_interval_ms)
from chatpose_ros.core.errors import ConfigError, ModelLoadError
from chatpose_ros.core.logs import LogThrottle
from chatpose_ros.core.types import PoseResult
from tests.fakes import make_person

V = 7


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeBackend:
    """Ready after `polls_before_ready` polls; every mesh advances the clock by `mesh_ms`."""

    def __init__(self, clock: FakeClock, mesh_ms: float, polls_before_ready: int = 0, fail: bool = False) -> None:
        self.clock, self.mesh_ms, self.polls_left, self.fail = clock, mesh_ms, polls_before_ready, fail
        self.faces = np.array([[0, 1, 2], [2, 3, 4]], np.int32)
        self.meshed = []
        self.closed = False

    def ready(self) -> bool:
        if self.fail:
            raise ModelLoadError("cache not writable")
        if self.polls_left > 0:
            self.polls_left -= 1
            return False
        return True

    def mesh(self, theta):
        self.meshed.append(np.asarray(theta))
        self.clock.t += self.mesh_ms / 1000.0
        return np.full((V, 3), 0.5, np.float32)

    def close(self) -> None:
        self.closed = True


def _result(selected=1) -> PoseResult:
    people = (make_person(1, box=(0, 0, 10, 20)), make_person(2, box=(20, 0, 30, 20)))
    return PoseResult(query="q", answer="a", people=people, selected=selected)


def _mesh(clock, backend, mode="auto", smpl="", rate=15.0) -> BodyMesh:
    m = BodyMesh(mode, smpl, rate, backend_factory=lambda: backend, clock=clock)
    m.start()
    return m


def _track(m: BodyMesh, clock: FakeClock, n: int, camera_period_ms: float, track_ms: float, seq0: int = 1):
    """n tracking updates of frames arriving every camera_period_ms (one update per frame)."""
    reports = []
    for i in range(n):
        res, reps = m.dress(_result(0), seq0 + i, clock.t, track_ms)
        reports += reps
        clock.t += camera_period_ms / 1000.0
    return res, reports


def test_modes():
    assert resolve_mode("auto", "") == "anny"
    assert resolve_mode("auto", "/x/SMPL_NEUTRAL.pkl") == "smpl"
    assert resolve_mode("anny", "/x/SMPL_NEUTRAL.pkl") == "anny"
    assert resolve_mode("off", "") == "off"
    with pytest.raises(ConfigError):
        resolve_mode("smplx", "")


def test_rule_compares_tracking_plus_mesh_with_the_interval_between_updates():
    assert tracking_interval_ms(33.3, 15.0) == pytest.approx(66.7, abs=0.1)  # rate limit slower than the camera
    assert tracking_interval_ms(200.0, 15.0) == 200.0  # 5 Hz camera
    assert not mesh_slows_tracking(mesh_ms=10.0, track_ms=40.0, camera_period_ms=33.3, tracking_rate_hz=15.0)
    assert mesh_slows_tracking(mesh_ms=30.0, track_ms=40.0, camera_period_ms=33.3, tracking_rate_hz=15.0)
    assert not mesh_slows_tracking(mesh_ms=30.0, track_ms=40.0, camera_period_ms=100.0, tracking_rate_hz=15.0)
    # computed beside the next update (another thread): only the mesh's own time counts
    assert not mesh_slows_tracking(mesh_ms=30.0, track_ms=40.0, camera_period_ms=33.3, tracking_rate_hz=15.0,
                                   overlapped=True)
    assert mesh_slows_tracking(mesh_ms=70.0, track_ms=10.0, camera_period_ms=33.3, tracking_rate_hz=15.0,
                               overlapped=True)


def test_anny_mesh_goes_on_the_selected_person_once_loaded_without_waiting():
    clock = FakeClock()
    backend = FakeBackend(clock, mesh_ms=5.0, polls_before_ready=2)
    m = _mesh(clock, backend)
    assert m.state == "loading"
    for _ in range(2):  # still loading: results pass unchanged, nothing waits
        res, reps = m.dress(_result())
        assert reps == [] and all(p.vertices is None for p in res.people)
    res, reps = m.dress(_result())
    assert [r.code for r in reps] == ["mesh_ready", "mesh_timing"]
    assert "5.0 ms per frame" in reps[1].message
    assert res.people[1].vertices.shape == (V, 3) and res.people[1].faces is backend.faces
    assert res.people[0].vertices is None, "only the chosen person"
    np.testing.assert_array_equal(backend.meshed[0], _result().people[1].theta)
    _, reps = m.dress(_result())
    assert reps == [], "time per frame reported once"
    assert m.snapshot() == {"mesh_body": "anny: on", "mesh_ms_per_frame": "5.0"}


def test_mesh_switched_off_when_it_would_slow_tracking_below_the_camera_rate():
    clock = FakeClock()
    backend = FakeBackend(clock, mesh_ms=30.0)
    m = _mesh(clock, backend)
    # 30 Hz camera, tracking 40 ms: 40 + 30 > 66.7 ms between updates at tracking_rate_hz 15
    res, reports = _track(m, clock, MIN_TIMED_UPDATES, camera_period_ms=1000 / 30, track_ms=40.0)
    off = [r for r in reports if r.code == "mesh_off"]
    assert len(off) == 1 and "switched off" in off[0].message and m.state.startswith("switched off")
    assert backend.closed
    res, reports = _track(m, clock, 3, camera_period_ms=1000 / 30, track_ms=40.0, seq0=100)
    assert reports == [] and res.people[0].vertices is None, "stays off: no more meshes, no more reports"


def test_mesh_stays_on_when_it_fits():
    clock = FakeClock()
    backend = FakeBackend(clock, mesh_ms=10.0)
    m = _mesh(clock, backend)
    res, reports = _track(m, clock, 3 * MIN_TIMED_UPDATES, camera_period_ms=1000 / 30, track_ms=40.0)
    assert "mesh_off" not in [r.code for r in reports] and m.state == "on"
    assert res.people[0].vertices is not None
    # the camera period comes from frame numbers: with every 3rd frame of a 30 Hz camera tracked
    # (no rate limit to speak of), 20 + 20 ms per update is more than the camera's 33 ms
    clock2 = FakeClock()
    m2 = _mesh(clock2, FakeBackend(clock2, mesh_ms=20.0), rate=1000.0)
    codes = []
    for i in range(MIN_TIMED_UPDATES):
        t = clock2.t
        codes += [r.code for r in m2.dress(_result(0), 1 + 3 * i, t, 20.0)[1]]
        clock2.t = t + 0.1
    assert "mesh_off" in codes and "camera period 33.3 ms" in m2.last_off_message


def test_answers_are_not_timed():
    clock = FakeClock()
    m = _mesh(clock, FakeBackend(clock, mesh_ms=500.0))
    for i in range(3 * MIN_TIMED_UPDATES):
        _, reps = m.dress(_result(), i + 1, clock.t, None)
        clock.t += 0.033
        assert "mesh_off" not in [r.code for r in reps]


def test_load_failure_is_reported_once_and_the_node_keeps_going():
    clock = FakeClock()
    m = _mesh(clock, FakeBackend(clock, 1.0, fail=True))
    res, reps = m.dress(_result())
    assert [r.code for r in reps] == ["mesh_unavailable"] and "cache not writable" in reps[0].message
    res, reps = m.dress(_result())
    assert reps == [] and res.people[1].vertices is None and m.state.startswith("failed")


def test_smpl_and_off_modes():
    clock = FakeClock()
    started = []
    person = make_person(3, box=(0, 0, 5, 5))
    import dataclasses
    with_mesh = dataclasses.replace(person, vertices=np.zeros((6890, 3), np.float32), faces=np.zeros((3, 3), np.int64))
    result = PoseResult(query="q", answer="a", people=(with_mesh,), selected=0)
    smpl = BodyMesh("auto", "/x/SMPL_NEUTRAL.pkl", 15.0, backend_factory=lambda: started.append(1), clock=clock)
    smpl.start()
    assert smpl.dress(result)[0] is result and started == [], "the pipeline's SMPL mesh, no Anny process"
    off = BodyMesh("off", "/x/SMPL_NEUTRAL.pkl", 15.0, backend_factory=lambda: started.append(1), clock=clock)
    off.start()
    res, _ = off.dress(result)
    assert res.people[0].vertices is None and res.people[0].faces is None and started == []
    assert off.snapshot()["mesh_body"] == "off"


def test_truncated_anny_cache_files_are_dropped(tmp_path):
    d = tmp_path / "v14"
    d.mkdir()
    header = json.dumps({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    whole = struct.pack("<Q", len(header)) + header + bytes(16)
    (d / "a.safetensors").write_bytes(whole)
    (d / "b.safetensors").write_bytes(whole[:-5])  # a build killed while writing
    (d / "c.safetensors").write_bytes(b"\x01")
    dropped = drop_truncated_cache_files(tmp_path)
    assert sorted(p.name for p in dropped) == ["b.safetensors", "c.safetensors"]
    assert sorted(p.name for p in d.iterdir()) == ["a.safetensors"]


def test_log_throttle_logs_once_then_every_period():
    clock = FakeClock()
    lt = LogThrottle(30.0, clock=clock)
    assert lt.admit("no_camera_info") == 0
    for _ in range(29):
        clock.t += 1.0
        assert lt.admit("no_camera_info") is None
    assert lt.admit("other") == 0, "per kind"
    clock.t += 1.0
    assert lt.admit("no_camera_info") == 29, "then once per period, with the count not logged"
    assert lt.admit("no_camera_info") is None
