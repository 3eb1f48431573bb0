"""Logging that cannot hurt the node (ROS-free): input text clipped and escaped, lines throttled
per kind with a count of what was held back, and writes that never wait on the log stream.

    clip(encoding)                          # '\\x1b[31m...' at most MESSAGE_CHARS, escaped as repr does
    throttle = LogThrottle(period_s=30.0)   # admit(key) -> None (not now) or how many were held back
    sink = LogSink(node.get_logger, stats)  # sink.write(WARN, line): queued, written by a daemon thread
    relay = StderrRelay.install()           # fd 2 becomes a pipe whose writes fail instead of blocking
    quiet_libraries()                       # progress bars and library advice off (environment defaults)

Why a sink and a relay: rcutils (the ROS logger) writes to stderr synchronously, under a process-wide
logging mutex, in the thread that logs. With stderr a pipe nobody reads, the first line that does
not fit blocks that thread, and every thread that logs after it. The sink keeps the node's own
lines off the executor's threads (a bounded queue: a line that does not fit is dropped and
counted); the relay (installed by the `chatpose-node` process, not by a library user) keeps every
writer of the process and of its children (rcutils in C, Python's logging, the model's worker) from
ever blocking on the real stderr: a daemon thread copies the pipe to it, and while that copy is
stuck, writes that no longer fit fail at once (the line is lost; the sink counts its own).

/diagnostics and ~/status keep every count exactly; the log is a summary.
"""
from __future__ import annotations

import atexit
import collections
import errno
import fcntl
import os
import queue
import struct
import sys
import termios
import threading
import time
from typing import Any, Callable

DEBUG, INFO, WARN, ERROR = "debug", "info", "warn", "error"
MESSAGE_CHARS = 80  # input text (queries, encodings, formats) in one message
LOG_LINE_CHARS = 400  # a whole log line (after escaping)
THROTTLE_TABLE_MAX = 256  # throttle keys remembered before old ones are forgotten
LOG_QUEUE_LINES = 256  # lines waiting for the sink's thread before new ones are dropped
RELAY_PIPE_BYTES = 1 << 20  # the relay's pipe (Linux caps an unprivileged pipe at 1 MiB by default)
RELAY_CHUNK_BYTES = 65536
RELAY_DRAIN_S = 1.0  # at exit, how long the relay may take to pass on what is still in its pipe
RELAY_RETRY_S = 0.05
LINE_OVERHEAD_BYTES = 96  # what rcutils adds to a line (severity, time stamp, logger name)
# Environment defaults that keep libraries' developer output (progress bars, advice, deprecation
# warnings) out of an operator's log; a value already set wins.
QUIET_ENV = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
             "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
             "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning"}


def clip(text: object, limit: int = MESSAGE_CHARS) -> str:
    """`text` made safe for one line: control and non-printable characters escaped as `repr`
    escapes them (a newline cannot forge a log line, an escape sequence cannot recolour a
    terminal), at most `limit` characters, then "...(+N chars)" for the rest of the original."""
    s = text if isinstance(text, str) else str(text)
    head = s[:limit]
    escaped = head if head.isprintable() else repr(head)[1:-1]
    rest = len(s) - len(head)
    if len(escaped) > limit:
        rest += len(escaped) - limit  # counted in escaped characters: an estimate of what is left
        escaped = escaped[:limit]
    return f"{escaped}...(+{rest} chars)" if rest > 0 else escaped


class LogThrottle:
    """When to write a line of some kind (`key`, e.g. a status code and its source) to the log:
    the first time, then at most once per `period_s` per key.

    `admit(key, period_s=None)` -> None (do not log now) or how many lines of that key were held
    back since the last one (0 the first time); `period_s` overrides the period for this key.
    `clock`: monotonic seconds (injected in tests)."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = float(period_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._skipped: collections.Counter = collections.Counter()

    def admit(self, key: str, period_s: float | None = None) -> int | None:
        period = self.period_s if period_s is None else period_s
        with self._lock:
            now = self._clock()
            if now - self._last.get(key, -float("inf")) < period:
                self._skipped[key] += 1
                return None
            if len(self._last) > THROTTLE_TABLE_MAX:  # keep the table small whatever the input
                self._last = {k: t for k, t in self._last.items() if now - t < max(period, self.period_s)}
            self._last[key] = now
            return self._skipped.pop(key, 0)


class LogSink:
    """Log lines written by a daemon thread, so that no caller ever waits on the log stream.

    Args:
        logger: gives the logger to write with (an object with debug/info/warn/error), asked
            for every line (ROS: the node's `get_logger`).
        stats: a Counter: `log_lines_dropped` counts the lines dropped (None: not counted there).
        capacity: lines waiting before new ones are dropped.

    While a StderrRelay is installed (`StderrRelay.active`), a line that would not fit in its
    pipe now is dropped and counted instead of written (it would be lost uncounted).

    `write(level, line)` never blocks; a dropped line is counted, and the next line that gets
    through says how many were dropped. `flush(timeout)` waits until the queue is written
    (tests); `close()` stops the thread after what is queued."""

    def __init__(self, logger: Callable[[], Any], stats: collections.Counter | None = None,
                 capacity: int = LOG_QUEUE_LINES) -> None:
        self._logger, self._stats = logger, stats
        self._queue: queue.Queue = queue.Queue(maxsize=capacity)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0  # in all
        self._unreported = 0  # dropped since the last line written

    def write(self, level: str, line: str) -> None:
        self._ensure_thread()
        try:
            self._queue.put_nowait((level, line))
        except queue.Full:
            self._drop()

    def _drop(self) -> None:
        with self._lock:
            self.dropped += 1
            self._unreported += 1
        if self._stats is not None:
            self._stats["log_lines_dropped"] += 1

    def _ensure_thread(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._loop, name="chatpose_log", daemon=True)
                    self._thread.start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued line is written (or dropped); False after `timeout` s."""
        t_end = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > t_end:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float = 1.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                return  # the thread is stuck on the stream: it is a daemon, left behind
            thread.join(timeout)

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._write(*item)
            except Exception:  # a logger failing must not end the thread; the line is lost
                self._drop()
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _write(self, level: str, line: str) -> None:
        with self._lock:
            dropped, self._unreported = self._unreported, 0
        if dropped:
            line = f"{line} [{dropped} log lines dropped before this one]"
        relay = StderrRelay.active
        if relay is not None and not relay.room(len(line.encode()) + LINE_OVERHEAD_BYTES):
            with self._lock:
                self._unreported += dropped  # still to tell
            self._drop()
            return
        logger = self._logger()
        # rclpy binds a severity to each logging call site: one call per severity
        if level == ERROR:
            logger.error(line)
        elif level == WARN:
            logger.warn(line)
        elif level == INFO:
            logger.info(line)
        else:
            logger.debug(line)


class ThrottledLog:
    """A log of kinds of lines: `write(level, key, line)` writes `line` (clipped to
    LOG_LINE_CHARS, escaped) through `sink` the first time, then at most once per period per
    `key` (LogThrottle), with the count held back since the last line of that key."""

    def __init__(self, sink: LogSink, throttle: LogThrottle) -> None:
        self.sink, self.throttle = sink, throttle

    def write(self, level: str, key: str, line: str, period_s: float | None = None) -> bool:
        """True when the line was handed to the sink."""
        skipped = self.throttle.admit(key, period_s)
        if skipped is None:
            return False
        more = f" ({skipped} more of these not logged since the last one)" if skipped else ""
        self.sink.write(level, clip(line, LOG_LINE_CHARS) + more)
        return True


class StderrRelay:
    """This process's fd 2 (inherited by the processes it starts) made a pipe whose writes never
    block, copied to the real stderr by a daemon thread (see the module docstring). Linux only
    (pipe sizes, FIONREAD). `room(nbytes)`: whether that many more bytes fit in the pipe now.
    `StderrRelay.active`: the one installed in this process (None: none)."""

    active: StderrRelay | None = None

    def __init__(self, capacity: int = RELAY_PIPE_BYTES) -> None:
        read_fd, write_fd = os.pipe()
        try:
            fcntl.fcntl(write_fd, fcntl.F_SETPIPE_SZ, capacity)
        except OSError:  # above the system's limit: keep the default size
            pass
        self.capacity = fcntl.fcntl(write_fd, fcntl.F_GETPIPE_SZ)
        os.set_blocking(write_fd, False)
        self._read_fd = read_fd
        sys.stderr.flush()
        self._target = os.dup(2)
        os.dup2(write_fd, 2)
        os.close(write_fd)
        self._thread = threading.Thread(target=self._copy, name="chatpose_stderr_relay", daemon=True)
        self._thread.start()
        atexit.register(self.drain, RELAY_DRAIN_S)

    @classmethod
    def install(cls, capacity: int = RELAY_PIPE_BYTES) -> StderrRelay | None:
        """The relay, or None where it cannot work (no F_SETPIPE_SZ: not Linux)."""
        if cls.active is not None:
            return cls.active
        if not hasattr(fcntl, "F_GETPIPE_SZ"):
            return None
        cls.active = cls(capacity)
        return cls.active

    def buffered(self) -> int:
        """Bytes in the pipe, not yet copied to the real stderr."""
        return struct.unpack("i", fcntl.ioctl(self._read_fd, termios.FIONREAD, b"\0\0\0\0"))[0]

    def room(self, nbytes: int) -> bool:
        # a pipe holds whole pages: lines that do not fill a page leave room unused (up to a line
        # a page), so a quarter is kept free
        return self.buffered() + nbytes <= self.capacity * 3 // 4

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` s until the pipe is empty (at exit: the last lines are passed on
        unless the real stderr is stuck)."""
        t_end = time.monotonic() + timeout
        while self.buffered() > 0:
            if time.monotonic() > t_end:
                return False
            time.sleep(0.01)
        return True

    def _copy(self) -> None:
        while data := os.read(self._read_fd, RELAY_CHUNK_BYTES):
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self._target, view):]
                except InterruptedError:
                    continue
                except BlockingIOError:  # a real stderr set non-blocking by someone else: wait for it
                    time.sleep(RELAY_RETRY_S)
                except OSError as exc:  # the real stderr is closed: nothing to pass on to
                    if exc.errno in (errno.EPIPE, errno.EBADF):
                        return
                    raise


def quiet_libraries(environ: dict | None = None) -> None:
    """Set QUIET_ENV's defaults in `environ` (os.environ): before the model's libraries are
    imported, or a worker process is started, they print only what an operator needs."""
    env = os.environ if environ is None else environ
    for key, value in QUIET_ENV.items():
        env.setdefault(key, value)
