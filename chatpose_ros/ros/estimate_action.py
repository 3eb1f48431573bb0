"""The node's ~/estimate action (chatpose_ros/EstimatePose): a goal becomes a query of the node's
Session (with the goal's image, if any), its stages are sent as feedback, and the result carries
the poses. Goals are refused while the node is not active; a cancel marks the job cancelled.

Feedback `stage`: every stage the query goes through, each sent as it begins: queued, estimating,
the model's own (decoding_image when the runner decodes the image; the default profile's
perceiving, posing, grounding), answering (a streaming profile speaks: then "answering: <the
words so far>", sent when they grew, at most every GOAL_POLL_S), publishing.

A goal waits for its answer in a thread of its own that the executor awaits, so that no executor
thread is held while the model answers: images, queries, timers and cancel requests are served
meanwhile, however many goals wait. (Under rclpy 7.1's events executor an awaited coroutine is
iterated again and again while it waits: each turn waits up to EVENTS_TURN_S for the answer,
else a goal spins half a core; measured in docs/benchmarks.md.)
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import Executor
from rclpy.task import Future
from std_msgs.msg import Header

from chatpose_ros.action import EstimatePose
from chatpose_ros.core.errors import ChatPoseError
from chatpose_ros.core.logs import WARN
from chatpose_ros.core.image_codec import check_raw_layout
from chatpose_ros.core.images import RawImage
from chatpose_ros.core.config import NodeConfig
from chatpose_ros.core.session import Frame, Report, Session
from chatpose_ros.msg import PipelineStatus

from . import convert

GOAL_POLL_S = 0.05  # how often an action goal checks for cancellation (stages wake it at once)
EVENTS_TURN_S = 0.005  # events executor: how long one turn of a waiting goal waits for its answer


class _Turn:
    """Awaited: gives the executor back for one turn (the events executor runs what is queued)."""

    def __await__(self):
        yield


def feedback_stage(stage: str, partial: str) -> str:
    """The feedback `stage` of a job: its stage, with the answer's words so far while answering."""
    return f"{stage}: {partial}" if stage == "answering" and partial else stage


class EstimateAction:
    """The ~/estimate action server of `node` for one configuration: goals go to `session`;
    `emit(events)` publishes the session's events; `is_active()` says whether goals are taken.
    `destroy()` at cleanup."""

    def __init__(self, node, cfg: NodeConfig, max_image_pixels: int, session: Session,
                 emit: Callable[[list], None], is_active: Callable[[], bool]) -> None:
        self.cfg, self.max_image_pixels, self.session = cfg, max_image_pixels, session
        self._node, self._emit, self._is_active = node, emit, is_active
        self._group = ReentrantCallbackGroup()
        self._events = not (node.executor is None or isinstance(node.executor, Executor))  # the events executor
        self._server = ActionServer(node, EstimatePose, "~/estimate", execute_callback=self._execute_beside,
                                    goal_callback=self._on_goal, cancel_callback=lambda _g: CancelResponse.ACCEPT,
                                    callback_group=self._group)

    def destroy(self) -> None:
        self._server.destroy()

    def _on_goal(self, _goal) -> GoalResponse:
        if not self._is_active():
            self._node.log.write(WARN, "goal_refused", "action goal refused: the node is not active")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    async def _execute_beside(self, goal_handle) -> EstimatePose.Result:
        """`_execute` in a thread of its own, awaited without holding an executor thread. rclpy's
        executors wake the goal when its Future completes; the events executor iterates a waiting
        coroutine again at once, every time: there each turn waits up to EVENTS_TURN_S for the
        answer (the GIL released; a callback waits at most that long) instead of spinning a core."""
        done, finished = Future(executor=self._node.executor), threading.Event()
        # set from the goal's thread: a done callback makes the executor wake and resume the goal at once
        # (rclpy's executors otherwise look at a waiting goal only at their next event)
        done.add_done_callback(lambda _f: None)

        def run() -> None:
            try:
                done.set_result(self._execute(goal_handle))
            except Exception as exc:  # the action server logs it and answers with an empty result
                done.set_exception(exc)
            finished.set()

        threading.Thread(target=run, name="chatpose_goal", daemon=True).start()
        if self._events:
            while not finished.wait(EVENTS_TURN_S):
                await _Turn()
            return done.result()
        return await done

    def _execute(self, goal_handle) -> EstimatePose.Result:
        """Run one goal as a query of `self.session`; feedback = the job's stages."""
        goal, result = goal_handle.request, EstimatePose.Result()
        frame = None
        if goal.use_image:
            img = goal.image
            image = RawImage(memoryview(img.data).cast("B"), img.width, img.height, img.encoding, img.step,
                             bool(img.is_bigendian))
            try:
                check_raw_layout(img.width, img.height, img.encoding, img.step, image.nbytes, self.max_image_pixels)
            except ChatPoseError as exc:
                self._emit([Report(PipelineStatus.ERROR, exc.code, f"action goal refused: {exc}", goal.query)])
                result.success, result.message = False, f"{exc.code}: {exc}"
                goal_handle.abort()
                return result
            img.header.frame_id = img.header.frame_id or self.cfg.frame_id
            frame = Frame(image=image, header=img.header)
        job, events = self.session.submit(goal.query, frame)
        self._emit(events)
        if job is None:
            result.success, result.message = False, "invalid_query: see ~/status"
            goal_handle.abort()
            return result
        self._follow(job, goal_handle)
        if job.result is None:
            result.success, result.message = False, f"{job.code}: {job.error}"
            if job.cancelled and goal_handle.is_cancel_requested:
                goal_handle.canceled()
            else:
                goal_handle.abort()
            return result
        result.success, result.message, result.answer = True, "ok", job.result.answer
        header = job.used_frame.header if job.used_frame is not None else Header(frame_id=self.cfg.frame_id)
        result.poses = convert.result_to_msg(job.result, header)
        goal_handle.succeed()
        return result

    @staticmethod
    def _follow(job, goal_handle) -> None:
        """Until `job` is done: every stage it enters as feedback, at once (woken by `job.changed`),
        and its words so far while a streaming profile answers (at most every GOAL_POLL_S)."""
        sent, partial_at, partial = 0, 0.0, ""
        while True:
            job.changed.wait(timeout=GOAL_POLL_S)
            job.changed.clear()
            done = job.done.is_set()  # read before the stages: a finished job's stages are all in
            if goal_handle.is_cancel_requested:
                job.cancelled = True
            stages = job.stages[sent:]
            sent += len(stages)
            for stage in stages:
                goal_handle.publish_feedback(EstimatePose.Feedback(stage=stage))
            now = time.monotonic()
            if job.stage == "answering" and job.partial != partial and (done or now - partial_at >= GOAL_POLL_S):
                partial, partial_at = job.partial, now
                goal_handle.publish_feedback(EstimatePose.Feedback(stage=feedback_stage("answering", partial)))
            if done:
                return
