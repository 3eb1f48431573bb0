"""Property tests (hypothesis) for core/geometry.py: round trips between rotation matrices,
6D (HMR 2.0 column convention), axis-angle and quaternions; orthonormality; batch shapes."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from chatpose_ros.core import geometry as G

SETTINGS = settings(max_examples=60, deadline=None)
ATOL = 1e-4

finite = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False, width=64)
# batch shapes of 0..2 leading dimensions, each 1..4
batch_shapes = st.lists(st.integers(1, 4), min_size=0, max_size=2).map(tuple)


@st.composite
def axis_angles(draw, max_angle=math.pi - 1e-3):
    """(*batch, 3) axis-angle with angle in [0, max_angle] (away from the pi ambiguity)."""
    shape = draw(batch_shapes)
    n = int(np.prod(shape)) if shape else 1
    axes = draw(arrays(np.float64, (n, 3), elements=finite))
    axes = axes + np.array([1e-3, 0, 0])  # never the zero vector
    axes /= np.linalg.norm(axes, axis=1, keepdims=True).clip(1e-9)
    angles = draw(arrays(np.float64, (n, 1), elements=st.floats(0.0, max_angle)))
    return torch.tensor((axes * angles).reshape(*shape, 3))


@st.composite
def rotations(draw):
    return G.axis_angle_to_matrix(draw(axis_angles(max_angle=math.pi)))


@st.composite
def six_d(draw):
    """(*batch, 6) with two well-conditioned (non-parallel, non-tiny) columns."""
    shape = draw(batch_shapes)
    n = int(np.prod(shape)) if shape else 1
    x = draw(arrays(np.float64, (n, 2, 3), elements=finite))
    a1, a2 = x[:, 0], x[:, 1]
    ok = ((np.linalg.norm(a1, axis=1) > 1e-2)
          & (np.linalg.norm(np.cross(a1, a2), axis=1) > 1e-2 * np.linalg.norm(a2, axis=1).clip(1)))
    if not ok.all():
        x[~ok] = np.array([[1.0, 0.2, 0.0], [0.1, 1.0, 0.3]])
    return torch.tensor(x.reshape(*shape, 6))


def _assert_rotation(R):
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    torch.testing.assert_close(R @ R.transpose(-1, -2), eye, atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(R.shape[:-2], dtype=R.dtype), atol=ATOL, rtol=0)


@SETTINGS
@given(six_d())
def test_rot6d_gives_rotations_and_is_a_projection(x):
    R = G.rot6d_to_matrix(x)
    assert R.shape == (*x.shape[:-1], 3, 3)
    _assert_rotation(R)
    # first column is the normalised first 3 numbers (HMR 2.0 convention)
    torch.testing.assert_close(R[..., :, 0], x[..., :3] / x[..., :3].norm(dim=-1, keepdim=True), atol=ATOL, rtol=0)
    torch.testing.assert_close(G.rot6d_to_matrix(G.matrix_to_rot6d(R)), R, atol=ATOL, rtol=0)


@SETTINGS
@given(rotations())
def test_matrix_6d_round_trip(R):
    torch.testing.assert_close(G.rot6d_to_matrix(G.matrix_to_rot6d(R)), R, atol=ATOL, rtol=0)


@SETTINGS
@given(axis_angles())
def test_axis_angle_matrix_round_trip(aa):
    R = G.axis_angle_to_matrix(aa)
    _assert_rotation(R)
    torch.testing.assert_close(G.matrix_to_axis_angle(R), aa, atol=1e-4, rtol=0)


@SETTINGS
@given(rotations())
def test_quaternion_round_trips(R):
    q = G.matrix_to_quaternion(R)
    assert q.shape == (*R.shape[:-2], 4)
    torch.testing.assert_close(q.norm(dim=-1), torch.ones(q.shape[:-1], dtype=q.dtype), atol=ATOL, rtol=0)
    assert (q[..., 3] >= -1e-9).all()
    torch.testing.assert_close(G.quaternion_to_matrix(q), R, atol=ATOL, rtol=0)
    # axis-angle <-> quaternion agree with the matrix path
    torch.testing.assert_close(G.axis_angle_to_matrix(G.quaternion_to_axis_angle(q)), R, atol=1e-4, rtol=0)


@SETTINGS
@given(axis_angles())
def test_axis_angle_quaternion_round_trip(aa):
    q = G.axis_angle_to_quaternion(aa)
    torch.testing.assert_close(G.quaternion_to_axis_angle(q), aa, atol=1e-5, rtol=0)
    torch.testing.assert_close(G.quaternion_to_matrix(q), G.axis_angle_to_matrix(aa), atol=ATOL, rtol=0)


@SETTINGS
@given(rotations(), rotations())
def test_geodesic_angle(R1, R2):
    if R1.shape != R2.shape:
        R2 = R2.reshape(-1, 3, 3)[0].expand_as(R1)
    a = G.geodesic_angle(R1, R2)
    assert a.shape == R1.shape[:-2] and (a >= 0).all() and (a <= math.pi + 1e-6).all()
    torch.testing.assert_close(G.geodesic_angle(R1, R1), torch.zeros_like(a), atol=2e-3, rtol=0)


def test_identity_and_small_angles():
    z = torch.zeros(2, 3)
    torch.testing.assert_close(G.axis_angle_to_matrix(z), torch.eye(3).expand(2, 3, 3))
    tiny = torch.tensor([[1e-8, 0.0, 0.0]])
    torch.testing.assert_close(G.matrix_to_axis_angle(G.axis_angle_to_matrix(tiny)), tiny, atol=1e-7, rtol=0)


def test_rot6d_rejects_bad_shape():
    with pytest.raises(ValueError):
        G.rot6d_to_matrix(torch.zeros(2, 5))
