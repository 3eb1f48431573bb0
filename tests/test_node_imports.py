"""The node process stays light: importing the ROS node imports neither torch nor any model
profile (the model and the profile's tracker live in the worker process); the numpy geometry
the node uses gives the torch geometry's results."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from chatpose_ros.core import geometry, geometry_np


def test_importing_the_node_imports_no_torch_and_no_profile():
    code = ("import sys, chatpose_ros.ros.node, chatpose_ros.ros.main; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('chatpose_ros.models')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_numpy_rotations_equal_the_torch_ones():
    aa = np.random.default_rng(0).normal(0, 1.5, (50, 3))
    aa[0] = 0.0  # the identity
    aa[1] = [np.pi, 0.0, 0.0]  # w = 0: the quaternion's sign convention
    R = geometry_np.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(R, geometry.axis_angle_to_matrix(torch.as_tensor(aa)).numpy(), atol=1e-12)
    np.testing.assert_allclose(geometry_np.matrix_to_quaternion(R),
                               geometry.matrix_to_quaternion(torch.as_tensor(R)).numpy(), atol=1e-12)
    assert geometry_np.matrix_to_quaternion(R[0]).shape == (4,)
