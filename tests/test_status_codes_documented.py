"""Every status code the package can put on ~/status is in the table of status codes (docs/node.md)."""
from __future__ import annotations

import re
from pathlib import Path

from chatpose_ros.core import errors

ROOT = Path(__file__).resolve().parents[1]
# Report(level, "code", ...), session.report(level, "code", ...), node._report(PipelineStatus.X, "code", ...)
REPORT = re.compile(r"(?:Report|report)\(\s*(?:OK|WARN|ERROR|PipelineStatus\.[A-Z]+),\s*\"([a-z_]+)\"")


def test_every_status_code_is_documented():
    codes = set()
    for path in (ROOT / "chatpose_ros").rglob("*.py"):
        codes |= set(REPORT.findall(path.read_text()))
    codes |= {cls.code for cls in vars(errors).values()
              if isinstance(cls, type) and issubclass(cls, errors.ChatPoseError) and cls is not errors.ChatPoseError}
    codes -= {"invalid_config", "invalid_checkpoint"}  # load-time only: they fail configure, never reach ~/status
    doc = (ROOT / "docs" / "node.md").read_text()
    table = doc[doc.index("## Status codes"):]
    table = table[:table.index("\n\n", table.index("| code |"))]
    assert len(codes) > 20
    missing = sorted(c for c in codes if f"`{c}`" not in table)
    assert not missing, missing
