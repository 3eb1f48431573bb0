"""Launch chatpose_node (for users with ROS 2 installed: `ros2 launch chatpose_ros chatpose.launch.py`).

Arguments:
  params_file   YAML of parameters (default: the package's config/default.yaml)
  image_topic   camera image topic (default /camera/image_raw)
  profile       model profile: default | reader | grounded | chatpose (chatpose_ros.profiles.PROFILES)
  checkpoint    ChatPose checkpoint folder (profile chatpose)
  autostart     configure and activate at start (true) or wait for a lifecycle manager (false)
  rviz          also start rviz2 with the package's rviz/chatpose.rviz (camera image, markers, TF,
                target pose); default false

The node is a lifecycle node; with autostart it configures and activates itself. Without ROS
installed, run the same node with `chatpose-node --params-file config/default.yaml`.
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node


def generate_launch_description():
    share = get_package_share_directory("chatpose_ros")
    args = [
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "default.yaml")),
        DeclareLaunchArgument("image_topic", default_value="/camera/image_raw"),
        DeclareLaunchArgument("profile", default_value="grounded"),
        DeclareLaunchArgument("checkpoint", default_value=""),
        DeclareLaunchArgument("autostart", default_value="true"),
        DeclareLaunchArgument("rviz", default_value="false"),
    ]
    overrides = {
        "image_topic": LaunchConfiguration("image_topic"),
        "model.profile": LaunchConfiguration("profile"),
        "model.checkpoint": LaunchConfiguration("checkpoint"),
    }
    common = dict(package="chatpose_ros", executable="chatpose_node", name="chatpose_node", namespace="",
                  output="screen", parameters=[LaunchConfiguration("params_file"), overrides])
    return LaunchDescription(args + [
        LifecycleNode(condition=IfCondition(LaunchConfiguration("autostart")), **common),
        LifecycleNode(condition=UnlessCondition(LaunchConfiguration("autostart")), arguments=["--no-autostart"], **common),
        Node(condition=IfCondition(LaunchConfiguration("rviz")), package="rviz2", executable="rviz2", name="rviz2",
             output="screen", arguments=["-d", os.path.join(share, "rviz", "chatpose.rviz")]),
    ])
