"""`chatpose demo`: the whole product over ROS 2 on loopback, as a user would run it.

Starts `chatpose-node` in its own process, publishes a real photo on the camera topic and a
query on the query topic, waits for the pose message and the markers, prints them, and writes a
picture (photo with boxes + 3D view of the chosen person's SMPL joints).

The demo also publishes a camera_info for the photo (as a camera driver does), so that the node
places people in metres. The intrinsics of the demo photos are unknown: the camera_info holds
an ASSUMED focal length (DEMO_FOCAL_PER_WIDTH x the image width, about a 53 degree horizontal
field of view, a typical webcam) with the principal point at the image centre; the
translations it gives are only as right as that guess.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# The demo photos' intrinsics are unknown: an assumed focal length of this many image widths
# (horizontal field of view 2 atan(1 / 2) = 53 degrees), principal point at the centre.
DEMO_FOCAL_PER_WIDTH = 1.0


def run_demo(args) -> int:
    from chatpose_ros.core.image_files import read_image
    from chatpose_ros.core.viz import result_picture, save_png

    from .netsafe import configure_loopback_only

    state = Path.cwd() / "build" / "demo_state"
    env_vals = configure_loopback_only(state, force=True)
    image = read_image(args.image)
    print(f"[demo] loopback-only DDS, ROS_DOMAIN_ID={env_vals['ROS_DOMAIN_ID']}; starting chatpose-node "
          f"(profile {args.profile}) in its own process", flush=True)
    node_cmd = [sys.executable, "-m", "chatpose_ros.ros.main", "--state-dir", str(state), "--ros-args",
                "-p", f"model.profile:={args.profile}", "-p", "track_after_query:=false",
                # the mesh from --smpl-model only: no Anny body loading beside the demo's single answer
                "-p", "mesh_body:=smpl"]
    if args.checkpoint:
        node_cmd += ["-p", f"model.checkpoint:={args.checkpoint}"]
    if args.weights_dir:
        node_cmd += ["-p", f"model.weights_dir:={args.weights_dir}"]
    if args.smpl_model:
        node_cmd += ["-p", f"model.smpl_model_path:={args.smpl_model}"]
    node_proc = subprocess.Popen(node_cmd, env=os.environ.copy())

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header, String
    from visualization_msgs.msg import MarkerArray

    from chatpose_ros.msg import PipelineStatus, SmplPoseArray

    from chatpose_ros.core.camera import CameraIntrinsics

    from .convert import msg_to_result, rgb_to_image
    from .tf import camera_info_msg

    rclpy.init()
    node = Node("chatpose_demo_client")
    got: dict[str, object] = {}
    done = threading.Event()
    qos = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)

    def on_poses(msg):
        got.setdefault("poses", msg)
        done.set() if "markers" in got else None

    def on_markers(msg):
        got.setdefault("markers", msg)
        done.set() if "poses" in got else None

    def on_status(msg):
        print(f"[demo] status {['OK', 'WARN', 'ERROR'][min(msg.level, 2)]} {msg.code}: {msg.message}", flush=True)
        if msg.level == PipelineStatus.ERROR and msg.code not in ("invalid_image",):
            got["error"] = msg
            done.set()

    node.create_subscription(SmplPoseArray, "/chatpose_node/poses", on_poses, qos)
    node.create_subscription(MarkerArray, "/chatpose_node/markers", on_markers, qos)
    node.create_subscription(PipelineStatus, "/chatpose_node/status", on_status, qos)
    img_pub = node.create_publisher(Image, "/camera/image_raw", qos)
    query_pub = node.create_publisher(String, "/chatpose_node/query", qos)
    info_pub = node.create_publisher(CameraInfo, "/camera/camera_info", qos)
    height, width = image.shape[:2]
    intrinsics = CameraIntrinsics.from_focal(DEMO_FOCAL_PER_WIDTH * width, width, height)  # assumed: see the docstring
    print(f"[demo] camera_info: intrinsics of the photo unknown, assumed focal length {intrinsics.fx:.0f} px "
          f"({DEMO_FOCAL_PER_WIDTH:g} x image width)", flush=True)

    def publish_frame():
        header = Header(frame_id="camera_optical_frame")
        header.stamp = node.get_clock().now().to_msg()
        info_pub.publish(camera_info_msg(intrinsics, header))
        img_pub.publish(rgb_to_image(image, header, "bgr8"))
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, daemon=True)
    spin.start()
    t0 = time.monotonic()
    asked = False
    t_ask = t0
    code = 1
    try:
        while not done.is_set() and time.monotonic() - t0 < args.timeout:
            if node_proc.poll() is not None:
                print(f"[demo] the node exited with code {node_proc.returncode}", flush=True)
                break
            publish_frame()
            if not asked and query_pub.get_subscription_count() > 0 and img_pub.get_subscription_count() > 0:
                for _ in range(4):  # the camera QoS is best effort: send a few frames once connected
                    time.sleep(0.15)
                    publish_frame()
                print(f"[demo] node ready after {time.monotonic() - t0:.1f} s; asking: {args.query!r}", flush=True)
                query_pub.publish(String(data=args.query))
                t_ask = time.monotonic()
                asked = True
            done.wait(0.15)  # a camera at about 6 Hz: the node's stall watchdog stays quiet
        if "poses" in got:
            arr = got["poses"]
            print(f"[demo] answer after {time.monotonic() - t_ask:.2f} s: {arr.answer!r}; {len(arr.poses)} people, "
                  f"selected #{arr.selected}", flush=True)
            for i, p in enumerate(arr.poses):
                mark = "->" if i == arr.selected else "  "
                box = f"box x={p.box.x_offset} y={p.box.y_offset} w={p.box.width} h={p.box.height}" if p.box_known else "no box"
                orient = ", ".join(f"{v:.3f}" for v in p.theta[:3])
                head = ", ".join(f"{v:.3f}" for v in (p.joints[15].x, p.joints[15].y, p.joints[15].z))
                where = (f"pelvis at [{p.translation.x:.2f}, {p.translation.y:.2f}, {p.translation.z:.2f}] m "
                         "(assumed focal length)" if p.translation_known else "translation unknown")
                print(f"[demo] {mark} person {i}: {p.estimator}, confidence {p.confidence:.2f}, {box}, "
                      f"global orientation (axis-angle, rad) [{orient}], head relative to pelvis [{head}] m, {where}", flush=True)
            markers = got["markers"].markers
            kinds = sorted({(m.ns, m.type) for m in markers})
            print(f"[demo] markers: {len(markers)} ({', '.join(f'{ns}:{t}' for ns, t in kinds)})", flush=True)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            save_png(args.out, result_picture(image, msg_to_result(arr)))
            print(f"[demo] picture written to {args.out}", flush=True)
            code = 0
        elif "error" in got:
            print(f"[demo] failed: {got['error'].message}", flush=True)
        elif time.monotonic() - t0 >= args.timeout:
            print(f"[demo] no answer within {args.timeout:.0f} s", flush=True)
    finally:
        executor.shutdown(timeout_sec=2.0)
        spin.join(timeout=5.0)
        node.destroy_node()
        rclpy.shutdown()
        node_proc.send_signal(signal.SIGINT)
        try:
            node_proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            node_proc.kill()
            node_proc.wait()
    return code
