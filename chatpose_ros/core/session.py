"""The node's scheduling, without ROS: latest frame, query queue, image policy, tracking cadence
and throttled reports. The ROS node (chatpose_ros.ros.node) only converts, submits and publishes.

    session = Session(NodeConfig(), max_query_chars=500, can_track=True)
    session.put_frame(Frame(image=raw, header=hdr))          # image callback: O(1), nothing decoded
    job, events = session.submit("the person on the left")   # query callback (or action goal)
    work = session.take(timeout=0.1)                         # worker thread: Answer, Track or None
    ... run the model on work.frame.image (decode it only now) ...
    events = session.finish_answer(work, result)             # or finish_track(work, update) / fail(work, exc)

Public API (everything else is private):
- `Frame(image, header)`: one received image, kept *undecoded*. `image` is opaque to the session
  (e.g. chatpose_ros.core.images.RawImage over the serialised message); `header` is given
  back untouched with every output made from the frame (ROS: its std_msgs/Header). The session
  sets `received` (its clock) and `seq` (arrival number; -1 for explicit action-goal images).
- `Job`: one query; `done` is set when it is answered, failed or dropped; then `result` (a
  PoseResult) or `code`/`error` tell what happened. `cancelled = True` drops it before it runs.
- Work items from `take()`: `Answer(job, frame, reports)` (frame None = answer from the text
  alone; `reports` are the no_image / stale_image warnings to publish first) and
  `Track(frame, request)`: observe `frame` and match the tracked person there with the
  profile's tracker, which lives beside the model (core.model_runners.TrackerHost), as `request`
  (TrackRequest) says: search near `request.near`; when `request.seed` is set, (re)start the
  tracker on that person first (`keep`: the person already tracked, keep the tracker's state).
  Its outcome, a `TrackUpdate`, goes to `finish_track`. The session decides who is tracked and
  under which id; the tracker only follows.
- Events returned by every mutating call, to publish in order: `Report(level, code, message,
  query)` for ~/status, and `Output(result, frame, answer)`: a PoseResult to publish, made from
  `frame` (None: text only, the adapter stamps a header of its own), `answer` False for tracking
  updates. In an Output the tracked person carries its `track_id` (>= 0); `Output.tracked`
  lists them: what a consumer of tracked people per frame (ROS4HRI, TF) hooks onto. `TargetHidden`:
  a tracking update that did not publish the tracked person (a follower holds their last position).
- Stages: `stage(work, name)` (the model reached a stage of the answer: decoding_image,
  perceiving, ...); `Job.stages` lists every stage in order and `Job.changed` is set at each.
- Streaming answers: `answer_pose(work, result)` (the model chose who is meant before its words:
  the Output to publish now, with the chosen person's track id) and `answer_text(work, delta)`
  (the job's partial answer grows); `finish_answer` then completes the job.
- `RateLimit(rate_hz, clock)`: at most so many events a second (the node's crop and mesh rates).
- `report(level, code, message, query, throttle_key)`: a Report, or None when a report with the
  same throttle key was made less than REPORT_THROTTLE_S ago (held back: counted in `suppressed_reports`
  and `suppressed_<code>`, and the next report of that key says "+N more like this held back"; the
  node's `status_<code>` counts what it published, so status_<code> + suppressed_<code> is every report).
  The Report keeps the key in `repeating`, and `source` says which input it concerns ("image",
  "query", "tracking", a voice id, ...): the node's log thins reports further per code and source
  (core.logs). Text taken from inputs is clipped and escaped (core.logs.clip).
- `refuse_frame(code, message)`: a received frame was invalid (counted; throttled report).
- `clock_jumped(back_s, what)`: time went backwards (a bag replay loop): drop the track and the
  image delays; a ``clock_jumped`` report. Every valid frame received is counted once in
  `frames_used` (the model took it: an answer or a tracking update) or in `frames_skipped`
  (replaced by a newer one before; the node keeps only the latest frame), but the latest.
- `start()` / `stop()` (activate / deactivate: pending jobs fail with query_dropped),
  `reset()` (cleanup: forget frame and track), `drop_track()`, `snapshot()` (values for /diagnostics),
  `drain_image_gaps()` (times between frame arrivals since the last call),
  `stats` (a Counter), `latest` (the latest Frame), `queue_length`, `busy`, `tracking`, `searching`.

Thread safety: every method may be called from any thread (one internal lock). Time comes
from the injected `clock` (seconds, monotonic); only `take(timeout > 0)` waits in real time.
"""
from __future__ import annotations

import collections
import dataclasses
import itertools
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Union

from .config import NodeConfig
from .errors import ChatPoseError, InvalidQueryError
from .geometry_np import box_iou
from .logs import THROTTLE_TABLE_MAX, clip
from .pipeline import validate_query
from .target_check import TARGET_MAX_FAILURES, TargetCheck
from .types import PersonPose, PoseResult

# Severities: the values of chatpose_ros/PipelineStatus OK, WARN, ERROR.
OK, WARN, ERROR = 0, 1, 2
REPORT_THROTTLE_S = 1.0  # reports sharing a throttle key: at most one per this many seconds
LATENCY_HISTORY = 200  # answer latencies kept for the diagnostics median
IMAGE_DELAY_HISTORY = 1000  # frame transport delays kept for the diagnostics median
RECENT_GAPS = 30  # the latest gaps between frames: the camera's own period, for check_camera
STALL_PERIODS = 3.0  # a camera is stopped after this many of its own periods without a frame (and camera_timeout_s)
ERROR_CHARS = 300  # how much of an error's text goes into a report (it may quote an input)
# A query choosing the person already tracked keeps the track (and its id) when the chosen box
# overlaps the tracked person's last box this much (intersection over union).
SAME_PERSON_IOU = 0.5
HIDDEN_REPORT_S = 0.5  # the tracked person unpublished this long: ``target_hidden`` (once per hiding)

Box = tuple[float, float, float, float]
_TRACK_IDS = itertools.count(1)  # track ids, unique in this process (across sessions and model restarts)


class Tracker(Protocol):
    """A single-person tracker (e.g. the default profile's PersonTracker, made through the
    profile registry): it runs beside the model (core.model_runners.TrackerHost), as TrackRequests say."""

    lost: bool
    last_box: Box | None
    track_id: int
    # optional: `doubt`, why the last update matched nobody although someone could have been the person;
    # `add_others(people)`, people known not to be the person (the others in view at the query)


    def start(self, person: PersonPose, track_id: int | None = None) -> PersonPose:
        """Begin tracking `person` (under `track_id`, else a new id); returns it with its track id set."""
        ...

    def update(self, people: list[PersonPose]) -> PersonPose | None:
        """The tracked person among this frame's `people` (track id set), or None."""
        ...

    def reacquire(self, people: list[PersonPose]) -> PersonPose | None:
        """The tracked person found again anywhere among `people` after a loss (by appearance), or None."""
        ...


@dataclass
class Frame:
    """One received image, not decoded (see the module docstring)."""

    image: Any
    header: Any = None
    received: float = 0.0
    seq: int = -1


@dataclass
class Job:
    """One query on its way through the session."""

    query: str
    frame: Frame | None = None  # explicit image (action goal); None = the latest camera frame
    done: threading.Event = field(default_factory=threading.Event)
    result: PoseResult | None = None
    used_frame: Frame | None = None  # the frame the answer was made from (None: text only)
    error: str = ""
    code: str = ""
    cancelled: bool = False
    source: str = ""  # who asked (e.g. a ROS4HRI voice id); "" = the query topic or the action
    partial: str = ""  # the answer's words so far, while a streaming profile answers
    posed: PoseResult | None = None  # the pose published before the words (streaming), with track ids
    # every stage the job went through, in order: queued, estimating, then the model's own stages
    # (Session.stage: e.g. decoding_image, perceiving, posing, grounding), answering (streamed
    # words), publishing
    stages: list[str] = field(default_factory=lambda: ["queued"])
    changed: threading.Event = field(default_factory=threading.Event)  # set at every new stage, word and the end

    @property
    def stage(self) -> str:
        return self.stages[-1]

    def _enter(self, stage: str) -> None:
        if stage != self.stages[-1]:
            self.stages.append(stage)
        self.changed.set()

    def _fail(self, code: str, error: str) -> None:
        self.code, self.error = code, error
        self.done.set()
        self.changed.set()


@dataclass(frozen=True)
class Report:
    """A status to publish (~/status) and log."""

    level: int
    code: str
    message: str
    query: str = ""
    repeating: str = ""  # the throttle key of a report that can repeat (per frame, per message)
    source: str = ""  # which input it concerns ("image", "query", "tracking", a voice id): the log throttles per code and source


@dataclass(frozen=True)
class TargetHidden:
    """A tracking update in which the tracked person was not published (missed, doubted, or being looked
    for after a loss): what a follower uses to hold the last known position (core.follow; ROS:
    ~/target_pose_with_covariance). `hidden_s`: how long they have been hidden (s, session clock)."""

    track_id: int
    query: str
    frame: Frame
    hidden_s: float


POSES, WORDS = "poses", "words"  # Output.only: publish only the poses (streamed early) / only the words


class RateLimit:
    """At most `rate_hz` events a second, on an injected clock (monotonic seconds): `wait()` says
    how long until the next one may happen (0.0 now, inf never: rate <= 0), `admit()` takes it
    when it may (True) and `mark()` records one that happened anyway (an answer is never held)."""

    def __init__(self, rate_hz: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_hz, self._clock = float(rate_hz), clock
        self._last: float | None = None

    def wait(self) -> float:
        if self.rate_hz <= 0:
            return float("inf")
        if self._last is None:
            return 0.0
        return max(0.0, self._last + 1.0 / self.rate_hz - self._clock())

    def admit(self) -> bool:
        if self.wait() > 0.0:
            return False
        self.mark()
        return True

    def mark(self) -> None:
        self._last = self._clock()


@dataclass(frozen=True)
class Output:
    """A result to publish: poses, markers and (when `answer`) the text answer. `only`: ""
    everything; POSES the poses, markers and TF of an answer whose words follow (streaming);
    WORDS the complete answer of a job whose poses were already published."""

    result: PoseResult
    frame: Frame | None
    answer: bool
    source: str = ""  # the answered job's source (who asked), "" for tracking updates
    only: str = ""

    @property
    def tracked(self) -> list[PersonPose]:
        """The people of this output that carry a track id."""
        return [p for p in self.result.people if p.track_id >= 0]


@dataclass(frozen=True)
class Answer:
    """Work: answer `job` from `frame` (None: from the text alone)."""

    job: Job
    frame: Frame | None
    reports: tuple[Report, ...] = ()
    started: float = 0.0


@dataclass(frozen=True)
class AnswerDelta:
    """A new piece of a streamed answer (ROS: ~/answer_stream)."""

    delta: str
    query: str
    source: str = ""


@dataclass(frozen=True)
class TrackRequest:
    """What the tracker beside the model does with one frame (picklable: sent to the worker).

    near: search near this box (xyxy px), None = the whole frame.
    seed: (re)start tracking this person (its track_id set) before matching, None = go on.
    keep: with `seed`, the person already tracked: keep the tracker's state (and its id).
    others: with `seed`, the other people in view when the query chose them (not the person: a tracker
        with `add_others` remembers what they look like, to tell the person from them).
    everyone: return every person found too (`track_all_bodies`).
    reacquire: the person was lost: look for them anywhere by appearance (Tracker.reacquire), not by motion.
    stamp: when the frame arrived (s, the session's clock): the time gestures are read at (None:
        the worker's clock when it observes)."""

    near: Box | None = None
    seed: PersonPose | None = None
    keep: bool = False
    others: tuple[PersonPose, ...] = ()
    everyone: bool = False
    reacquire: bool = False
    stamp: float | None = None


@dataclass(frozen=True)
class TrackUpdate:
    """The tracker's answer for one frame: `person` (track_id set) or None when missed; `people`
    everyone found (only when asked); `lost` the tracker gave up; `box` where to search next; `doubt`
    why the tracker matched nobody although someone could have been the person (a tracker's `doubt`
    attribute, e.g. two candidates alike: reported as ``target_uncertain``), "" otherwise."""

    person: PersonPose | None
    people: tuple[PersonPose, ...] = ()
    lost: bool = False
    box: Box | None = None
    doubt: str = ""


@dataclass(frozen=True)
class Track:
    """Work: observe `frame` and match the tracked person as `request` says."""

    frame: Frame
    request: TrackRequest = field(default_factory=TrackRequest)
    started: float = 0.0

    @property
    def near(self) -> Box | None:
        return self.request.near


@dataclass
class _TrackState:
    track_id: int
    query: str
    box: Box | None
    seed: PersonPose | None  # not yet handed to the tracker (sent with the next Track)
    keep: bool
    others: tuple[PersonPose, ...]  # the other people in view at the query (sent with the next seed)
    check: TargetCheck  # is each update's match still the chosen person?
    lost_since: float | None = None  # when the person was lost (then searched for anywhere, config.reacquire_s long)
    hidden_since: float | None = None  # since when no update published them (None: published in the last one)
    hidden_said: bool = False  # target_hidden reported for this hiding


def _box_text(box: Box | None) -> str:
    return "none" if box is None else "(" + ", ".join(f"{v:.0f}" for v in box) + ")"


Work = Union[Answer, Track]
Event = Union[Report, Output, AnswerDelta, TargetHidden]


class Session:
    """Scheduling state of one node; see the module docstring.

    Args:
        config: topics, queue size, image age limit, tracking switches (NodeConfig).
        max_query_chars: longer queries are refused (PipelineConfig.max_query_chars).
        can_track: the model has a tracker (TrackRequests will be served); False = no tracking.
        clock: monotonic seconds (injected: tests drive it by hand).
        stats: counters to go on with (a node's, across reconfigurations); None = new ones.
    """

    def __init__(self, config: NodeConfig, max_query_chars: int, can_track: bool = False,
                 clock: Callable[[], float] = time.monotonic, stats: collections.Counter | None = None) -> None:
        self.config = config
        self.max_query_chars = int(max_query_chars)
        self._can_track = can_track
        self._clock = clock
        self._cv = threading.Condition()
        self._latest: Frame | None = None
        self._seq = 0
        self._queue: collections.deque[Job] = collections.deque()
        self._running = True
        self._busy = False
        self._track: _TrackState | None = None
        self._last_track_seq = -1
        self._used_seq = 0  # the newest frame the model took (tracking or an answer)
        self._last_track_time = -float("inf")
        self._throttle: dict[str, float] = {}
        self._held: collections.Counter = collections.Counter()  # reports held back per throttle key since its last one
        self.stats: collections.Counter = collections.Counter() if stats is None else stats
        self._latencies: collections.deque[float] = collections.deque(maxlen=LATENCY_HISTORY)
        self.image_delays_ms: collections.deque[float] = collections.deque(maxlen=IMAGE_DELAY_HISTORY)
        self._image_gaps_ms: collections.deque[float] = collections.deque(maxlen=IMAGE_DELAY_HISTORY)
        self._last_arrival: float | None = None
        self._recent_gaps_s: collections.deque[float] = collections.deque(maxlen=RECENT_GAPS)
        self._stalled = False  # the camera stopped (check_camera), until a frame arrives again

    # ------------------------------------------------------------------ state
    @property
    def latest(self) -> Frame | None:
        return self._latest

    @property
    def queue_length(self) -> int:
        return len(self._queue)

    @property
    def busy(self) -> bool:
        return self._busy

    @property
    def tracking(self) -> bool:
        """A person is being followed (tracked, not lost)."""
        return self._track is not None and self._track.lost_since is None

    @property
    def searching(self) -> bool:
        """The tracked person was lost and is being looked for (config.reacquire_s after track_lost)."""
        return self._track is not None and self._track.lost_since is not None

    def start(self) -> None:
        """Accept work again (after `stop`)."""
        with self._cv:
            self._running = True

    def stop(self) -> None:
        """Stop handing out work; pending jobs fail with query_dropped. Wakes `take`."""
        with self._cv:
            self._running = False
            pending = list(self._queue)
            self._queue.clear()
            self._cv.notify_all()
        for job in pending:
            job._fail("query_dropped", "node deactivated before the query was answered")

    def reset(self) -> None:
        """Forget the latest frame and the tracked person (cleanup)."""
        with self._cv:
            self._latest, self._track = None, None

    def drop_track(self) -> None:
        """Stop tracking (e.g. the model restarted); the next query may start a new track."""
        with self._cv:
            self._track = None

    # ------------------------------------------------------------------ inputs
    def put_frame(self, frame: Frame, delay_ms: float | None = None) -> None:
        """Keep `frame` as the latest one (replacing the previous, which is never decoded).
        `delay_ms`: camera stamp to arrival, for diagnostics."""
        with self._cv:
            self.stats["frames_received"] += 1
            if delay_ms is not None:
                self.image_delays_ms.append(delay_ms)
            if self._latest is not None and self._latest.seq > self._used_seq:
                self.stats["frames_skipped"] += 1  # replaced before the model took it
            self._seq += 1
            frame.received, frame.seq = self._clock(), self._seq
            if self._last_arrival is not None:
                gap = frame.received - self._last_arrival
                self._image_gaps_ms.append(gap * 1000.0)
                self._recent_gaps_s.append(gap)
            self._last_arrival = frame.received
            self._latest = frame
            if self._track is not None:
                self._cv.notify_all()

    def refuse_frame(self, code: str, message: str) -> list[Event]:
        """A received frame was invalid: count it; report it (one report per second per message:
        a camera sending the same bad frame at 30 Hz is reported once a second)."""
        with self._cv:
            self.stats["frames_received"] += 1
            self.stats["frames_invalid"] += 1
        message = clip(message, ERROR_CHARS)
        rep = self.report(ERROR, code, f"image refused: {message}", throttle_key=f"image:{message}", source="image")
        return [rep] if rep else []

    def refuse_query(self, exc: ChatPoseError, query: str = "", source: str = "") -> list[Event]:
        """A query could not even be read (e.g. not UTF-8): count and report it."""
        with self._cv:
            self.stats["queries_invalid"] += 1
        return [self.report(ERROR, exc.code, f"query refused: {clip(exc, ERROR_CHARS)}", query=query,
                            source=source or "query")]

    def submit(self, text: object, frame: Frame | None = None, source: str = "") -> tuple[Job | None, list[Event]]:
        """Validate and queue a query (with an explicit image `frame`, or None for the latest
        camera frame; `source`: who asked, passed on to the answer's Output). Returns (job or
        None when refused, events). When the queue is full the oldest query is dropped (its job
        fails with query_dropped) and reported; after `stop()` every query is."""
        try:
            query = validate_query(text, self.max_query_chars)
        except InvalidQueryError as exc:
            return None, self.refuse_query(exc, clip(text, 200), source)
        job = Job(query=query, frame=frame, source=source)
        dropped = None
        with self._cv:
            if not self._running:  # arrived while the node stops: nobody would answer it
                self.stats["queries_dropped"] += 1
                job._fail("query_dropped", "the node is not active")
                return None, [self.report(WARN, "query_dropped", "query dropped: the node is not active", query=query,
                                          source=source or "query")]
            if len(self._queue) >= self.config.query_queue_size:
                dropped = self._queue.popleft()
                self.stats["queries_dropped"] += 1
            self._queue.append(job)
            self._cv.notify_all()
        if dropped is None:
            return job, []
        dropped._fail("query_dropped", "dropped: the query queue was full and a newer query arrived")
        return job, [self.report(WARN, "query_dropped", f"query queue full ({self.config.query_queue_size}): dropped "
                                 f"the oldest query '{clip(dropped.query)}'", query=dropped.query,
                                 source=dropped.source or "query")]

    # ------------------------------------------------------------------ worker side
    def _track_wait(self, now: float) -> float | None:
        """Seconds until a tracking update is due (0 = now), None when none is possible."""
        frame = self._latest
        if self._track is None or frame is None or frame.seq == self._last_track_seq:
            return None
        return max(0.0, self._last_track_time + 1.0 / self.config.tracking_rate_hz - now)

    def take(self, timeout: float = 0.0) -> Work | None:
        """The next work item: the oldest query first, else a tracking update when one is due
        (a new frame and at least 1/tracking_rate_hz since the last). Waits up to `timeout` s
        (real time) for one; None when there is none (or the session is stopped)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                if not self._running:
                    return None
                now = self._clock()
                job = self._queue.popleft() if self._queue else None
                if job is not None:
                    if job.cancelled:
                        job._fail("cancelled", "cancelled")
                        continue
                    work = self._answer_work(job, now)
                    self._busy = True
                    return work
                wait = self._track_wait(now)
                if wait == 0.0:
                    frame = self._latest
                    self._last_track_seq, self._last_track_time = frame.seq, now
                    self._use(frame)
                    self._busy = True
                    track = self._track
                    searching = track.lost_since is not None
                    request = TrackRequest(near=None if self.config.track_all_bodies or searching else track.box,
                                           seed=track.seed, keep=track.keep, everyone=self.config.track_all_bodies,
                                           others=track.others if track.seed is not None else (),
                                           reacquire=searching, stamp=frame.received)
                    return Track(frame=frame, request=request, started=now)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cv.wait(left if wait is None else min(left, wait))

    def _answer_work(self, job: Job, now: float) -> Answer:
        frame = job.frame or self._latest
        reports = []
        if frame is None:
            reports.append(self.report(WARN, "no_image", f"no image received yet on '{self.config.image_topic}': "
                                       "answering from the text alone", query=job.query, source=job.source or "query"))
        elif job.frame is None and self.config.max_image_age_s > 0 and now - frame.received > self.config.max_image_age_s:
            reports.append(self.report(WARN, "stale_image", f"latest image is {now - frame.received:.1f} s old "
                                       f"(max_image_age_s={self.config.max_image_age_s}): answering from the text alone",
                                       query=job.query, source=job.source or "query"))
            frame = None
        job.used_frame = frame
        if frame is not None:
            self._use(frame)
        job._enter("estimating")
        return Answer(job=job, frame=frame, reports=tuple(reports), started=now)

    def _use(self, frame: Frame) -> None:
        """The model takes `frame` (under the lock): counted once in `frames_used`."""
        if frame.seq > self._used_seq:
            self.stats["frames_used"] += 1
            self._used_seq = frame.seq

    def answer_pose(self, work: Answer, result: PoseResult) -> list[Event]:
        """A streaming model chose who is meant before its words: start tracking the chosen person
        and return the Output to publish now (poses, markers, TF; its words follow)."""
        job = work.job
        if job.posed is not None or job.done.is_set():  # at most once per answer
            return []
        result = self._start_tracking(result, work.frame)
        job.posed = result
        job._enter("answering")
        return [Output(result=result, frame=work.frame, answer=True, source=job.source, only=POSES)]

    def answer_text(self, work: Answer, delta: str) -> list[Event]:
        """A piece of a streamed answer: the job's partial answer grows; the delta to publish."""
        job = work.job
        if not delta or job.done.is_set():
            return []
        job.partial += delta
        job._enter("answering")
        return [AnswerDelta(delta=delta, query=job.query, source=job.source)]

    def finish_answer(self, work: Answer, result: PoseResult) -> list[Event]:
        """The model answered `work`: start tracking the chosen person (when enabled and seen in
        the frame; any other answer keeps the current track), complete the job, and return the
        Output and the report (``ok``, or ``no_match`` when nobody in view fits the question).
        After `answer_pose` the Output carries the words only (the poses are out) and the people
        keep the track ids given then."""
        job = work.job
        latency = (self._clock() - work.started) * 1000.0
        if job.posed is None:
            result, only = self._start_tracking(result, work.frame), ""
        else:
            only = WORDS
            if len(result.people) == len(job.posed.people):
                result = dataclasses.replace(result, people=tuple(
                    dataclasses.replace(p, track_id=q.track_id) for p, q in zip(result.people, job.posed.people)))
        with self._cv:
            self._latencies.append(latency)
            self.stats["queries_answered"] += 1
            if result.no_match:
                self.stats["queries_no_match"] += 1
            self._busy = False
        job.result = result
        job._enter("publishing")
        if result.no_match:
            rep = self.report(WARN, "no_match", f"nobody in view fits the question (answered in {latency:.0f} ms): "
                              f"{clip(result.answer, 120)}", query=job.query, source=job.source or "query")
        elif result.clarify:
            rep = self.report(OK, "clarify", f"asked which person is meant (answered in {latency:.0f} ms): "
                              f"{clip(result.answer, 120)}", query=job.query, source=job.source or "query")
        else:
            rep = self.report(OK, "ok", f"answered in {latency:.0f} ms: {clip(result.answer, 120)}", query=job.query,
                              source=job.source or "query")
        events: list[Event] = [Output(result=result, frame=work.frame, answer=True, source=job.source, only=only), rep]
        job.done.set()
        job.changed.set()
        return events

    def stage(self, work: Answer, stage: str) -> None:
        """The model reached `stage` of `work` (its runner and pipeline say which: e.g.
        decoding_image, perceiving, posing, grounding): the job's stages grow (action feedback)."""
        if not work.job.done.is_set():
            work.job._enter(stage)

    def _start_tracking(self, result: PoseResult, frame: Frame | None) -> PoseResult:
        """Track the chosen person: the same track (same id) when it is the person already tracked
        (box IoU with the track's last box >= SAME_PERSON_IOU), else a new one. Only a person seen
        in `frame` (a box, not generated) starts or replaces a track: an answer from the text
        alone, a generated pose, no_match or clarify leaves the current track running."""
        chosen = result.selected_person
        if frame is None or chosen is None or chosen.box is None or chosen.generated or result.no_match \
                or result.clarify:
            return result
        with self._cv:
            old, self._track = self._track, None
            if not (self.config.track_after_query and self._can_track):
                return result
            keep = old is not None and old.lost_since is None and old.box is not None \
                and box_iou(old.box, chosen.box) >= SAME_PERSON_IOU  # a lost track is never revived by a query
            if keep:
                self.stats["tracks_kept"] += 1
            tracked = dataclasses.replace(chosen, track_id=old.track_id if keep else next(_TRACK_IDS))
            # the tracker's state is this person's only if the old track's own seed reached it (or was kept)
            keep_state = keep and (old.seed is None or old.keep)
            others = tuple(p for i, p in enumerate(result.people) if i != result.selected and p.box is not None)
            self._track = _TrackState(track_id=tracked.track_id, query=result.query, box=chosen.box, seed=tracked,
                                      keep=keep_state, others=others, check=TargetCheck(tracked))
            self._last_track_seq = frame.seq
        people = list(result.people)
        people[result.selected] = tracked
        return dataclasses.replace(result, people=tuple(people))

    def finish_track(self, work: Track, update: TrackUpdate, model_id: str = "",
                     image_size: tuple[int, int] | None = None) -> list[Event]:
        """The tracker beside the model matched `work.frame` (`update`). Returns an Output
        (tracking update, the person with its track id), a report, or nothing (not found in this
        frame, or a new query replaced the track meanwhile). With `track_all_bodies` the Output
        carries every person found (the others untracked; `selected` -1 in a frame where the
        tracked person was missed or doubted).

        Every match is checked against the chosen person (core.target_check): when the check
        fails the match is not published under the track's id (``target_uncertain``, throttled;
        the tracker restarts on the last verified person at the next update, searched near its
        box); after TARGET_MAX_FAILURES failures in a row, or when the tracker gives up,
        ``track_lost``. With config.reacquire_s > 0 a lost person is then searched for in the whole frame by
        appearance that long
        (TrackRequest.reacquire); a match the target check accepts is published under the same track id again
        (``target_reacquired``); after that long without one the track ends."""
        events: list[Event] = []
        with self._cv:
            self._busy = False
            track = self._track
            if track is None or (track.seed is not None and work.request.seed is not track.seed):
                return []  # the track was dropped, or replaced by one this frame did not start
            if work.request.seed is not None:
                track.seed, track.keep, track.others = None, False, ()  # the tracker has them now
            person, people = update.person, list(update.people)
            doubt = ""
            if track.lost_since is not None and work.request.reacquire:
                return self._search(track, work, update, model_id, image_size)
            doubted_box: Box | None = None
            if person is None:
                track.check.missed()
                track.box = update.box if update.box is not None else track.box
                if update.doubt:  # the tracker itself would not choose (it counts a miss)
                    self.stats["target_uncertain"] += 1
                    doubt = update.doubt
            else:
                doubt = track.check.verify(person)
                if doubt:
                    self.stats["target_uncertain"] += 1
                    doubted_box, person = person.box, None
                    # the tracker follows someone else: restart it (same track) on the last verified person
                    track.seed, track.keep, track.box = track.check.last, True, track.check.last.box
                else:
                    track.box = update.box if update.box is not None else track.box
            query, failures, lost = track.query, track.check.failures, False
            if (person is None and update.lost and doubted_box is None) or failures >= TARGET_MAX_FAILURES:
                lost = True
                if self.config.reacquire_s > 0:  # search for them anywhere, from the last verified person
                    track.lost_since, track.seed, track.keep = self._clock(), track.check.last, True
                    track.check.failures = 0
                else:
                    self._track = None
            elif person is not None or (self.config.track_all_bodies and people):
                everyone = self.config.track_all_bodies
                if person is not None:
                    self.stats["tracking_updates"] += 1
                    others = [p for p in people if p.box != person.box] if everyone else []
                else:  # missed or doubted: everyone found, nobody under the track's id
                    others = [dataclasses.replace(p, track_id=-1) for p in people] if everyone else []
                found = () if person is None else (person,)
                result = PoseResult(query=query, answer="", people=found + tuple(others),
                                    selected=0 if found else -1, model_id=model_id, image_size=image_size)
                events.append(Output(result=result, frame=work.frame, answer=False))
        with self._cv:  # a track that ended (reacquire_s 0) holds nothing
            events += self._hidden(track, work, published=person is not None) if self._track is track else []
        if doubt:
            what = (f"may have become someone else ({doubt}; box {_box_text(doubted_box)}): not published as them "
                    f"({failures}/{TARGET_MAX_FAILURES})" if doubted_box is not None
                    else f"is not told apart from the people near them ({doubt}): nobody published as them")
            rep = self.report(WARN, "target_uncertain", f"the tracked person chosen by '{clip(query)}' {what}",
                              query=query, throttle_key="target_uncertain", source="tracking")
            events += [rep] if rep else []
        if lost:
            then = (f"looking for them in the whole image for {self.config.reacquire_s:g} s (target_reacquired when found)"
                    if self.config.reacquire_s > 0 else "send a new query")
            events.append(self.report(WARN, "track_lost", f"lost the person chosen by '{clip(query)}'; {then}",
                                      query=query, source="tracking"))
        return events

    def _search(self, track: _TrackState, work: Track, update: TrackUpdate, model_id: str,
                image_size: tuple[int, int] | None) -> list[Event]:
        """finish_track for a lost track (called under the lock): the tracker's reacquired match, if the
        target check accepts it, is published under the track's id (``target_reacquired``); the track ends
        config.reacquire_s after the loss."""
        person = update.person
        if person is not None and track.check.verify(person) == "":
            track.lost_since, track.box = None, person.box
            self.stats["targets_reacquired"] += 1
            self.stats["tracking_updates"] += 1
            others = [p for p in update.people if p.box != person.box] if self.config.track_all_bodies else []
            result = PoseResult(query=track.query, answer="", people=(person, *others), selected=0,
                                model_id=model_id, image_size=image_size)
            rep = self.report(OK, "target_reacquired", f"found the person chosen by '{clip(track.query)}' again "
                              "(by appearance): published under the same track id", query=track.query,
                              source="tracking")
            return [Output(result=result, frame=work.frame, answer=False), rep] + self._hidden(track, work, True)
        if person is not None:  # the tracker took someone the check doubts: search on from the last verified person
            track.seed, track.keep = track.check.last, True
            track.check.failures = 0
        if self._clock() - track.lost_since > self.config.reacquire_s:
            self._track = None
            return []
        return self._hidden(track, work, False)

    def _hidden(self, track: _TrackState, work: Track, published: bool) -> list[Event]:
        """After a tracking update of `track`: nothing when the person was `published`; else a TargetHidden
        (and, once they have been hidden HIDDEN_REPORT_S, a ``target_hidden`` report)."""
        now = self._clock()
        if published:
            track.hidden_since, track.hidden_said = None, False
            return []
        if track.hidden_since is None:
            track.hidden_since = now
        hidden = now - track.hidden_since
        events: list[Event] = [TargetHidden(track.track_id, track.query, work.frame, hidden)]
        if hidden >= HIDDEN_REPORT_S and not track.hidden_said:
            track.hidden_said = True
            events.append(self.report(WARN, "target_hidden", f"the person chosen by '{clip(track.query)}' has not "
                                      f"been seen for {hidden:.1f} s: their last known position is held, its "
                                      "uncertainty growing (~/target_pose_with_covariance)", query=track.query,
                                      source="tracking"))
        return events

    def fail(self, work: Work, exc: BaseException) -> list[Event]:
        """The model raised `exc` on `work`: complete the job with the error and report it
        (tracking errors are throttled). ChatPoseError keeps its code; anything else is
        inference_failed."""
        with self._cv:
            self._busy = False
        code = exc.code if isinstance(exc, ChatPoseError) else "inference_failed"
        text = clip(str(exc) if isinstance(exc, ChatPoseError) else f"{type(exc).__name__}: {exc}", ERROR_CHARS)
        if isinstance(work, Track):
            rep = self.report(ERROR, code, f"tracking update failed: {text}", throttle_key="track_error", source="tracking")
            return [rep] if rep else []
        work.job._fail(code, text)
        return [self.report(ERROR, code, f"query not answered: {text}", query=work.job.query,
                            source=work.job.source or "query")]

    # ------------------------------------------------------------------ reports
    def report(self, level: int, code: str, message: str, query: str = "", throttle_key: str = "",
               source: str = "") -> Report | None:
        """A Report, or None when `throttle_key` was used less than REPORT_THROTTLE_S ago (held
        back: counted in `suppressed_<code>`, and the next report of that key says how many)."""
        if throttle_key:
            with self._cv:
                now = self._clock()
                if now - self._throttle.get(throttle_key, -float("inf")) < REPORT_THROTTLE_S:
                    self.stats["suppressed_reports"] += 1
                    self.stats[f"suppressed_{code}"] += 1
                    self._held[throttle_key] += 1
                    return None
                self._throttle[throttle_key] = now
                held = self._held.pop(throttle_key, 0)
                if len(self._throttle) > THROTTLE_TABLE_MAX:  # keep the tables small whatever the input
                    self._throttle = {k: t for k, t in self._throttle.items() if now - t < REPORT_THROTTLE_S}
                    self._held = collections.Counter({k: n for k, n in self._held.items() if k in self._throttle})
            if held:
                message += f" (+{held} more like this held back since the last one)"
        return Report(level=level, code=code, message=message, query=query, repeating=throttle_key, source=source)

    def clock_jumped(self, back_s: float, what: str) -> list[Event]:
        """Time went back `back_s` seconds (`what`: "ROS clock" under use_sim_time, a bag replay
        starting over; or "image stamps"): what depends on the stamps is reset: the tracked person
        (a person in a frame from another moment; the next query starts a new track) and the image
        delays. Throttles, the camera watchdog and queues run on the monotonic clock: unaffected.
        Counted in `clock_jumps`; a ``clock_jumped`` WARN (one per REPORT_THROTTLE_S)."""
        with self._cv:
            self.stats["clock_jumps"] += 1
            tracked, self._track = self._track is not None, None
            self.image_delays_ms.clear()
        rep = self.report(WARN, "clock_jumped", f"time went back {back_s:.2f} s ({what}; a bag replay starting over?): "
                          f"{'tracking dropped, ' if tracked else ''}image delays reset; send a new query to track "
                          "again", throttle_key="clock_jumped", source="clock")
        return [rep] if rep else []

    def frame_age(self) -> float | None:
        """Seconds since the last frame arrived (None: none yet)."""
        with self._cv:
            return None if self._last_arrival is None else self._clock() - self._last_arrival

    def check_camera(self) -> list[Event]:
        """The camera watchdog, called by a timer (never waits for a frame): once a camera that
        sent frames has sent none for `camera_timeout_s` (or STALL_PERIODS of its own median
        period, when longer), a ``camera_stalled`` WARN with the age of the last frame; when frames
        come again, ``camera_resumed``. Counted in `camera_stalls`. 0 = off."""
        timeout = self.config.camera_timeout_s
        with self._cv:
            if timeout <= 0 or self._last_arrival is None:
                return []
            age = self._clock() - self._last_arrival
            gaps = sorted(self._recent_gaps_s)
            limit = max(timeout, STALL_PERIODS * gaps[len(gaps) // 2]) if gaps else timeout
            if age <= limit:
                if not self._stalled:
                    return []
                self._stalled = False
                resumed = True
            else:
                if self._stalled:
                    return []
                self._stalled, resumed = True, False
                self.stats["camera_stalls"] += 1
        topic = clip(self.config.image_topic)
        if resumed:
            return [self.report(OK, "camera_resumed", f"frames on '{topic}' again", source="image")]
        return [self.report(WARN, "camera_stalled", f"no frame on '{topic}' for {age:.2f} s (camera_timeout_s="
                            f"{timeout:g}): the camera stopped; poses and tracking wait for it", source="image")]

    @property
    def camera_stalled(self) -> bool:
        return self._stalled

    def snapshot(self) -> dict[str, str]:
        """Values for /diagnostics (strings): busy, queue length, latencies, tracking, image
        delay, and every counter of `stats`."""
        with self._cv:
            lat = list(self._latencies)
            delays = list(self.image_delays_ms)
            values = {"busy": str(self._busy), "queue_length": str(len(self._queue)),
                      "last_latency_ms": f"{lat[-1]:.1f}" if lat else "",
                      "median_latency_ms": f"{statistics.median(lat):.1f}" if lat else f"{0.0:.1f}",
                      "tracking": str(self.tracking), "searching": str(self.searching),
                      "median_image_delay_ms": f"{statistics.median(delays):.1f}" if delays else "",
                      "last_frame_age_s": "" if self._last_arrival is None else f"{self._clock() - self._last_arrival:.2f}",
                      "camera_stalled": str(self._stalled)}
            values.update({k: str(v) for k, v in sorted(self.stats.items())})
        return values

    def drain_image_gaps(self) -> list[float]:
        """Times between consecutive frame arrivals (ms) since the last call (at most
        IMAGE_DELAY_HISTORY): how regularly the image callback runs."""
        with self._cv:
            gaps = list(self._image_gaps_ms)
            self._image_gaps_ms.clear()
        return gaps

    @property
    def last_latency_ms(self) -> float | None:
        return self._latencies[-1] if self._latencies else None
