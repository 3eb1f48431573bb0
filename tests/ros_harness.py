"""In-process ROS harness for tests: a ChatPoseNode and a client node spinning in one executor.

Waits are on conditions (messages received, counters reached, both ends of every topic
matched), never fixed sleeps: the tests hold on a loaded machine."""
from __future__ import annotations

import faulthandler
import os
import threading
import time

import numpy as np
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image
from std_msgs.msg import Header, String
from visualization_msgs.msg import MarkerArray

from chatpose_ros.action import EstimatePose
from chatpose_ros.msg import PipelineStatus, SmplPose, SmplPoseArray
from chatpose_ros.ros.convert import rgb_to_image
from chatpose_ros.ros.main import DEFAULT_EXECUTOR, make_executor
from chatpose_ros.ros.node import ChatPoseNode

POLL_S = 0.01  # how often wait_until looks at its condition
SPIN_SLICE_S = 0.1  # the spin thread checks for close() this often
EXECUTOR_CHECK_S = 0.5  # how often a wait checks that the executor thread still runs


class Harness:
    def __init__(self, context, pipeline_factory, params: dict, autostart: bool = True, executor: str | None = None):
        self.context = context
        self._closing = False
        # the model in this process: the test doubles are lambdas (not picklable for a worker process)
        # no Anny mesh process unless a test asks for it (tests/test_ros_mesh.py)
        params = {"image_qos": "reliable", "image_qos_depth": 5, "model_in_process": True, "mesh_body": "off", **params}
        overrides = [Parameter(k, value=v) for k, v in params.items()]
        self.node = ChatPoseNode(pipeline_factory=pipeline_factory, context=context, parameter_overrides=overrides)
        self.client = Node("chatpose_test_client", context=context)
        ns = "/chatpose_node"
        self.received: dict[str, list] = {k: [] for k in ("poses", "pose", "markers", "answer", "answer_stream", "status",
                                                          "diagnostics")}
        self._cv = threading.Condition()
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)  # tests count messages: lose none
        self._subs = []
        for key, typ, topic in (("poses", SmplPoseArray, f"{ns}/poses"), ("pose", SmplPose, f"{ns}/pose"),
                                ("markers", MarkerArray, f"{ns}/markers"), ("answer", String, f"{ns}/answer"),
                                ("answer_stream", String, f"{ns}/answer_stream"),
                                ("status", PipelineStatus, f"{ns}/status"), ("diagnostics", DiagnosticArray, "/diagnostics")):
            self._subs.append(self.client.create_subscription(typ, topic, self._collector(key), qos))
        self.image_pub = self.client.create_publisher(Image, params.get("image_topic", "/camera/image_raw"), qos)
        self.query_pub = self.client.create_publisher(String, f"{ns}/query", qos)
        self.action = ActionClient(self.client, EstimatePose, f"{ns}/estimate")
        # chatpose-node --executor's choices (its default unless told); CHATPOSE_TEST_EXECUTOR=multi runs
        # every ROS test on the other one
        self.executor = make_executor(executor or os.environ.get("CHATPOSE_TEST_EXECUTOR", DEFAULT_EXECUTOR), context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.client)
        self._spinning = threading.Event()
        self._spinning.set()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        if autostart:
            assert self.node.autostart(), "node failed to configure/activate"
            self.wait_for_connections()

    def _collector(self, key):
        def cb(msg):
            with self._cv:
                self.received[key].append(msg)
                self._cv.notify_all()
        return cb

    def _check_executor(self):
        if not self._thread.is_alive() and not self._closing:
            raise RuntimeError("the executor's spin thread died (its exception is in the test's warnings): "
                               "nothing is delivered any more")

    def wait_until(self, pred, timeout=60.0, what="condition"):
        """Poll `pred` until true (TimeoutError after `timeout` s)."""
        t_end = time.monotonic() + timeout
        while not pred():
            self._check_executor()
            if time.monotonic() > t_end:
                faulthandler.dump_traceback(all_threads=True)  # where everything was: to read in the test's stderr
                raise TimeoutError(f"timed out waiting for {what}")
            time.sleep(POLL_S)

    def wait_for_connections(self, timeout=60.0):
        """Both ends of every topic matched (a reliable message sent now is delivered)."""
        node_pubs = [p for k, p in self.node._pubs.items()]

        def matched():
            return (self.image_pub.get_subscription_count() > 0 and self.query_pub.get_subscription_count() > 0
                    and all(s.get_publisher_count() > 0 for s in self.node._subs)
                    and all(p.get_subscription_count() > 0 for p in node_pubs)
                    and all(s.get_publisher_count() > 0 for s in self._subs))

        self.wait_until(matched, timeout, "node and client topics to match")

    def wait_frames(self, n, timeout=60.0):
        """Until the node has received `n` frames in all (valid or not)."""
        self.wait_until(lambda: self.node.stats["frames_received"] >= n, timeout, f"{n} frames at the node")

    def publish_and_wait(self, rgb, **kw):
        """Publish a frame and wait until the node has it."""
        n = self.node.stats["frames_received"] + 1
        self.publish_image(rgb, **kw)
        self.wait_frames(n)

    def wait_future(self, fut, timeout=60.0):
        done = threading.Event()
        fut.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            raise TimeoutError("future not done")
        return fut.result()

    def wait_for(self, key, pred=lambda msgs: len(msgs) > 0, timeout=60.0):
        """The messages received on `key` once `pred` holds for them (a bound, not a timing:
        generous for a loaded machine)."""
        t_end = time.monotonic() + timeout
        with self._cv:
            while not pred(self.received[key]):
                self._check_executor()
                left = t_end - time.monotonic()
                if left <= 0:
                    faulthandler.dump_traceback(all_threads=True)
                    raise TimeoutError(f"timed out waiting for {key}: got {len(self.received[key])} messages")
                self._cv.wait(timeout=min(left, EXECUTOR_CHECK_S))
            return list(self.received[key])

    def statuses(self, code=None):
        with self._cv:
            return [s for s in self.received["status"] if code is None or s.code == code]

    def wait_status(self, code, timeout=60.0):
        msgs = self.wait_for("status", lambda ms: any(m.code == code for m in ms), timeout)
        return [m for m in msgs if m.code == code]

    def publish_image(self, rgb: np.ndarray, encoding="rgb8", frame_id="camera_optical_frame"):
        header = Header(frame_id=frame_id)
        header.stamp = self.client.get_clock().now().to_msg()
        self.image_pub.publish(rgb_to_image(rgb, header, encoding))

    def publish_raw_image(self, msg: Image):
        self.image_pub.publish(msg)

    def ask(self, text: str):
        self.query_pub.publish(String(data=text))

    def _spin(self):
        # spin_once in a loop that close() ends: shutting the executor down while its thread
        # waits races rclpy's own guard condition (InvalidHandle in the spin thread)
        while self._spinning.is_set():
            self.executor.spin_once(timeout_sec=SPIN_SLICE_S)

    def close(self):
        self._closing = True
        self._spinning.clear()
        try:
            self._thread.join(timeout=60.0)
        finally:
            self.executor.shutdown(timeout_sec=5.0)
            still_up = self.node.model.runner is not None or self.node.model.loop is not None
            if still_up and self.node._state_machine.current_state[1] != "finalized":
                self.node.trigger_shutdown()
            self.node.destroy_node()
            self.client.destroy_node()
