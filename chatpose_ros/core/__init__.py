"""The ROS-free core: configuration, result types, errors, geometry, body model, pipeline seam.

Nothing under `chatpose_ros.core`, `chatpose_ros.perception` or `chatpose_ros.models` imports rclpy
or ROS messages (tests/test_core_no_ros.py guards this).
"""
