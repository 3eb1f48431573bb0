"""A robot's view of the node over ROS 2: camera_info -> metric translation, TF frames
(chatpose_target, body_<id>), ~/target_pose, the ROS4HRI (REP-155) body topics, speech in
(hri_msgs/LiveSpeech) and the statuses for bad input. In one process (tests/ros_harness.py),
loopback only (tests/conftest.py)."""
from __future__ import annotations

import collections
import dataclasses
import threading
import time

import numpy as np
import pytest
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped
from hri_msgs.msg import IdsList, LiveSpeech, NormalizedRegionOfInterest2D, Skeleton2D
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Header
from tf2_msgs.msg import TFMessage

from chatpose_ros.core.body import SMPL_JOINT_NAMES
from chatpose_ros.core.camera import CameraIntrinsics
from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.images import RgbImage
from chatpose_ros.core.follow import SEEN_SIGMA_M
from chatpose_ros.core.placement import DEFAULT15
from chatpose_ros.core.session import Frame, Output
from chatpose_ros.core.rep155 import REP155_JOINT_NAMES, body_id, body_origin
from chatpose_ros.core.types import PersonPose, PoseResult
from chatpose_ros.msg import PipelineStatus
from chatpose_ros.ros import hri
from chatpose_ros.ros.outputs import NodeOutputs
from chatpose_ros.ros.robot_io import RobotIO
from chatpose_ros.ros.tf import camera_info_topic_for
from conftest import load_photo
from fakes import make_person

pytestmark = pytest.mark.timeout(180)

W, H = 320, 240
CAM = CameraIntrinsics(fx=300.0, fy=300.0, cx=159.5, cy=119.5, width=W, height=H)
PLACES = (np.array([-0.9, 0.2, 4.0]), np.array([1.0, 0.2, 5.0]))  # pelvis of the left / right person (m)
QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
FRAME = "camera_optical_frame"


def _placed_person(seed: int, t: np.ndarray) -> PersonPose:
    """A fake person whose 15 keypoints are its own joints projected at translation t with CAM."""
    p = make_person(seed)
    kp = np.full((len(DEFAULT15), 2), np.nan, np.float32)
    for i, name in enumerate(DEFAULT15):
        if name in SMPL_JOINT_NAMES:
            kp[i] = CAM.project((p.joints[SMPL_JOINT_NAMES.index(name)] + t)[None])[0]
    seen = kp[np.isfinite(kp).all(1)]
    box = (float(seen[:, 0].min()), float(seen[:, 1].min()), float(seen[:, 0].max()), float(seen[:, 1].max()))
    # the pipeline's own guess (assumed focal length) is deliberately wrong: camera_info must replace it
    return PersonPose(theta=p.theta, joints=p.joints, box=box, confidence=0.9, estimator="fake", keypoints_2d=kp,
                      appearance=p.appearance, translation=np.array([0.0, 0.0, 9.0], np.float32))


class PlacedPipeline:
    """Two people (left, right) with keypoints that CAM places at PLACES; 'right' in the query
    chooses the right one."""

    model_id = "placed-fake:0"

    def __init__(self):
        self.people = [_placed_person(1, PLACES[0]), _placed_person(2, PLACES[1])]

    def estimate(self, image, query):
        if image is None:
            return PoseResult(query=query, answer="Sure, it is [POSE].", people=(make_person(7),), selected=0,
                              model_id=self.model_id)
        return PoseResult(query=query, answer="Sure, it is [POSE].", people=tuple(self.people),
                          selected=1 if "right" in query else 0, model_id=self.model_id,
                          image_size=(image.shape[1], image.shape[0]))

    def observe(self, image, near=None):
        return list(self.people)

    def close(self):
        pass


class ImaginingPipeline(PlacedPipeline):
    """'imagine' in a query: a pose made from the text alone (no box, confidence 1.0, and a
    translation of its own), as a text-to-pose answer or an answer while the camera paused gives."""

    def estimate(self, image, query):
        if "imagine" in query:
            made_up = dataclasses.replace(make_person(7), generated=True, confidence=1.0, estimator="llm_generated",
                                          translation=np.array([0.0, 0.0, 2.0], np.float32))
            return PoseResult(query=query, answer="[POSE]", people=(made_up,), selected=0, model_id=self.model_id)
        return super().estimate(image, query)


class HidingPipeline(PlacedPipeline):
    """Once `hidden` is set nobody is found any more (the chosen person stepped behind a pillar)."""

    hidden = False

    def observe(self, image, near=None):
        return [] if self.hidden else list(self.people)


class Sink:
    """Every message of one topic, received on the harness's client node."""

    def __init__(self, h, typ, topic, qos=QOS):
        self.msgs: list = []
        self._cv = threading.Condition()
        self.sub = h.client.create_subscription(typ, topic, self._cb, qos)

    def _cb(self, msg):
        with self._cv:
            self.msgs.append(msg)
            self._cv.notify_all()

    def wait(self, pred=lambda msgs: len(msgs) > 0, timeout=30.0):
        t_end = time.monotonic() + timeout
        with self._cv:
            while not pred(self.msgs):
                left = t_end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out on {self.sub.topic_name}: {len(self.msgs)} messages")
                self._cv.wait(left)
            return list(self.msgs)


def _camera_info(intr: CameraIntrinsics = CAM, k_zero: bool = False) -> CameraInfo:
    k = [0.0] * 9 if k_zero else [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    return CameraInfo(header=Header(frame_id=FRAME), width=intr.width, height=intr.height, k=k,
                      distortion_model="plumb_bob", d=[0.0] * 5)


def _give_camera_info(h, msg: CameraInfo, until) -> None:
    """Publish camera_info (as a driver does, repeatedly) until the node's state satisfies `until`."""
    pub = h.client.create_publisher(CameraInfo, "/camera/camera_info", 10)
    t_end = time.monotonic() + 30
    while not until():
        if time.monotonic() > t_end:
            raise TimeoutError("camera_info did not reach the node")
        pub.publish(msg)
        time.sleep(0.05)


def _transforms(msgs, child):
    return [t for m in msgs for t in m.transforms if t.child_frame_id == child]


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (H, W, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------- over ROS
def test_tf_target_and_bodies_from_camera_info(ros_harness):
    h = ros_harness(lambda cfg: PlacedPipeline(), track_after_query=False)
    assert h.node.robot.camera_info_topic == "/camera/camera_info"  # beside /camera/image_raw
    tf_sink = Sink(h, TFMessage, "/tf", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    target_sink = Sink(h, PoseStamped, "/chatpose_node/target_pose")
    _give_camera_info(h, _camera_info(), lambda: h.node.robot.intrinsics is not None)
    h.wait_until(lambda: tf_sink.sub.get_publisher_count() > 0 and target_sink.sub.get_publisher_count() > 0,
                 what="/tf and target_pose to match")
    h.publish_and_wait(_image())
    h.ask("the person on the right")
    msgs = tf_sink.wait(lambda ms: _transforms(ms, "chatpose_target"))
    target = _transforms(msgs, "chatpose_target")[0]
    right = _placed_person(2, PLACES[1])
    expected = body_origin(PLACES[1], right.joints)
    assert target.header.frame_id == FRAME
    got = target.transform.translation
    np.testing.assert_allclose([got.x, got.y, got.z], expected, atol=0.02)
    q = target.transform.rotation
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
    bodies = {t.child_frame_id: t for t in msgs[0].transforms if t.child_frame_id.startswith("body_")}
    assert len(bodies) == 2 and all(t.header.frame_id == FRAME for t in bodies.values())
    depths = sorted(t.transform.translation.z for t in bodies.values())
    np.testing.assert_allclose(depths, [PLACES[0][2], PLACES[1][2]], atol=0.05)
    pose = target_sink.wait()[0]
    assert pose.header.frame_id == FRAME
    np.testing.assert_allclose([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z], expected, atol=0.02)
    smpl = h.wait_for("pose")[0]
    assert smpl.translation_known and abs(smpl.translation.z - PLACES[1][2]) < 0.05  # not the pipeline's 9 m guess


def test_a_made_up_pose_never_replaces_the_tracked_person(ros_harness):
    h = ros_harness(lambda cfg: ImaginingPipeline(), tracking_rate_hz=50.0)
    target_sink = Sink(h, PoseStamped, "/chatpose_node/target_pose")
    _give_camera_info(h, _camera_info(), lambda: h.node.robot.intrinsics is not None)
    h.wait_until(lambda: target_sink.sub.get_publisher_count() > 0, what="target_pose to match")
    h.publish_and_wait(_image())
    h.ask("the person on the right")
    chosen = h.wait_for("pose")[0].track_id
    assert chosen >= 0
    h.ask("imagine a person sitting")
    made_up = [m for m in h.wait_for("pose", lambda ms: any(m.generated for m in ms)) if m.generated]
    assert made_up[0].track_id == -1 and not made_up[0].translation_known
    seen = len(h.received["pose"])
    seed, t_end = 1, time.monotonic() + 30
    while not [m for m in h.received["pose"][seen:] if m.track_id == chosen]:  # tracking goes on with the same person
        assert time.monotonic() < t_end, "no tracking update of the chosen person after the made-up answer"
        h.publish_and_wait(_image(seed))
        seed += 1
    later = [m for m in h.wait_for("pose")[seen:] if m.track_id >= 0]
    assert all(m.track_id == chosen and not m.generated for m in later)
    targets = target_sink.wait(lambda ms: len(ms) >= 2)
    assert all(abs(p.pose.position.z - PLACES[1][2]) < 0.3 for p in targets), "the target pose is the tracked person's"


def test_follow_me_holds_a_hidden_target_with_a_growing_covariance(ros_harness):
    pipeline = HidingPipeline()
    h = ros_harness(lambda cfg: pipeline, tracking_rate_hz=50.0, reacquire_s=10.0)  # held while looked for
    cov_sink = Sink(h, PoseWithCovarianceStamped, "/chatpose_node/target_pose_with_covariance")
    target_sink = Sink(h, PoseStamped, "/chatpose_node/target_pose")
    _give_camera_info(h, _camera_info(), lambda: h.node.robot.intrinsics is not None)
    h.wait_until(lambda: cov_sink.sub.get_publisher_count() > 0 and target_sink.sub.get_publisher_count() > 0,
                 what="target poses to match")
    h.publish_and_wait(_image())
    h.ask("the person on the right")
    seen = cov_sink.wait()[0]
    assert seen.pose.covariance[0] == pytest.approx(SEEN_SIGMA_M ** 2)
    expected = body_origin(PLACES[1], _placed_person(2, PLACES[1]).joints)
    pipeline.hidden = True
    seed, t_end = 1, time.monotonic() + 60
    while not (h.statuses("target_hidden") and len([m for m in cov_sink.msgs if m.pose.covariance[0] > 0.25]) >= 2):
        assert time.monotonic() < t_end, "no held target pose with a growing covariance"
        h.publish_and_wait(_image(seed))
        seed += 1
        time.sleep(0.05)
    held = [m for m in cov_sink.msgs if m.pose.covariance[0] > seen.pose.covariance[0]]
    variances = [m.pose.covariance[0] for m in held]
    assert variances == sorted(variances), "the uncertainty grows while they are hidden"
    for m in held:  # the last known position, not a new one
        p = m.pose.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], expected, atol=0.02)
    old = [m for m in target_sink.msgs if (m.header.stamp.sec, m.header.stamp.nanosec) == (seen.header.stamp.sec,
                                                                                             seen.header.stamp.nanosec)]
    assert len(old) >= 2, "~/target_pose repeats the last sighting with its own (old) stamp"
    assert "not been seen" in h.statuses("target_hidden")[0].message


def test_joint_frames_on_request(ros_harness):
    h = ros_harness(lambda cfg: PlacedPipeline(), track_after_query=False, tf_joint_frames=True)
    tf_sink = Sink(h, TFMessage, "/tf", QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
    _give_camera_info(h, _camera_info(), lambda: h.node.robot.intrinsics is not None)
    h.wait_until(lambda: tf_sink.sub.get_publisher_count() > 0, what="/tf to match")
    h.publish_and_wait(_image())
    h.ask("the person on the left")
    msgs = tf_sink.wait(lambda ms: _transforms(ms, "chatpose_target"))
    children = {t.child_frame_id: t.header.frame_id for m in msgs for t in m.transforms}
    bid = next(c for c in children if c.startswith("body_"))[len("body_"):]
    assert children[f"l_elbow_{bid}"] == f"body_{bid}" and children[f"head_{bid}"] == f"body_{bid}"


def test_rep155_topics_for_two_people_in_a_real_photo(ros_harness):
    """The embedded default model on basketball1.png (two players): /humans/bodies/tracked
    lists two ids and each body has roi, skeleton2d, cropped and joint_states."""
    from chatpose_ros.profiles import build_pipeline

    photo = load_photo("basketball1.png")
    h = ros_harness(build_pipeline, track_after_query=False)
    tracked = Sink(h, IdsList, "/humans/bodies/tracked")
    h.wait_until(lambda: tracked.sub.get_publisher_count() > 0, what="tracked to match")
    h.publish_and_wait(photo)
    h.ask("the person on the left")
    ids = tracked.wait(timeout=120)[0].ids
    assert len(ids) == 2 and len(set(ids)) == 2 and all(i[0].isalpha() and len(i) <= 8 for i in ids)
    sinks = {(bid, name): Sink(h, typ, f"/humans/bodies/{bid}/{name}") for bid in ids
             for name, typ in (("roi", NormalizedRegionOfInterest2D), ("skeleton2d", Skeleton2D),
                               ("cropped", Image), ("joint_states", JointState))}
    h.wait_until(lambda: all(s.sub.get_publisher_count() > 0 for s in sinks.values()), what="per-body topics")
    h.ask("the person on the right")
    h.wait_for("answer", lambda ms: len(ms) >= 2, timeout=120)
    assert set(tracked.wait(lambda ms: len(ms) >= 2)[1].ids) == set(ids)  # same people, same ids
    rois, n_seen = {}, {}
    for bid in ids:
        roi = sinks[(bid, "roi")].wait()[-1]
        assert 0 <= roi.xmin < roi.xmax <= 1 and 0 <= roi.ymin < roi.ymax <= 1 and 0 < roi.c <= 1
        rois[bid] = roi
        skel = sinks[(bid, "skeleton2d")].wait()[-1]
        assert len(skel.skeleton) == 18
        seen = [p for p in skel.skeleton if (p.x, p.y, p.c) != (0.0, 0.0, 0.0)]  # unseen points are all zero
        n_seen[bid] = len(seen)
        assert seen
        for p in seen:  # each seen point lies in (or at the edge of) the body's region
            assert roi.xmin - 0.02 <= p.x <= roi.xmax + 0.02 and roi.ymin - 0.02 <= p.y <= roi.ymax + 0.02
        crop = sinks[(bid, "cropped")].wait()[-1]
        assert crop.encoding == "rgb8"
        assert abs(crop.width - (roi.xmax - roi.xmin) * photo.shape[1]) <= 3
        assert abs(crop.height - (roi.ymax - roi.ymin) * photo.shape[0]) <= 3
        js = sinks[(bid, "joint_states")].wait()[-1]
        assert list(js.name) == [f"{n}_{bid}" for n in REP155_JOINT_NAMES]
        assert np.isfinite(js.position).all()
    left, right = sorted(ids, key=lambda b: rois[b].xmin)
    assert rois[left].xmax <= rois[right].xmin  # two different people, side by side
    assert max(n_seen.values()) >= 8  # the player on the left is seen whole: shoulders, hips, knees ...


def test_ids_stay_with_the_track(ros_harness):
    h = ros_harness(lambda cfg: PlacedPipeline(), tracking_rate_hz=50.0)
    tracked = Sink(h, IdsList, "/humans/bodies/tracked")
    h.wait_until(lambda: tracked.sub.get_publisher_count() > 0, what="tracked to match")
    h.publish_and_wait(_image())
    h.ask("the person on the right")
    first = tracked.wait()[0].ids
    seed, t_end = 1, time.monotonic() + 60
    while len(tracked.msgs) < 3:  # new frames until two tracking updates of the chosen person came
        assert time.monotonic() < t_end, "no tracking updates"
        h.publish_and_wait(_image(seed))
        seed += 1
    msgs = tracked.wait(lambda ms: len(ms) >= 3)
    chosen = h.wait_for("pose")[0].track_id
    assert chosen >= 0 and body_id(chosen) in first
    assert all(list(m.ids) == [body_id(chosen)] for m in msgs[1:])


def test_livespeech_query_is_answered_and_names_the_voice(ros_harness):
    h = ros_harness(lambda cfg: PlacedPipeline(), track_after_query=False, speech_topics="/mic/speech")
    voices = h.client.create_publisher(IdsList, "/humans/voices/tracked", 10)
    t_end = time.monotonic() + 30
    while "/humans/voices/anna/speech" not in h.node.robot._speech.topics:
        assert time.monotonic() < t_end, "voice subscription not created"
        voices.publish(IdsList(ids=["anna"]))
        time.sleep(0.05)
    speech = h.client.create_publisher(LiveSpeech, "/humans/voices/anna/speech", QOS)
    mic = h.client.create_publisher(LiveSpeech, "/mic/speech", QOS)
    h.wait_until(lambda: speech.get_subscription_count() > 0 and mic.get_subscription_count() > 0, what="speech")
    h.publish_and_wait(_image())
    speech.publish(LiveSpeech(incremental="the person on"))
    assert h.wait_status("speech_not_final")[0].level == PipelineStatus.WARN
    speech.publish(LiveSpeech(incremental="", final="   "))
    assert h.wait_status("empty_speech")[0].level == PipelineStatus.WARN
    speech.publish(LiveSpeech(final="the person on the right", confidence=0.9, language="en-GB"))
    answer = h.wait_for("answer")[0].data
    assert answer == "[voice anna] Sure, it is [POSE]."
    assert h.wait_for("poses")[0].selected == 1
    mic.publish(LiveSpeech(final="the person on the left"))
    assert h.wait_for("answer", lambda ms: len(ms) >= 2)[1].data.startswith("[voice /mic/speech] ")
    h.ask("the person on the left")  # the String topic still works, without a voice
    assert h.wait_for("answer", lambda ms: len(ms) >= 3)[2].data == "Sure, it is [POSE]."
    voices.publish(IdsList(ids=[]))  # anna is gone: her subscription too
    h.wait_until(lambda: "/humans/voices/anna/speech" not in h.node.robot._speech.topics, what="voice removed")


def test_bad_input_gets_a_status_and_the_node_keeps_serving(ros_harness):
    h = ros_harness(lambda cfg: PlacedPipeline(), track_after_query=False)
    # no camera_info yet: translation unknown
    h.publish_and_wait(_image())
    h.ask("the person on the left")
    assert h.wait_status("no_camera_info")[0].level == PipelineStatus.WARN
    assert not h.wait_for("pose")[0].translation_known
    # an uncalibrated camera (K = 0)
    _give_camera_info(h, _camera_info(k_zero=True), lambda: h.node.stats["status_invalid_camera_info"] > 0)
    assert "focal length" in h.wait_status("invalid_camera_info")[0].message
    # intrinsics of another resolution than the image's
    other = CameraIntrinsics(fx=600.0, fy=600.0, cx=319.5, cy=239.5, width=640, height=480)
    _give_camera_info(h, _camera_info(other), lambda: h.node.robot.intrinsics is not None)
    n_answers = len(h.received["answer"])
    h.ask("the person on the right")
    h.wait_for("answer", lambda ms: len(ms) > n_answers)
    assert any("640 x 480" in s.message for s in h.wait_status("invalid_camera_info"))
    assert not h.wait_for("pose", lambda ms: len(ms) >= 2)[1].translation_known
    # a frame without frame_id
    h.publish_and_wait(_image(), frame_id="")
    assert h.wait_status("missing_frame_id")[0].level == PipelineStatus.WARN
    # and still serving, metric again with the right intrinsics
    _give_camera_info(h, _camera_info(), lambda: getattr(h.node.robot.intrinsics, "width", 0) == W)
    h.publish_and_wait(_image())
    n = len(h.received["pose"])
    h.ask("the person on the right")
    pose = h.wait_for("pose", lambda ms: len(ms) > n)[n]
    assert pose.translation_known and abs(pose.translation.z - PLACES[1][2]) < 0.05


# ---------------------------------------------------------------------------------- conversions
def test_roi_skeleton_crop_and_joint_state_conversions():
    person = _placed_person(1, PLACES[0])
    header = Header(frame_id=FRAME)
    roi = hri.roi_msg(person.box, (W, H), 0.9, header)
    assert roi.xmin == pytest.approx(person.box[0] / W) and roi.ymax == pytest.approx(person.box[3] / H)
    assert hri.roi_msg((-5, -5, W + 5, H + 5), (W, H), 1.5, header).xmax == 1.0  # clipped to [0, 1]
    skel = hri.skeleton_msg(person, (W, H), header)
    ls = person.keypoints_2d[DEFAULT15.index("left_shoulder")]
    assert skel.skeleton[Skeleton2D.LEFT_SHOULDER].x == pytest.approx(ls[0] / W, abs=1e-6)
    assert skel.skeleton[Skeleton2D.LEFT_EYE].c == 0.0 and skel.skeleton[Skeleton2D.NOSE].c == 0.0  # not seen
    assert skel.skeleton[Skeleton2D.NECK].c > 0
    assert hri.skeleton_msg(make_person(3, box=(0, 0, 5, 5)), (W, H), header) is None  # no keypoints
    crop = hri.cropped_msg(_image(), (10.2, 20.7, 40.0, 60.0), header)
    assert (crop.width, crop.height) == (31, 41)
    assert hri.cropped_msg(_image(), (W + 10, 0, W + 20, 10), header) is None
    js = hri.joint_state_msg(person.theta, "b7", header)
    assert js.name[0] == "waist_b7" and len(js.name) == len(js.position) == 20


class _Recorded:
    """A publisher (or TF broadcaster) double that writes its name into a shared list per message."""

    def __init__(self, name: str, sent: list) -> None:
        self.name, self.sent = name, sent

    def publish(self, *_msg, **_kw) -> None:
        self.sent.append(self.name)

    send = publish


def test_tf_goes_out_before_the_poses_that_refer_to_its_frame():
    """Per result: /tf and the target pose first, then ~/poses, ~/pose, ~/markers, then ROS4HRI and
    the hooks (a consumer that looks a pose's frame up finds its transform already there)."""
    sent: list[str] = []
    robot = RobotIO(None, NodeConfig(), 10**6, lambda *a: None, lambda *a: None)
    robot._tf, robot._hri = _Recorded("/tf", sent), _Recorded("hri", sent)
    robot._target_pub, robot._target_cov_pub = _Recorded("target_pose", sent), _Recorded("target_pose_cov", sent)
    robot._intrinsics = CAM
    pubs = {k: _Recorded(k, sent) for k in ("poses", "pose", "markers", "answer", "answer_stream", "status")}
    outputs = NodeOutputs(None, NodeConfig(), pubs, collections.Counter(), None, robot, None,
                          [lambda out, header: sent.append("hook")])
    people = (_placed_person(1, PLACES[0]), _placed_person(2, PLACES[1]))
    result = PoseResult(query="q", answer="", people=people, selected=1, image_size=(W, H))
    outputs.publish(Output(result=result, frame=Frame(image=RgbImage(_image()), header=Header(frame_id=FRAME)),
                           answer=False))
    assert sent == ["/tf", "target_pose", "target_pose_cov", "poses", "pose", "markers", "hri", "hook"]


def test_body_ids_follow_tracks_and_overlapping_boxes():
    ids = hri.BodyIds()
    a, b = make_person(1, box=(0, 0, 10, 20)), make_person(2, box=(50, 0, 60, 20))
    first = ids.assign([a, b])
    moved = make_person(2, box=(51, 1, 61, 21))
    assert ids.assign([moved, a]) == [first[1], first[0]]
    # a query starts tracking a body already listed: it keeps its id for the whole track
    assert ids.assign([make_person(1, box=(0, 0, 10, 20), track_id=37)]) == [first[0]]
    assert ids.assign([make_person(1, box=(300, 0, 310, 20), track_id=37)]) == [first[0]], "the track, wherever"
    # the other body, left out of the tracking updates, keeps its id at the next answer
    assert ids.assign([make_person(1, box=(300, 0, 310, 20), track_id=37), moved]) == [first[0], first[1]]
    assert ids.assign([make_person(9, box=(100, 50, 110, 70), track_id=38)]) == ["b12"], "a new body tracked"
    third = ids.assign([make_person(5, box=(200, 0, 210, 20))])
    assert third[0] not in first and third[0][0].isalpha() and third[0] != "b12"


def test_speech_and_topic_helpers():
    assert hri.speech_query(LiveSpeech(final=" hi there ")) == ("ok", "hi there")
    assert hri.speech_query(LiveSpeech(incremental="hi"))[0] == hri.SPEECH_NOT_FINAL
    assert hri.speech_query(LiveSpeech(final="  "))[0] == hri.EMPTY_SPEECH
    assert hri.speech_query(LiveSpeech())[0] == hri.EMPTY_SPEECH
    assert hri.voice_of_topic("/humans/voices/v3/speech") == "v3" and hri.voice_of_topic("/mic") == "/mic"
    assert hri.split_topics(" /a, ,/b ") == ["/a", "/b"]
    assert camera_info_topic_for("/camera/image_raw") == "/camera/camera_info"
    assert camera_info_topic_for("/robot/head_cam/rgb/image_rect") == "/robot/head_cam/rgb/camera_info"


def test_per_body_publishers_come_and_go(ros_context):
    from rclpy.node import Node

    node = Node("hri_probe", context=ros_context)
    try:
        pubs = hri.HriBodyPublisher(node, 10)
        header = Header(frame_id=FRAME)
        two = PoseResult(query="", answer="", people=tuple(PlacedPipeline().people), selected=0, image_size=(W, H))
        bodies = pubs.publish(two, header, _image())
        names = {n for n, _ in node.get_topic_names_and_types()}
        for bid, _ in bodies:
            assert {f"/humans/bodies/{bid}/{t}" for t in hri.BODY_TOPICS} <= names
        one = PoseResult(query="", answer="", people=(two.people[1],), selected=0, image_size=(W, H))
        kept = pubs.publish(one, header, None)
        assert [b for b, _ in kept] == [bodies[1][0]] and pubs.body_ids == [bodies[1][0]]
        names = {n for n, _ in node.get_topic_names_and_types()}
        assert f"/humans/bodies/{bodies[0][0]}/roi" not in names
        pubs.close()
        assert pubs.body_ids == []
    finally:
        node.destroy_node()


def test_a_body_id_names_one_person_for_the_node_lifetime():
    ids = hri.BodyIds()
    target = ids.assign([make_person(1, box=(0, 0, 10, 20), track_id=40)])[0]
    assert ids.assign([make_person(1, box=(1, 0, 11, 20), track_id=40)]) == [target]
    # the track ends; another person is chosen where the first one stood: a new track, a new id
    other = ids.assign([make_person(2, box=(1, 0, 11, 20), track_id=41)])[0]
    assert other != target
    # an untracked person where either track's last box was never takes a track's id
    stranger = ids.assign([make_person(3, box=(1, 0, 11, 20))])[0]
    assert stranger not in (target, other)
    # the first track seen again (re-identified as the same track) keeps its id
    assert ids.assign([make_person(1, box=(100, 0, 110, 20), track_id=40)]) == [target]
    # the target missed in one update of everyone in view: its neighbour does not inherit its id
    crowd = ids.assign([make_person(1, box=(0, 0, 10, 20), track_id=42), make_person(4, box=(50, 0, 60, 20))])
    assert ids.assign([make_person(4, box=(1, 0, 11, 20))]) != [crowd[0]]
    # a reconfigured node (new BodyIds) never names anybody with an id given before
    assert hri.BodyIds().assign([make_person(5, box=(0, 0, 10, 20))])[0] not in {stranger, *crowd}
