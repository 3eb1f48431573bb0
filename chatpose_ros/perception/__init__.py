"""The perception stack every embedded profile shares: what is in the image, measured.

    perception.Perception.see(image) -> core.scene.Scene   ONNX people / objects / keypoints models
    perception_attributes                                    colours, facing, posture words of a person
    colours                                                  the named colour vocabulary, region pixels
    keypoints                                                the 15-keypoint layout, SMPL -> keypoints
    scene_input                                              a scene person -> the regressor's input
    regressor.SmplRegressor                                  keypoints -> SMPL pose (torch)
    tracking.PersonTracker                                   stable person ids across frames

Layers: core <- perception <- profiles (chatpose_ros.models.*). Nothing here imports a profile,
the registry, ROS or a front end (tests/test_dependencies.py); assets stay under
chatpose_ros/assets/default/ (the default profile ships them).
"""
