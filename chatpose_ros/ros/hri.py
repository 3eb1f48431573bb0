"""ROS4HRI (REP-155) body topics from pose results: message conversions and a publisher set.

For every body in view (a person with a box; poses made from the text alone are not bodies):

| topic | type |
|---|---|
| /humans/bodies/tracked | hri_msgs/IdsList: the ids of the bodies in the latest update |
| /humans/bodies/<id>/roi | hri_msgs/NormalizedRegionOfInterest2D: box / image size, c = confidence |
| /humans/bodies/<id>/skeleton2d | hri_msgs/Skeleton2D: the 18 OpenPose-COCO points, normalised, c = 0 unseen |
| /humans/bodies/<id>/cropped | sensor_msgs/Image: the box cut from the image (rgb8) |
| /humans/bodies/<id>/joint_states | sensor_msgs/JointState: REP-155 joint names `<joint>_<id>` from SMPL theta |
| /humans/bodies/<id>/gestures | std_msgs/String: the body's gestures over time, JSON (``gestures_msg``), at tracking updates |

ROS4HRI has no gesture message: ``gestures`` carries one JSON object per tracking update,
``{"stamp": s, "frame_id": str, "gestures": [...]}``, each gesture as core.gestures.Gesture.to_json
(``name`` waving / hand_raised / pointing, ``side`` left / right (the person's own), ``confidence``,
``duration_s`` since it began; waving ``frequency_hz``; pointing ``ray_origin_m`` and
``ray_direction`` (camera optical frame) or ``ray_origin_pelvis_m`` when the body is not placed,
``ray_origin_px`` / ``ray_direction_px`` in the image, and ``target`` / ``target_angle_deg``: the
body of the same update the ray meets, when one does). An empty list: no gesture now.

Ids (``BodyIds``), stable per person: a body whose box overlaps the box of a body of a recent
update (IoU >= ``UNTRACKED_MATCH_IOU``; bodies left out of an update are remembered for
``BODY_MEMORY_UPDATES`` updates) keeps that body's id, also when a query starts tracking it; a
tracked person (track_id >= 0) keeps its id for the whole track; a new body gets ``b`` + its track
id in base 36 when tracked, else ``u`` + a counter in base 36. An id is never reused for another
person while the node runs (REP-155): once it names a track, no other track and no untracked body
(e.g. a neighbour where the track was last seen, or someone there after the track ended) gets it. Per-body publishers are created
when an id appears and destroyed when it leaves the update; ``/humans/bodies/tracked`` lists the
bodies of the latest update: every person in view after a query's answer, then only the chosen
person at each tracking update (every person in view with ``track_all_bodies``).

Speech in (``SpeechInput``): queries from ``hri_msgs/LiveSpeech`` on
``/humans/voices/<id>/speech``, one subscription per voice listed on ``/humans/voices/tracked``
(created when a voice appears, destroyed when it leaves), plus any topics named explicitly.
Only final results count: a message whose ``final`` is empty (an incremental hypothesis) is
ignored with status ``speech_not_final``; one whose final text is blank gets ``empty_speech``.
The voice id (from the topic ``/humans/voices/<id>/speech``, else the topic name) goes with the
query so that the answer can say which voice asked.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import re
from typing import Callable

import numpy as np
from rclpy.event_handler import PublisherEventCallbacks
from hri_msgs.msg import IdsList, LiveSpeech, NormalizedPointOfInterest2D, NormalizedRegionOfInterest2D, Skeleton2D
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Header, String

from chatpose_ros.core.geometry_np import box_iou
from chatpose_ros.core.gestures import Target, place_ray, pointed_at
from chatpose_ros.core.placement import keypoint_names
from chatpose_ros.core.rep155 import REP155_JOINT_NAMES, base36, body_id, joint_angles, skeleton18
from chatpose_ros.core.types import PersonPose, PoseResult

from .convert import rgb_to_image

BODIES_NS = "/humans/bodies"
TRACKED_TOPIC = f"{BODIES_NS}/tracked"
BODY_TOPICS = ("roi", "skeleton2d", "cropped", "joint_states", "gestures")
UNTRACKED_PREFIX = "u"
UNTRACKED_MATCH_IOU = 0.3  # a box overlapping a recent body's box this much is that body (keeps its id)
# Bodies not in an update (e.g. the others while only the chosen person is tracked) are remembered
# for this many updates (about 20 s of 15 Hz tracking), at most BODY_MEMORY_MAX of them.
BODY_MEMORY_UPDATES = 300
BODY_MEMORY_MAX = 64
# untracked body numbers, unique in this process: a reconfigured node (a new BodyIds) never reuses
# one (tracked bodies are named after the session's track ids, unique in the process too)
_UNTRACKED_IDS = itertools.count()


def is_body(person: PersonPose) -> bool:
    """A person seen in the image (has a box), not a pose made from the text alone."""
    return person.box is not None and not person.generated


def _clip01(v: float) -> float:
    return float(min(1.0, max(0.0, v)))


def roi_msg(box: tuple[float, float, float, float], image_size: tuple[int, int], confidence: float,
            header: Header) -> NormalizedRegionOfInterest2D:
    """Box (x_min, y_min, x_max, y_max) px in an image of (width, height) px -> the REP's
    normalised region ([0, 1], top-left origin), c = confidence."""
    w, h = image_size
    return NormalizedRegionOfInterest2D(header=header, xmin=_clip01(box[0] / w), ymin=_clip01(box[1] / h),
                                        xmax=_clip01(box[2] / w), ymax=_clip01(box[3] / h), c=_clip01(confidence))


def skeleton_msg(person: PersonPose, image_size: tuple[int, int], header: Header) -> Skeleton2D | None:
    """The person's 2D keypoints as a Skeleton2D (18 points in the order of its constants, x and
    y normalised to [0, 1]; c = the person's confidence where seen, 0 where not), or None when
    the person has no keypoints of a known layout."""
    names = keypoint_names(person)
    if names is None:
        return None
    pts, seen = skeleton18(np.asarray(person.keypoints_2d), names)
    w, h = image_size
    c = _clip01(person.confidence)
    msg = Skeleton2D(header=header)
    msg.skeleton = [NormalizedPointOfInterest2D(x=_clip01(p[0] / w), y=_clip01(p[1] / h), c=c if s else 0.0)
                    if s else NormalizedPointOfInterest2D() for p, s in zip(pts, seen)]
    return msg


def joint_state_msg(theta: np.ndarray, bid: str, header: Header) -> JointState:
    """SMPL theta -> JointState of the REP-155 kinematic model (names `<joint>_<id>`, rad)."""
    angles = joint_angles(theta)
    return JointState(header=header, name=[f"{n}_{bid}" for n in REP155_JOINT_NAMES],
                      position=[float(angles[n]) for n in REP155_JOINT_NAMES])


def gestures_msg(person: PersonPose, others: list[tuple[str, PersonPose]], header: Header) -> String:
    """The person's gestures as the JSON document of the module docstring; a pointing gesture names
    the body of `others` ((id, person), the rest of the update) its ray meets, if any."""
    items = []
    for g in person.gestures:
        g = place_ray(g, person)
        doc = g.to_json()
        if g.name == "pointing":
            targets = [Target(bid, box=p.box, position=None if p.translation is None else tuple(float(v) for v in p.translation))
                       for bid, p in others]
            hit = pointed_at(g, targets)
            if hit is not None:
                doc["target"], doc["target_angle_deg"] = hit[0], round(hit[1], 1)
        items.append(doc)
    stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
    return String(data=json.dumps({"stamp": stamp, "frame_id": header.frame_id, "gestures": items}, separators=(",", ":")))


def cropped_msg(rgb: np.ndarray, box: tuple[float, float, float, float], header: Header, rgb_top: int = 0) -> Image | None:
    """The box cut from (H, W, 3) uint8 RGB as an rgb8 Image, or None when the box is empty.
    `rgb_top`: the image row where `rgb` starts (a band of rows of the image; 0 = the whole image)."""
    h, w = rgb.shape[:2]
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])) - rgb_top)
    x1, y1 = min(w, int(np.ceil(box[2])) + 1), min(h, int(np.ceil(box[3])) + 1 - rgb_top)
    if x1 <= x0 or y1 <= y0:
        return None
    return rgb_to_image(np.ascontiguousarray(rgb[y0:y1, x0:x1]), header)


class BodyIds:
    """Stable REP-155 ids for the bodies of successive updates (see the module docstring)."""

    def __init__(self) -> None:
        self._known: list[list] = []  # [id, box, updates since last seen, owning track id or -1] of recent bodies
        self._by_track: dict[int, str] = {}  # track id -> body id, for the track's life

    def assign(self, people: list[PersonPose]) -> list[str]:
        """One id per person (each with a box), in order. An id that named a track is never given
        to anybody else (another track, or an untracked body where the track was last seen)."""
        ids: list[str | None] = [None] * len(people)
        for i, p in enumerate(people):  # tracks already named keep their id
            if p.track_id >= 0 and p.track_id in self._by_track:
                ids[i] = self._by_track[p.track_id]
        taken = set(ids)
        owner = {e[0]: e[3] for e in self._known}
        owner.update({bid: t for t, bid in self._by_track.items()})
        candidates = [e for e in self._known if e[0] not in taken and owner[e[0]] < 0]
        for i, p in enumerate(people):
            if ids[i] is not None:
                continue
            best = max(candidates, key=lambda e: box_iou(e[1], p.box), default=None)
            if best is not None and box_iou(best[1], p.box) >= UNTRACKED_MATCH_IOU:
                candidates.remove(best)  # the same person as a recent untracked body: a new track keeps its id
                bid = best[0]
            elif p.track_id >= 0:
                bid = body_id(p.track_id)
            else:
                bid = UNTRACKED_PREFIX + base36(next(_UNTRACKED_IDS))
            if p.track_id >= 0:
                self._by_track[p.track_id] = bid
                owner[bid] = p.track_id
            ids[i] = bid
        seen = {bid for bid in ids}
        kept = [[e[0], e[1], e[2] + 1, owner[e[0]]] for e in self._known
                if e[0] not in seen and e[2] + 1 < BODY_MEMORY_UPDATES]
        self._known = [[bid, p.box, 0, owner.get(bid, -1)] for bid, p in zip(ids, people)] + kept[:BODY_MEMORY_MAX]
        if len(self._by_track) > BODY_MEMORY_MAX:  # tracks end: forget the oldest
            self._by_track = dict(list(self._by_track.items())[-BODY_MEMORY_MAX:])
        return [str(b) for b in ids]


@dataclasses.dataclass
class _BodyPubs:
    roi: object
    skeleton2d: object
    cropped: object
    joint_states: object
    gestures: object


class HriBodyPublisher:
    """The REP-155 body topics of a node. `publish(result, header, rgb)` after every update;
    `close()` destroys every publisher. Not thread-safe: call from one thread."""

    def __init__(self, node, qos) -> None:
        self._node = node
        self._qos = qos
        self._ids = BodyIds()
        self._tracked_pub = node.create_publisher(IdsList, TRACKED_TOPIC, qos)
        self._bodies: dict[str, _BodyPubs] = {}

    @property
    def body_ids(self) -> list[str]:
        """The ids with live per-body publishers."""
        return list(self._bodies)

    def assign_ids(self, result: PoseResult) -> list[tuple[str, int]]:
        """(id, index into result.people) for every body of `result`."""
        idx = [i for i, p in enumerate(result.people) if is_body(p)]
        ids = self._ids.assign([result.people[i] for i in idx])
        return list(zip(ids, idx))

    def publish(self, result: PoseResult, header: Header, rgb: np.ndarray | None,
                bodies: list[tuple[str, int]] | None = None, rgb_top: int = 0, gestures: bool = True) -> list[tuple[str, int]]:
        """Publish the body topics of `result` (an image's people; `rgb` the image, for crops;
        None = no crops this time; `rgb_top`: the image row where `rgb` starts, when it is a band
        of rows). `bodies` = ids from `assign_ids` (assigned here when None). `gestures`: the
        people's gestures were read (a tracking update; an answer's people carry none). Returns
        the bodies."""
        if bodies is None:
            bodies = self.assign_ids(result)
        live = {bid for bid, _ in bodies}
        for gone in [b for b in self._bodies if b not in live]:
            pubs = self._bodies.pop(gone)
            for pub in vars(pubs).values():
                self._node.destroy_publisher(pub)
        size = result.image_size or ((rgb.shape[1], rgb.shape[0]) if rgb is not None and not rgb_top else None)
        for bid, i in bodies:
            person = result.people[i]
            pubs = self._bodies.get(bid)
            if pubs is None:
                ns = f"{BODIES_NS}/{bid}"
                # Per-body publishers come and go while the executor spins: without QoS event
                # handlers (rclpy adds an incompatible-QoS one by default), destroying them cannot
                # race the executor building its wait set (InvalidHandle killed its spin thread).
                ev = PublisherEventCallbacks(use_default_callbacks=False)
                pubs = _BodyPubs(
                    roi=self._node.create_publisher(NormalizedRegionOfInterest2D, f"{ns}/roi", self._qos, event_callbacks=ev),
                    skeleton2d=self._node.create_publisher(Skeleton2D, f"{ns}/skeleton2d", self._qos, event_callbacks=ev),
                    cropped=self._node.create_publisher(Image, f"{ns}/cropped", self._qos, event_callbacks=ev),
                    joint_states=self._node.create_publisher(JointState, f"{ns}/joint_states", self._qos, event_callbacks=ev),
                    gestures=self._node.create_publisher(String, f"{ns}/gestures", self._qos, event_callbacks=ev))
                self._bodies[bid] = pubs
            if size is not None:
                pubs.roi.publish(roi_msg(person.box, size, person.confidence, header))
                skel = skeleton_msg(person, size, header)
                if skel is not None:
                    pubs.skeleton2d.publish(skel)
            if rgb is not None:
                crop = cropped_msg(rgb, person.box, header, rgb_top)
                if crop is not None:
                    pubs.cropped.publish(crop)
            pubs.joint_states.publish(joint_state_msg(person.theta, bid, header))
            if gestures:
                others = [(b, result.people[k]) for b, k in bodies if k != i]
                pubs.gestures.publish(gestures_msg(person, others, header))
        self._tracked_pub.publish(IdsList(header=header, ids=[bid for bid, _ in bodies]))
        return bodies

    def close(self) -> None:
        for pubs in self._bodies.values():
            for pub in vars(pubs).values():
                self._node.destroy_publisher(pub)
        self._bodies = {}
        self._node.destroy_publisher(self._tracked_pub)


VOICES_NS = "/humans/voices"
VOICES_TRACKED_TOPIC = f"{VOICES_NS}/tracked"
_VOICE_TOPIC = re.compile(r"^/humans/voices/([^/]+)/speech$")
SPEECH_NOT_FINAL = "speech_not_final"
EMPTY_SPEECH = "empty_speech"


def speech_topic(voice_id: str) -> str:
    return f"{VOICES_NS}/{voice_id}/speech"


def voice_of_topic(topic: str) -> str:
    """The voice id of a /humans/voices/<id>/speech topic, else the topic name itself."""
    m = _VOICE_TOPIC.match(topic)
    return m.group(1) if m else topic


def speech_query(msg: LiveSpeech) -> tuple[str, str]:
    """(code, text) of a LiveSpeech message: ("ok", final text stripped), (SPEECH_NOT_FINAL, "")
    for an incremental result without final text, (EMPTY_SPEECH, "") for blank final text."""
    final = msg.final.strip()
    if final:
        return "ok", final
    if msg.incremental.strip() and not msg.final:
        return SPEECH_NOT_FINAL, ""
    return EMPTY_SPEECH, ""


def split_topics(text: str) -> list[str]:
    """A comma-separated list of topic names (the speech_topics parameter) -> the names."""
    return [t.strip() for t in text.split(",") if t.strip()]


class SpeechInput:
    """LiveSpeech subscriptions of a node (see the module docstring).

    on_query(text, voice_id) is called for every final result; on_refused(code, message,
    voice_id) for the others. `close()` destroys every subscription."""

    def __init__(self, node, on_query: Callable[[str, str], None], on_refused: Callable[[str, str, str], None],
                 topics: list[str], discover_voices: bool, qos, callback_group=None) -> None:
        self._node = node
        self._on_query = on_query
        self._on_refused = on_refused
        self._qos = qos
        self._group = callback_group
        self._fixed = {t: self._subscribe(t) for t in topics}
        self._voices: dict[str, object] = {}
        self._tracked_sub = (node.create_subscription(IdsList, VOICES_TRACKED_TOPIC, self._on_voices, qos,
                                                      callback_group=callback_group) if discover_voices else None)

    @property
    def topics(self) -> list[str]:
        """Every speech topic subscribed to now."""
        return list(self._fixed) + [speech_topic(v) for v in self._voices]

    def _subscribe(self, topic: str):
        voice = voice_of_topic(topic)
        return self._node.create_subscription(LiveSpeech, topic, lambda msg: self._on_speech(msg, voice), self._qos,
                                              callback_group=self._group)

    def _on_voices(self, msg: IdsList) -> None:
        live = {v for v in msg.ids if v}
        for gone in [v for v in self._voices if v not in live]:
            self._node.destroy_subscription(self._voices.pop(gone))
        for voice in live:
            if voice not in self._voices and speech_topic(voice) not in self._fixed:
                self._voices[voice] = self._subscribe(speech_topic(voice))

    def _on_speech(self, msg: LiveSpeech, voice: str) -> None:
        code, text = speech_query(msg)
        if code == "ok":
            self._on_query(text, voice)
        elif code == SPEECH_NOT_FINAL:
            self._on_refused(code, f"speech from voice '{voice}' is not final yet ('{msg.incremental[:80]}'): "
                                   "waiting for the final result", voice)
        else:
            self._on_refused(code, f"speech from voice '{voice}' has empty final text: ignored", voice)

    def close(self) -> None:
        for sub in list(self._fixed.values()) + list(self._voices.values()):
            self._node.destroy_subscription(sub)
        if self._tracked_sub is not None:
            self._node.destroy_subscription(self._tracked_sub)
        self._fixed, self._voices, self._tracked_sub = {}, {}, None
