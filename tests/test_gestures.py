"""Gestures over time (chatpose_ros.core.gestures) on synthetic sequences with known timing and on
real motion capture, and where the node reads them (the tracker beside the model)."""
from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from chatpose_ros.core.gestures import (Gesture, GestureConfig, GestureRecogniser, Target, gesture_flags, pointed_at,
                                       swing_extremes)
from chatpose_ros.core.model_runners import TrackerHost, estimate_streaming
from chatpose_ros.core.session import TrackRequest
from chatpose_ros.core.types import PoseResult
from chatpose_ros.models.default.offline.mocap import BVH_DIR
from chatpose_ros.tools import eval_gestures as ev

BASE = {"wave_hz": 2.0, "wave_amp_deg": 30.0, "rate_hz": 15.0, "jitter": 0.4, "kp_drop": 0.0, "frame_drop": 0.0,
        "noise_px": 2.0, "joint_noise_m": 0.01, "yaw_deg": 0.0, "distance_m": 3.0, "hold_s": 2.0, "brief_s": 0.2,
        "gesture_hz": 1.5, "sweep_deg_s": 120.0}


def _scenario(kind: str, side: str = "right", start: float = 1.0, dur: float = 3.0, seed: int = 0, **p) -> ev.Scenario:
    params = {**BASE, **p}
    objects = ()
    if kind in ("point", "point_brief"):
        params.setdefault("point_az", -20.0)
        params.setdefault("point_el", 90.0)
        objects = ev._objects(np.random.default_rng(seed), params, side)
    return ev.Scenario(kind, side, params, seed=seed, start=start, end=start + dur, total=start + dur + 1.5, objects=objects)


def _run(sc: ev.Scenario, config: GestureConfig | None = None):
    """[(t, gestures of the scenario's side)] for every observation."""
    rng = np.random.default_rng(sc.seed)
    rec = GestureRecogniser(config)
    out = []
    for t in ev.frame_times(sc, rng):
        (p,) = rec.observe(t, [ev.person_at(sc, t, rng)])
        out.append((t, {g.name: g for g in p.gestures if g.side == sc.side}))
    return out


def _first(seq, name):
    return next((t for t, g in seq if name in g), None)


@pytest.mark.parametrize("hz", [1.0, 2.0, 3.0])
def test_waving_found_at_1_to_3_hz_with_uneven_frame_times(hz):
    sc = _scenario("wave", wave_hz=hz, rate_hz=15.0, jitter=0.4)
    seq = _run(sc)
    t0 = _first(seq, "waving")
    assert t0 is not None and sc.start < t0 < sc.start + 1.5 / hz + 0.8, t0  # about 1.5 cycles after it began
    during = [g["waving"] for t, g in seq if "waving" in g and t < sc.end]
    assert during and abs(np.median([g.frequency_hz for g in during]) - hz) < 0.25 * hz
    assert during[-1].start <= t0 and during[-1].duration > 1.0  # the start is kept while it goes on
    assert all("waving" not in g for t, g in seq if t > sc.end + 1.0), "it stops once the hand is down"
    assert all("pointing" not in g for _, g in seq)


def test_waving_survives_dropped_keypoints_and_frames():
    sc = _scenario("wave", wave_hz=1.5, kp_drop=0.2, frame_drop=0.1, seed=3)
    assert _first(_run(sc), "waving") is not None


def test_times_not_frame_counts():
    """The same wave seen at 10 Hz and at 30 Hz: found at about the same time, same frequency."""
    found = {}
    for rate in (10.0, 30.0):
        seq = _run(_scenario("wave", wave_hz=1.5, rate_hz=rate, jitter=0.0, noise_px=0.5))
        t0 = _first(seq, "waving")
        found[rate] = (t0, np.median([g["waving"].frequency_hz for _, g in seq if "waving" in g]))
    assert abs(found[10.0][0] - found[30.0][0]) < 0.25 and abs(found[10.0][1] - found[30.0][1]) < 0.15


@pytest.mark.parametrize("kind", ["walk_swing", "chest_gesture", "low_wave", "scratch_head", "idle", "point_sweep"])
def test_no_waving_without_a_wave(kind):
    assert _first(_run(_scenario(kind, wave_hz=2.0, gesture_hz=2.0)), "waving") is None


def test_hand_raised_then_lowered():
    sc = _scenario("raise", start=1.0, dur=2.0)
    seq = _run(sc)
    t0 = _first(seq, "hand_raised")
    assert t0 is not None and sc.start + 0.5 <= t0 < sc.start + 0.8, t0  # held 0.5 s first
    g = [g["hand_raised"] for t, g in seq if "hand_raised" in g][-1]
    assert abs(g.start - sc.start) < 0.15 and g.confidence > 0.5
    after = [t for t, g in seq if "hand_raised" in g and t > sc.end]
    assert not after or max(after) < sc.end + 0.15, "gone at the first frame with the hand down"
    brief = _run(_scenario("raise_brief", dur=0.3))
    assert _first(brief, "hand_raised") is None


def test_pointing_ray_names_the_object_it_meets():
    sc = _scenario("point", start=1.0, dur=2.0, point_az=-30.0, point_el=80.0, seed=5)
    seq = _run(sc)
    t0 = _first(seq, "pointing")
    assert t0 is not None and sc.start + 0.5 <= t0 < sc.start + 0.8
    g = [g["pointing"] for t, g in seq if "pointing" in g and t < sc.end][-1]
    assert g.ray_metric and g.ray_direction is not None and g.ray_direction_px is not None
    want = ev._dir("right", 80.0, -30.0)
    assert math.degrees(math.acos(np.clip(np.dot(g.ray_direction, want), -1, 1))) < 8.0
    assert ev._target(g, sc, metric=True) == "target" and ev._target(g, sc, metric=False) == "target"
    assert _first(_run(_scenario("point_brief", dur=0.3, seed=5)), "pointing") is None


def test_pointed_at_prefers_the_ray_and_ignores_what_is_behind():
    g = Gesture("pointing", "right", 0.9, 0.0, 1.0, ray_origin=(0.0, 0.0, 3.0), ray_direction=(1.0, 0.0, 0.0),
                ray_metric=True, ray_origin_px=(100.0, 100.0), ray_direction_px=(1.0, 0.0))
    targets = [Target("ahead", position=(2.0, 0.1, 3.0), box=(300, 80, 340, 120)),
               Target("behind", position=(-2.0, 0.0, 3.0), box=(0, 90, 50, 110)),
               Target("off", position=(1.0, 1.0, 3.0), box=(150, 300, 200, 350))]
    assert pointed_at(g, targets)[0] == "ahead"
    assert pointed_at(dataclasses.replace(g, ray_metric=False), targets) == ("ahead", 0.0)
    assert pointed_at(g, targets[1:]) is None


def test_swing_extremes_hysteresis():
    t = np.linspace(0, 2, 200)
    x = 0.3 * np.sin(2 * np.pi * 1.5 * t) + 0.04 * np.sin(2 * np.pi * 20 * t)  # 1.5 Hz + small jitter
    ext = swing_extremes(t, x, 0.2)  # 3 cycles: 6 swings peak to peak, and the partial ones at both ends
    assert len(ext) - 1 == 7 and all(abs(b[1] - a[1]) >= 0.2 for a, b in zip(ext, ext[1:]))
    assert len(swing_extremes(t, 0.05 * np.sin(2 * np.pi * 3 * t), 0.2)) <= 1


def test_missing_everything_and_out_of_order_times_are_harmless():
    rec = GestureRecogniser()
    sc = _scenario("idle")
    p = ev.person_at(sc, 0.0, np.random.default_rng(0))
    blind = dataclasses.replace(p, keypoints_2d=np.full_like(p.keypoints_2d, np.nan), joints=np.zeros((24, 3), np.float32))
    for t in np.arange(0, 2, 0.07):
        assert rec.observe(t, [blind])[0].gestures == ()
    assert rec.observe(1.0, [p])[0] is p  # earlier than the latest: ignored
    assert rec.observe(3.0, [dataclasses.replace(p, keypoints_2d=None)])[0].gestures == ()


def test_histories_follow_people_by_track_id_and_box():
    """Two people, one waving: the gesture stays with the waver as they swap list order; for_box and
    for_track find it."""
    wave, idle = _scenario("wave", wave_hz=2.0), _scenario("idle", seed=1)
    rec = GestureRecogniser()
    rng = np.random.default_rng(0)
    for k, t in enumerate(np.arange(0.0, 3.5, 1 / 15)):
        a = dataclasses.replace(ev.person_at(wave, t, rng), track_id=7)
        b = ev.person_at(idle, t, rng)
        shift = np.array([400.0, 0.0])
        b = dataclasses.replace(b, track_id=-1, keypoints_2d=b.keypoints_2d + shift,
                                box=(b.box[0] + 400, b.box[1], b.box[2] + 400, b.box[3]))
        people = [a, b] if k % 2 else [b, a]
        out = rec.observe(float(t), people)
    waver, other = (out[1], out[0]) if people[1] is a else (out[0], out[1])
    assert {g.name for g in waver.gestures} >= {"waving"} and other.gestures == ()
    assert any(g.name == "waving" for g in rec.for_track(7)) and rec.for_track(8) is None
    assert any(g.name == "waving" for g in rec.for_box(a.box)) and rec.for_box(b.box) == ()  # watched, no gesture
    assert rec.for_box((1000, 1000, 1010, 1010)) is None  # nobody watched there
    assert gesture_flags(rec.for_box(a.box))["waving"] and gesture_flags(rec.for_box(b.box)) == {
        "waving": False, "hand_raised": False, "pointing": False}
    assert gesture_flags(None) == {}


class _Tracker:
    """Follows the first person of every frame."""

    lost, last_box, track_id = False, None, -1

    def start(self, person, track_id=None):
        self.track_id = track_id
        return dataclasses.replace(person, track_id=track_id)

    def update(self, people):
        return dataclasses.replace(people[0], track_id=self.track_id) if people else None


class _Seen:
    def __init__(self):
        self.people = []

    def observe(self, rgb, near=None):
        return list(self.people)


def test_tracker_host_reads_gestures_at_the_frames_stamps():
    sc = _scenario("raise", start=0.5, dur=3.0)
    host, seen, rng = TrackerHost(_Tracker), _Seen(), np.random.default_rng(0)
    seed = dataclasses.replace(ev.person_at(sc, 0.0, rng), track_id=4)
    update = None
    for k, t in enumerate(np.arange(0.0, 2.0, 0.1)):
        seen.people = [ev.person_at(sc, t, rng)]
        update = host.track(seen, None, TrackRequest(seed=seed if k == 0 else None, everyone=True, stamp=100.0 + t))
    assert [g.name for g in update.person.gestures] == ["hand_raised"] and update.person.track_id == 4
    assert update.people[0].gestures == update.person.gestures
    assert abs(update.person.gestures[0].start - 100.5) < 0.15
    assert host.gestures.for_track(4)
    host.reset()
    assert host.gestures.for_track(4) is None


def test_estimate_hands_the_recogniser_to_a_pipeline_that_takes_it():
    rec = GestureRecogniser()

    class Takes:
        def estimate(self, image, query, gestures=None):
            self.got = gestures
            return PoseResult(query=query, answer="")

    class Plain:
        def estimate(self, image, query):
            return PoseResult(query=query, answer="")

    takes = Takes()
    estimate_streaming(takes, None, "who is waving?", None, None, gestures=rec)
    assert takes.got is rec
    estimate_streaming(Plain(), None, "who is waving?", None, None, gestures=rec)  # no TypeError


@pytest.mark.skipif(not (BVH_DIR / "01_01.bvh").is_file(), reason="Debian assimp-testmodels not installed")
def test_no_waving_on_walking_and_boxing_mocap():
    """CMU 01_01 (playground) and Boxing_Toes, from four sides: nobody waves, nothing is read as a
    wave. (01_03, climbing and hanging with the hands overhead, is measured by tools/eval_gestures.)"""
    for stem in ("01_01", "Boxing_Toes"):
        for k, yaw in enumerate((0.0, 90.0, 180.0, 270.0)):
            rec = GestureRecogniser()
            for t, p in ev.mocap_people(stem, yaw, seed=k):
                (q,) = rec.observe(t, [p])
                assert not any(g.name == "waving" for g in q.gestures), (stem, yaw, t)


def test_heldout_precision_recall():
    """Synthetic sequences drawn from the held-out ranges (timings, amplitudes, rates, noise the
    thresholds were not set on; 10 of each kind): every gesture found at least 8 times in 10, at
    precision >= 0.8 (measured here: 0.9 / 0.9 waving, 1.0 / 1.0 hand_raised, 0.91 / 1.0 pointing)."""
    scenarios = ev.make_scenarios("heldout", 110, seed=11)
    res = ev.score(scenarios, [ev.run_scenario(sc) for sc in scenarios])
    for g in ("waving", "hand_raised", "pointing"):
        assert res[g]["recall"] >= 0.8 and res[g]["precision"] >= 0.8, (g, res[g])


def test_gestures_json_on_the_body_namespace_names_the_body_pointed_at():
    """ros/hri.gestures_msg: the JSON document of /humans/bodies/<id>/gestures; the pointing ray,
    placed from the body as published, meets the other body it points at, not the one behind it."""
    from std_msgs.msg import Header

    from chatpose_ros.ros import hri

    sc = _scenario("point", start=0.2, dur=2.0, point_az=0.0, point_el=90.0)
    rng = np.random.default_rng(0)
    rec = GestureRecogniser()
    for t in np.arange(0.0, 1.2, 1 / 15):
        (pointer,) = rec.observe(float(t), [ev.person_at(sc, float(t), rng)])
    assert [g.name for g in pointer.gestures] == ["pointing"]
    sh = pointer.translation + pointer.joints[17]  # SMPL right shoulder; the arm points to the image's left
    ahead = dataclasses.replace(pointer, gestures=(), translation=(sh + [-2.0, 0.5, 0.0]).astype(np.float32))
    behind = dataclasses.replace(pointer, gestures=(), translation=(sh + [2.0, 0.5, 0.0]).astype(np.float32))
    header = Header(frame_id="cam")
    header.stamp.sec, header.stamp.nanosec = 12, 500_000_000
    doc = json.loads(hri.gestures_msg(pointer, [("b2", behind), ("b3", ahead)], header).data)
    assert doc["stamp"] == 12.5 and doc["frame_id"] == "cam"
    (g,) = doc["gestures"]
    assert g["name"] == "pointing" and g["side"] == "right" and g["target"] == "b3" and g["duration_s"] > 0.5
    assert np.allclose(g["ray_origin_m"], sh, atol=1e-3) and g["ray_direction"][0] < -0.9
    unplaced = dataclasses.replace(pointer, translation=None)
    g = json.loads(hri.gestures_msg(unplaced, [], header).data)["gestures"][0]
    assert "ray_origin_pelvis_m" in g and "target" not in g
    assert json.loads(hri.gestures_msg(ahead, [], header).data)["gestures"] == []
