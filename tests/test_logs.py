"""core.logs: input text clipped and escaped, lines throttled per key with the count held back,
a sink whose writes never wait (drops counted), and the stderr relay that keeps a process from
blocking on a stderr nobody reads (in a process of its own: it replaces fd 2)."""
from __future__ import annotations

import collections
import fcntl
import os
import subprocess
import sys
import threading
import time

from chatpose_ros.core.logs import LOG_LINE_CHARS, ERROR, INFO, LogSink, LogThrottle, ThrottledLog, clip


def test_clip_escapes_control_characters_and_bounds_length():
    assert clip("the man on the left") == "the man on the left"
    assert "\n" not in clip("a\n[ERROR] forged") and "\\n" in clip("a\n[ERROR] forged")
    assert "\x1b" not in clip("\x1b[31mred") and "\u202e" not in clip("\u202eevil")
    long = clip("x" * 70_000)
    assert long.startswith("x" * 80) and long.endswith("...(+69920 chars)") and len(long) < 100
    assert len(clip("\x00" * 500)) < 110  # escaping cannot lengthen it past the limit


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_throttle_per_key_counts_what_it_held_back():
    clock = Clock()
    th = LogThrottle(30.0, clock=clock)
    assert th.admit("invalid_image:image") == 0
    assert th.admit("invalid_query:query") == 0  # another key: its own budget
    for _ in range(5):
        assert th.admit("invalid_image:image") is None
    clock.t = 31.0
    assert th.admit("invalid_image:image") == 5
    assert th.admit("ok:query", period_s=1.0) == 0
    clock.t = 31.5
    assert th.admit("ok:query", period_s=1.0) is None
    clock.t = 32.1
    assert th.admit("ok:query", period_s=1.0) == 1


class BlockingLogger:
    """A logger stuck on its stream until `release` is set."""

    def __init__(self):
        self.release, self.lines = threading.Event(), []

    def _log(self, line):
        self.release.wait()
        self.lines.append(line)

    info = warn = error = debug = _log


def test_sink_never_waits_and_counts_what_it_dropped():
    logger, stats = BlockingLogger(), collections.Counter()
    sink = LogSink(lambda: logger, stats, capacity=8)
    t0 = time.monotonic()
    for i in range(1000):
        sink.write(ERROR, f"line {i}")
    assert time.monotonic() - t0 < 2.0  # 1000 writes with the stream stuck: no wait
    assert sink.dropped >= 1000 - 8 - 1 and stats["log_lines_dropped"] == sink.dropped
    logger.release.set()
    assert sink.flush(10.0)
    sink.write(INFO, "after")
    assert sink.flush(10.0)
    told = [int(line.split(" [")[1].split()[0]) for line in logger.lines if "log lines dropped" in line]
    assert sum(told) == sink.dropped and logger.lines[-1] == "after"  # the first line through told them
    sink.close()


def test_throttled_log_clips_lines_and_says_what_it_held_back():
    class Rec:
        lines: list = []
        info = warn = error = debug = lines.append

    clock = Clock()
    log = ThrottledLog(LogSink(lambda: Rec), LogThrottle(30.0, clock=clock))
    for _ in range(3):
        log.write(ERROR, "invalid_image:image", "[invalid_image] " + "e" * 70_000 + "\n[ERROR] forged")
    clock.t = 40.0
    log.write(ERROR, "invalid_image:image", "[invalid_image] again")
    assert log.sink.flush(10.0)
    assert len(Rec.lines) == 2 and all("\n" not in line for line in Rec.lines)
    assert len(Rec.lines[0]) <= LOG_LINE_CHARS + 40
    assert Rec.lines[1].endswith("(2 more of these not logged since the last one)")


RELAY_SCRIPT = """
import os, sys, time
from chatpose_ros.core.logs import StderrRelay
relay = StderrRelay.install()
t0 = time.monotonic()
line = b"x" * 200 + b"\\n"
lost = 0
for _ in range(20000):  # 4 MB into a stderr nobody reads
    try:
        os.write(2, line)
    except BlockingIOError:
        lost += 1
print(f"{time.monotonic() - t0:.3f} {lost} {relay.room(1000)}", flush=True)
"""


def test_stderr_relay_keeps_writes_from_blocking_on_an_unread_stderr():
    read_fd, write_fd = os.pipe()
    fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, 4096)
    proc = subprocess.Popen([sys.executable, "-c", RELAY_SCRIPT], stdout=subprocess.PIPE, stderr=write_fd)
    os.close(write_fd)
    try:
        out, _ = proc.communicate(timeout=60)  # stderr never read
    finally:
        proc.kill()
        os.close(read_fd)
    seconds, lost, room = out.decode().split()
    assert float(seconds) < 30.0 and int(lost) > 0 and room == "False"
