"""`chatpose ask`: JSON on stdout and a picture, without ROS; clear errors for bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from conftest import REAL_PHOTOS

pytestmark = pytest.mark.timeout(300)


def _ask(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "chatpose_ros.cli", "ask", *args, "--out", str(tmp_path / "p.png"), "--compact"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=240)


def test_ask_about_a_photo_prints_smpl_json_and_writes_picture(tmp_path):
    res = _ask(tmp_path, str(REAL_PHOTOS / "basketball1.png"), "the person on the right")
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    person = out["people"][out["selected"]]
    assert len(person["theta_axis_angle_rad"]) == 72 and len(person["joints_m"]) == 24
    assert person["estimator"] == "smplr_regressor" and person["box_xyxy_px"][0] > 320  # the right-hand person
    pic = cv2.imread(str(tmp_path / "p.png"))
    assert pic is not None and pic.shape[0] > 480  # photo above the 3D view


def test_ask_bad_image_path_is_a_clear_error(tmp_path):
    res = _ask(tmp_path, str(tmp_path / "missing.png"), "anyone")
    assert res.returncode == 2 and "invalid_image" in res.stderr and "missing.png" in res.stderr
