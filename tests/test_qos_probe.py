"""The QoS probe tool runs end to end: two processes, both QoS, figures written as JSON."""
from __future__ import annotations

import json
import subprocess
import sys


def test_qos_probe_reports_both_qos(tmp_path):
    out = tmp_path / "qos.json"
    res = subprocess.run([sys.executable, "-m", "chatpose_ros.tools.qos_probe", "--seconds", "1", "--hz", "10",
                          "--width", "64", "--height", "48", "--json", str(out)], capture_output=True, text=True,
                         timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.read_text())
    runs = {r["qos"]: r for r in report["runs"]}
    assert set(runs) == {"best_effort", "reliable"}
    for r in runs.values():
        assert r["sent"] == 10 and 1 <= r["unique"] <= r["sent"] and r["delivered"] == r["unique"] / r["sent"]
        assert r["frame_bytes"] > 64 * 48 * 3 and r["profile"].endswith(".xml")
    assert runs["reliable"]["acked"] is True
    assert "best_effort delivered" in res.stderr and "reliable    delivered" in res.stderr
