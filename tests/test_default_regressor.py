"""SMPL regressor of the default model: checkpoint handling, inference API, training, accuracy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from chatpose_ros.core.errors import CheckpointError, ConfigError, ModelLoadError
from chatpose_ros.core.metrics import mpjpe_mm, pa_mpjpe_mm
from chatpose_ros.models.default.offline import train_regressor as tr
from chatpose_ros.models.default.offline.mocap import BVH_DIR, load_mocap
from chatpose_ros.perception.regressor import RegressorConfig, SmplRegressor, normalise_inputs

SHIPPED = Path(__file__).resolve().parents[1] / "chatpose_ros" / "assets" / "default" / "regressor.safetensors"
needs_bvh = pytest.mark.skipif(not (BVH_DIR / "01_01.bvh").is_file(), reason="apt-get install assimp-testmodels")
TINY = RegressorConfig(hidden=64, lifter_blocks=1, regressor_blocks=1, d_model=32, encoder_layers=1, decoder_layers=2, heads=2)


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("mocap"))
    train = tr.PoseBank.from_mocap(load_mocap("train", cache_dir=cache), mirror=True)
    test = tr.PoseBank.from_mocap(load_mocap("test", cache_dir=cache), mirror=False)
    return train, test


def test_predict_shapes_and_inputs():
    torch.manual_seed(0)
    model = SmplRegressor(TINY)
    rng = np.random.default_rng(0)
    kp3d = rng.normal(size=(3, 15, 3))
    R = model.predict(kp3d)
    assert R.shape == (3, 24, 3, 3) and R.dtype == np.float32
    np.testing.assert_allclose(R @ R.transpose(0, 1, 3, 2), np.broadcast_to(np.eye(3), R.shape), atol=1e-5)
    kp2d = rng.uniform(0, 640, size=(3, 15, 2))
    vis = np.ones((3, 15))
    vis[:, 3] = 0
    assert model.predict(kp3d, kp2d, np.array([[0, 0, 640, 480]] * 3), vis).shape == (3, 24, 3, 3)
    assert model.predict(kp3d, kp2d).shape == (3, 24, 3, 3)
    with pytest.raises(ValueError):
        model.predict(kp3d[:, :10])
    with pytest.raises(ConfigError):
        RegressorConfig(arch="resnet")
    tf = SmplRegressor(RegressorConfig(**{**TINY.__dict__, "arch": "tfpose"}))
    assert tf.predict(kp3d, visibility=vis).shape == (3, 24, 3, 3)


def test_normalisation_invariant_to_scale_and_origin():
    rng = np.random.default_rng(1)
    kp = torch.as_tensor(rng.normal(size=(2, 15, 3)))
    a = normalise_inputs(kp)
    b = normalise_inputs(kp * 2.5 + torch.tensor([1.0, -2.0, 4.0]))
    torch.testing.assert_close(a, b)
    vis = torch.ones(2, 15)
    vis[0, [7, 8]] = 0  # both hips hidden: still finite, hidden rows zero
    c = normalise_inputs(kp, visibility=vis)
    assert torch.isfinite(c).all() and (c[0, 7] == 0).all()


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ModelLoadError):
        SmplRegressor.load(tmp_path / "missing.safetensors")
    model = SmplRegressor(TINY)
    path = tmp_path / "r.safetensors"
    model.save(path)
    again = SmplRegressor.load(path)
    x = np.random.default_rng(0).normal(size=(2, 15, 3))
    np.testing.assert_allclose(again.predict(x), model.predict(x), atol=1e-6)
    # weights that do not match the config
    SmplRegressor(RegressorConfig(hidden=32, lifter_blocks=1, regressor_blocks=1)).save(tmp_path / "s.safetensors")
    (tmp_path / "s.json").write_text(path.with_suffix(".json").read_text())
    with pytest.raises(CheckpointError):
        SmplRegressor.load(tmp_path / "s.safetensors")
    # garbage weights file
    (tmp_path / "g.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not a header")
    (tmp_path / "g.json").write_text(path.with_suffix(".json").read_text())
    with pytest.raises(CheckpointError):
        SmplRegressor.load(tmp_path / "g.safetensors")
    # bad config
    (tmp_path / "r.json").write_text('{"config": {"arch": "mlp", "bogus": 1}}')
    with pytest.raises(CheckpointError):
        SmplRegressor.load(path)


def test_metrics():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(5, 24, 3))
    assert mpjpe_mm(t, t) == 0.0
    assert mpjpe_mm(t + 1.0, t) == pytest.approx(0.0, abs=1e-9)  # root alignment
    R = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    R *= np.sign(np.linalg.det(R))
    assert pa_mpjpe_mm(2.0 * t @ R.T + 3.0, t) == pytest.approx(0.0, abs=1e-6)
    assert pa_mpjpe_mm(t + 0.01 * rng.normal(size=t.shape), t) > 0


@needs_bvh
@pytest.mark.parametrize("arch", ["mlp", "tfpose"])
def test_tiny_training_loss_falls(banks, arch):
    torch.set_num_threads(2)
    train, _ = banks
    cfg = tr.TrainConfig(steps=30, batch=16, warmup=5, lr=3e-3)
    _, losses = tr.train(arch, train, cfg, TINY, progress=False)
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])


@needs_bvh
def test_synthetic_views_are_camera_frame(banks):
    _, test = banks
    batch = tr.make_eval_batch(test, "clean")
    j = batch["joints"].numpy()
    # y down in the optical frame: the head is mostly above (smaller y than) the pelvis
    head_up = (j[:, 15, 1] < j[:, 0, 1]).mean()
    assert head_up > 0.9


@needs_bvh
def test_shipped_regressor_beats_mean_pose(banks):
    model = SmplRegressor.load(SHIPPED)
    train, test = banks
    batches = tr.eval_batches(test)
    base = {k: tr.baselines(b, tr.mean_body_pose(train.rotmats)) for k, b in batches.items()}
    for k, b in batches.items():  # clean, noisy 3D + 2D, and COCO-17 2D only without feet
        res = tr.evaluate(model, b)
        assert res["mpjpe_mm"] <= 0.6 * base[k]["mean_pose"]["mpjpe_mm"], (k, res, base[k])
        assert res["pa_mpjpe_mm"] <= 0.6 * base[k]["mean_pose"]["pa_mpjpe_mm"], (k, res, base[k])
    # the public predict() path on raw camera-frame keypoints agrees with the batch path
    gen = torch.Generator().manual_seed(0)
    b = tr.synth_batch(test, torch.arange(16), gen, None)
    kp3d = b["feats"][..., :3].numpy() * 1.7 + np.array([0.1, 0.2, 3.0])
    R = model.predict(kp3d)
    pred = tr.forward_kinematics(torch.from_numpy(R)).numpy()
    assert mpjpe_mm(pred, b["joints"].numpy()) < 0.6 * base["clean"]["mean_pose"]["mpjpe_mm"]


@needs_bvh
def test_two_d_only_input_without_feet(banks):
    """The MoveNet path: predict(kp3d=None) from 2D keypoints with the feet hidden is far better
    than the mean pose, and the hidden feet do not change the other joints much."""
    model = SmplRegressor.load(SHIPPED)
    train, test = banks
    gen = torch.Generator().manual_seed(3)
    b = tr.synth_batch(test, torch.arange(0, len(test), 8), gen, None)
    # exact 2D keypoints: project the clean normalised 3D (orthographic view) to pixels
    kp2d = b["feats"][..., :2].numpy() * 150.0 + np.array([320.0, 240.0])
    vis = np.ones(kp2d.shape[:2], np.float32)
    vis[:, list(tr.FEET)] = 0.0
    R = model.predict(None, kp2d, None, vis)
    pred = tr.forward_kinematics(torch.from_numpy(R)).numpy()
    base = tr.baselines(b, tr.mean_body_pose(train.rotmats))["mean_pose"]
    assert mpjpe_mm(pred, b["joints"].numpy()) < 0.6 * base["mpjpe_mm"]
    with pytest.raises(ValueError):
        model.predict(None)
