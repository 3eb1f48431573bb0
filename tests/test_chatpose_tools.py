"""Tools: metrics, data format, task mix, decoding benchmark CLI."""
from __future__ import annotations

import json

import numpy as np
import pytest

from chatpose_ros.core.errors import ConfigError
from chatpose_ros.models.chatpose.data import load_jsonl
from chatpose_ros.core.metrics import mpjpe, pa_mpjpe
from chatpose_ros.models.chatpose.evaluate import joints_from_theta, r_precision
from chatpose_ros.models.chatpose.train import TaskMixSampler, parse_task_mix


def _rot(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_mpjpe_and_pa_mpjpe():
    rng = np.random.default_rng(0)
    gt = joints_from_theta(rng.normal(size=(2, 72)) * 0.3)
    assert np.allclose(mpjpe(gt, gt), 0) and np.allclose(pa_mpjpe(gt, gt), 0, atol=1e-6)
    moved = 1.7 * gt @ _rot(rng).T + np.array([0.3, -1.0, 2.0])
    assert np.allclose(pa_mpjpe(moved.astype(np.float32), gt), 0, atol=1e-5)  # similarity invariant
    assert (mpjpe(moved, gt) > 0.01).all()
    shifted = gt + 0.01
    assert np.allclose(mpjpe(shifted, gt), 0, atol=1e-6)  # root aligned
    noisy = gt + rng.normal(size=gt.shape) * 0.02
    assert (pa_mpjpe(noisy, gt) <= mpjpe(noisy, gt) + 1e-6).all()


def test_r_precision():
    e = np.eye(6)
    assert r_precision(e, e) == {"R@1": 1.0, "R@5": 1.0, "R@10": 1.0}
    assert r_precision(e, e[::-1].copy())["R@1"] == 0.0


def test_task_mix():
    assert parse_task_mix("2:1:1") == (2.0, 1.0, 1.0)
    for bad in ("2:1", "a:b:c", "0:0:0", "-1:1:1"):
        with pytest.raises(ConfigError):
            parse_task_mix(bad)


def test_sampler_follows_mix(tmp_path):
    lines = [{"task": t, "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
             for t in ("image_to_pose", "text_to_pose", "chat") for _ in range(3)]
    p = tmp_path / "d.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in lines))
    s = TaskMixSampler(load_jsonl(p), (2, 1, 1), seed=0)
    drawn = [x.task for x in s.draw(4000)]
    assert abs(drawn.count("image_to_pose") / 4000 - 0.5) < 0.04


def test_jsonl_errors_name_the_line(tmp_path):
    p = tmp_path / "d.jsonl"
    p.write_text('{"task": "chat", "conversations": [{"from": "human", "value": "q"}]}\n{"task": "dance"}\n')
    with pytest.raises(ConfigError, match=":2:"):
        load_jsonl(p)
    p.write_text('{"task": "chat", "theta": [1, 2], "conversations": [{"from": "human", "value": "q"}]}\n')
    with pytest.raises(ConfigError, match="72"):
        load_jsonl(p)


def test_bench_cli_tiny(capsys):
    from chatpose_ros.models.chatpose.bench_decoding import main

    assert main(["--tiny", "--tokens", "3", "--repeats", "1", "--prompt-len", "8", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "kv-cache" in out and "recompute (upstream)" in out and "speed-up" in out
