"""chatpose_ros: ask about the people in an image, get their SMPL body poses.

`chatpose_ros.core` and `chatpose_ros.models` know nothing of ROS; `chatpose_ros.ros` is the
thin ROS 2 layer. `chatpose_ros.msg` / `chatpose_ros.action` are the rosidl-generated
interfaces, which may be installed in another directory than this source tree: extending
the package path lets both halves import under one name.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = "0.1.0"
