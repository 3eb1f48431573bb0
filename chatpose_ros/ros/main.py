"""`chatpose-node`: run the node with a params file, without `ros2 launch`.

    chatpose-node --params-file config/default.yaml [--no-autostart] [--executor events|multi] [--ros-args ...]

DDS is kept on loopback unless the environment already chooses (see netsafe.py).
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

GIL_SWITCH_INTERVAL_S = 0.001
EXECUTOR_THREADS = 4  # the multi-threaded executor's threads
EXECUTORS = ("events", "multi")
# events: measured side by side against multi (docs/benchmarks.md; issue 11: query latency, tracking rate and
# image callback gaps better in every pair; issue 21, `chatpose-bench executors`: tracking better in 4 of 4 pairs,
# action goals as fast as the same question on the topic on both once a waiting goal stopped spinning)
DEFAULT_EXECUTOR = "events"
# rclpy 7.1.5's EventsExecutor.spin() ran no callback here (a timer never fired); spin_once does:
# either executor is spun in slices of at most this long (each returns after one callback), so that
# a stop asked by a signal is seen within one
SPIN_SLICE_S = 0.5


def make_executor(kind: str, context=None):
    """The executor that spins the node: "events", rclpy.experimental.EventsExecutor (one thread,
    its event loop in C++; an action goal waits for its answer in a thread of its own, see
    ros/estimate_action.py), or "multi", rclpy's MultiThreadedExecutor (EXECUTOR_THREADS
    threads, its wait set rebuilt in Python for every callback)."""
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor(context=context)
    if kind != "multi":
        raise ValueError(f"executor must be one of {EXECUTORS}, not {kind!r}")
    from rclpy.executors import MultiThreadedExecutor

    return MultiThreadedExecutor(num_threads=EXECUTOR_THREADS, context=context)


def default_params_file() -> str:
    """config/default.yaml of the source tree, or of the install space's share folder."""
    here = Path(__file__).resolve().parents[2] / "config" / "default.yaml"
    if here.exists():
        return str(here)
    try:
        from ament_index_python.packages import get_package_share_directory

        return str(Path(get_package_share_directory("chatpose_ros")) / "config" / "default.yaml")
    except Exception:
        return ""


def main(argv: list[str] | None = None, pipeline_factory=None) -> int:
    """`pipeline_factory`: the node's (default: the profile registry's build_pipeline)."""
    argv = sys.argv[1:] if argv is None else argv
    ros_args: list[str] = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i:]
    parser = argparse.ArgumentParser(prog="chatpose-node", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params-file", default=default_params_file(), help="ROS parameters YAML (default: config/default.yaml)")
    parser.add_argument("--no-autostart", action="store_true",
                        help="stay unconfigured until a lifecycle manager configures and activates the node")
    parser.add_argument("--state-dir", default=os.environ.get("CHATPOSE_STATE_DIR", str(Path.cwd() / "build" / "ros_state")),
                        help="folder for the loopback Fast DDS profile and ROS logs")
    parser.add_argument("--executor", choices=EXECUTORS, default=DEFAULT_EXECUTOR,
                        help="events: rclpy.experimental.EventsExecutor (default); multi: rclpy's MultiThreadedExecutor")
    args = parser.parse_args(argv)

    from chatpose_ros.core.logs import StderrRelay, quiet_libraries

    from .netsafe import configure_loopback_only

    configure_loopback_only(args.state_dir)
    # an operator's log: no progress bars or library advice (the model's worker inherits this
    # environment), and no write to stderr ever blocks the node, even with nobody reading it
    quiet_libraries()
    StderrRelay.install()

    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions

    from .node import ChatPoseNode

    rclpy_args = ["--ros-args"] + (["--params-file", args.params_file] if args.params_file else []) + ros_args[1:]
    # The model loop's turnaround between two frames (reply in, next frame out) needs the GIL a
    # few times while the publishing and executor threads run Python: a shorter switch interval
    # (default 5 ms) keeps the model's process from idling meanwhile.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    # SIGINT / SIGTERM only ask the spin loop to stop: the context stays valid until the model and
    # the publishing threads are stopped, so nothing publishes into a context already shut down
    rclpy.init(args=rclpy_args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _sig, _frame: stop.set())
    node = ChatPoseNode() if pipeline_factory is None else ChatPoseNode(pipeline_factory=pipeline_factory)
    executor = make_executor(args.executor)
    executor.add_node(node)
    code = 0
    try:
        if not args.no_autostart and not node.autostart():
            code = 1  # stays unconfigured and serves its lifecycle services; see the error logged
        while not stop.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=SPIN_SLICE_S)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close_model()  # the model's worker process and its shared memory; queued results dropped
        executor.shutdown(timeout_sec=5.0)
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
