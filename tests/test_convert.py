"""Result <-> message conversions of the ROS layer."""
from __future__ import annotations

import numpy as np
from std_msgs.msg import Header

from chatpose_ros.core.types import PoseResult
from chatpose_ros.ros.convert import msg_to_result, result_to_msg
from fakes import make_person


def test_result_message_round_trip():
    import dataclasses

    a = dataclasses.replace(make_person(1, box=(10.0, 20.0, 110.0, 220.0), track_id=3),
                            translation=np.array([0.5, -0.2, 3.0], np.float32))
    b = make_person(2)
    res = PoseResult(query="the one on the left", answer="Sure, it is [POSE].", people=(a, b), selected=0, model_id="m:1")
    back = msg_to_result(result_to_msg(res, Header(frame_id="cam")))
    assert (back.query, back.answer, back.selected, back.model_id) == (res.query, res.answer, 0, "m:1")
    for got, want in zip(back.people, res.people):
        np.testing.assert_allclose(got.theta, want.theta, atol=1e-6)
        np.testing.assert_allclose(got.joints, want.joints, atol=1e-6)
        assert got.track_id == want.track_id and got.estimator == want.estimator
    assert back.people[0].box == (10, 20, 110, 220) and back.people[1].box is None
    np.testing.assert_allclose(back.people[0].translation, [0.5, -0.2, 3.0], atol=1e-6)
    assert back.people[1].translation is None
