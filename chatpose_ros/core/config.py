"""One configuration schema: frozen dataclasses whose fields carry help text.

ROS parameters (with descriptions) and `config/default.yaml` derive from these classes;
tests/test_config_yaml.py keeps the YAML and the dataclass defaults equal.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .errors import ConfigError


def _f(default: Any, help: str, choices: tuple | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class PipelineConfig:
    """Which model answers, and how it runs."""

    profile: str = _f("grounded", "Model profile: 'grounded' (the embedded default, CPU, shipped in the package: "
                      "perception with compositional grounding: a typed parse of the question, open-vocabulary colour / "
                      "garment / WordNet / pose checks, answers that say what was checked, clarifying questions), "
                      "'default' (the older embedded model: a grounding head that always chooses someone), 'reader' "
                      "(the older embedded scene reader, which reads the people as words) or 'chatpose' (LLaVA-style "
                      "ChatPose checkpoint, GPU recommended).", ("grounded", "default", "reader", "chatpose"))
    weights_dir: str = _f("", "Folder of the default profile's weights; empty = the weights shipped in the package.")
    checkpoint: str = _f("", "ChatPose profile: folder of a checkpoint in our layout (see docs/chatpose.md); "
                         "a released CHATPOSE-V0 folder must be converted first with chatpose-convert.")
    lora_adapter: str = _f("", "ChatPose profile: optional PEFT LoRA adapter folder merged into the LLM at load.")
    device: str = _f("auto", "Torch device: 'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:N'. On CUDA the "
                     "default profile's perception also runs on the GPU when onnxruntime-gpu is installed "
                     "(perception_providers; docs/gpu.md).")
    dtype: str = _f("auto", "Weights dtype: 'auto' (on CUDA: bfloat16 for the chatpose profile as the released code, "
                    "float16 where the GPU lacks bf16 and for the embedded LLM; float32 on CPU), 'float32', 'float16', "
                    "'bfloat16'.",
                    ("auto", "float32", "float16", "bfloat16"))
    vision_backend: str = _f("torch", "ChatPose profile vision encoder backend: 'torch', 'onnx' (ONNX Runtime) or "
                             "'tensorrt' (fp16 engine, falls back to torch without TensorRT/CUDA).",
                             ("torch", "onnx", "tensorrt"))
    engine_cache_dir: str = _f("~/.cache/chatpose_ros/engines", "Where exported ONNX files and TensorRT engines are cached "
                               "(the default profile's perception engines under perception/).")
    perception_providers: str = _f("tensorrt,cuda,cpu", "Embedded profiles (default, reader, grounded), when device "
                                   "is cuda (or auto with a GPU): ONNX Runtime execution providers for perception, in "
                                   "order of preference (comma-separated: tensorrt, cuda, cpu); those the installed "
                                   "onnxruntime lacks are skipped, one that fails to start falls to the next, cpu "
                                   "always closes the list.")
    perception_fp16: bool = _f(True, "TensorRT provider of perception: build fp16 engines (else fp32).")
    force_pose_token: bool = _f(True, "When a pose is asked for (default profile: every question but counting / "
                                "yes-no ones) and the model ends its answer without a pose token, append one so "
                                "that a pose is always returned (the reader profile decides by itself; the chatpose "
                                "profile has its own switch, chatpose_force_pose_token).")
    max_new_tokens: int = _f(40, "Maximum number of tokens generated per answer (default and reader profiles; "
                             "the reader publishes the pose before the words, so longer answers do not delay it).")
    chatpose_max_new_tokens: int = _f(512, "ChatPose profile: maximum number of tokens generated per answer "
                                      "(512 as the released code; an answer cut off here gets no pose unless "
                                      "force_pose_token applies).")
    chatpose_force_pose_token: bool = _f(False, "ChatPose profile: append the pose token when a pose is asked for "
                                         "and the answer has none (a pose the model did not give, flagged pose_forced "
                                         "with confidence 0.5). Off as in the released code, which never forces it.")
    smpl_model_path: str = _f("", "Optional SMPL model file (e.g. SMPL_NEUTRAL.pkl, not shippable): enables the "
                              "body mesh; without it joints come from forward kinematics.")
    max_people: int = _f(8, "Maximum number of people detected per image (the default profile names at most 10).")
    llm_int8: bool = _f(False, "Reader profile: quantise the reader's decoder layers to int8 at load (dynamic "
                        "quantisation): a faster prefill on a CPU; chatpose-eval-default reports what it costs.")
    min_grounding_confidence: float = _f(0.1, "Reader profile: when the calibrated probability of the chosen person is "
                                         "below this, nobody is chosen and the node reports no_match on ~/status "
                                         "(0 = always choose; 0.1 chosen on the calibration questions: 5 % of person "
                                         "questions refused, against 46 % at 0.3).")
    max_query_chars: int = _f(500, "Queries longer than this many characters are refused.")
    max_image_pixels: int = _f(16_000_000, "Images with more pixels than this are refused.")
    seed: int = _f(0, "Random seed for sampling-free decoding ties and any stochastic step.")
    cpu_threads: int = _f(0, "CPU threads torch may use for inference (process-wide); 0 = torch's default. "
                          "On small machines, fewer threads than cores leave room for the image callbacks.")
    worker_nice: int = _f(0, "Niceness added to the model's worker process (POSIX, 0..19; 0 = as the node). A "
                          "nicer worker leaves the node's callbacks more CPU but loses it to every other job on "
                          "the machine: with one busy process it tracked at 0.33-0.44x of the camera against "
                          "0.59-0.66x at 0 (docs/benchmarks.md, issue 21).")

    def __post_init__(self) -> None:
        from .onnx_providers import parse_providers

        validate_choices(self)
        parse_providers(self.perception_providers)
        if self.max_new_tokens < 1 or self.chatpose_max_new_tokens < 1:
            raise ConfigError("max_new_tokens and chatpose_max_new_tokens must be >= 1")
        if not 0.0 <= self.min_grounding_confidence <= 1.0:
            raise ConfigError("min_grounding_confidence must be in [0, 1]")
        if self.max_people < 1:
            raise ConfigError("max_people must be >= 1")
        if self.cpu_threads < 0:
            raise ConfigError("cpu_threads must be >= 0")
        if not 0 <= self.worker_nice <= 19:
            raise ConfigError("worker_nice must be in 0..19")
        if self.max_query_chars < 1 or self.max_image_pixels < 1:
            raise ConfigError("max_query_chars and max_image_pixels must be >= 1")


@dataclass(frozen=True)
class NodeConfig:
    """Topics, QoS and behaviour of the ROS node (plain data: no ROS import here).

    RUNTIME: the fields a running node takes changes of (ROS: parameters set at run time, checked
    by __post_init__); every other field is read at configure (ROS: read-only parameters)."""

    RUNTIME: ClassVar[frozenset[str]] = frozenset({
        "tracking_rate_hz", "track_after_query", "track_all_bodies", "max_image_age_s", "query_queue_size",
        "latency_warn_ms", "camera_timeout_s", "status_log_period_s", "marker_lifetime_s", "marker_joint_diameter_m",
        "default_depth_m"})

    image_topic: str = _f("/camera/image_raw", "sensor_msgs/Image topic to read frames from.")
    compressed_image_topic: str = _f("", "Optional sensor_msgs/CompressedImage topic (JPEG/PNG); empty = off.")
    query_topic: str = _f("~/query", "std_msgs/String topic of natural-language queries (e.g. from speech-to-text).")
    image_qos: str = _f("sensor_data", "QoS of the image subscriptions: 'sensor_data' (best effort, depth 1) or "
                        "'reliable' (depth image_qos_depth). Must match the camera driver.", ("sensor_data", "reliable"))
    image_qos_depth: int = _f(1, "History depth of the image subscriptions.")
    output_qos: str = _f("reliable", "QoS of the pose, marker, answer and status publishers.", ("reliable", "best_effort"))
    output_qos_depth: int = _f(10, "History depth of the output publishers.")
    query_queue_size: int = _f(4, "Queries waiting for the model; when full the oldest is dropped and reported.")
    max_image_age_s: float = _f(5.0, "Queries are refused when the latest image is older than this (s); 0 = no limit.")
    track_after_query: bool = _f(True, "After a query chooses a person, keep publishing that person's pose on "
                                 "every frame until a new query or until the person is lost.")
    tracking_rate_hz: float = _f(15.0, "Highest rate of tracking updates (Hz).")
    track_all_bodies: bool = _f(False, "Tracking updates search the whole frame and carry every person in view (the "
                                "chosen one tracked, the others with REP-155 ids kept by box overlap) instead of only "
                                "the chosen person, searched near its last box. Costs a whole-frame perception per "
                                "update: 6-8x the near search with the default profile (see docs/robot.md).")
    reacquire_s: float = _f(0.0, "After track_lost, look for the person in the whole frame by appearance for this "
                            "long and publish them again under the same track id when found (target_reacquired); "
                            "0 (the default) = a lost track ends. Off by default: on the held-out labelled stretch "
                            "of vtest.avi (frames 0-149, docs/robot.md) 3 s took another man in black for the "
                            "target and followed him for 101 frames.")
    frame_id: str = _f("camera_optical_frame", "Frame id used when an image arrives without one.")
    marker_lifetime_s: float = _f(1.0, "Lifetime of RViz markers (s); 0 = forever.")
    marker_joint_diameter_m: float = _f(0.04, "Diameter of joint spheres in the markers (m).")
    default_depth_m: float = _f(3.0, "Distance in front of the camera where a person without known translation "
                                "is drawn in RViz (m).")
    diagnostics_period_s: float = _f(1.0, "Period of /diagnostics messages (s).")
    camera_timeout_s: float = _f(0.5, "A camera that sent frames and then sends none for this long (or for 3 of its own "
                                 "frame periods, when longer) is reported by a 10 Hz timer: status camera_stalled "
                                 "(camera_resumed when frames come again) and /diagnostics WARN with the age of the "
                                 "last frame (s); 0 = off.")
    latency_warn_ms: float = _f(2000.0, "Answers slower than this put /diagnostics in WARN.")
    status_log_period_s: float = _f(30.0, "Repeating statuses (no_camera_info, refused frames, missing_frame_id, "
                                    "tracking errors, ...) are logged the first time, then at most once per this many "
                                    "seconds per kind (with the count not logged); ~/status still carries one per second.")
    camera_info_topic: str = _f("", "sensor_msgs/CameraInfo topic whose intrinsics place people in metres; empty = "
                                "beside the image topic (<image topic's namespace>/camera_info, as image_pipeline). "
                                "Without it translations are unknown (status no_camera_info).")
    depth_enabled: bool = _f(False, "Place people from an aligned depth image (REP-118: 16UC1 mm or 32FC1 m) on "
                             "depth_topic, synchronised with the colour image by stamp: the robust depth under each "
                             "person's torso, back-projected with the depth camera_info (translation_source 'depth'); "
                             "where it cannot be read, the monocular fit ('monocular'), with the reason on ~/status.")
    depth_topic: str = _f("/camera/aligned_depth_to_color/image_raw", "sensor_msgs/Image depth topic ALIGNED to the "
                          "colour image (same frame_id and size; e.g. a RealSense's aligned_depth_to_color/image_raw, a "
                          "ZED's depth/depth_registered), read when depth_enabled.")
    depth_camera_info_topic: str = _f("", "sensor_msgs/CameraInfo of the depth image; empty = beside depth_topic "
                                      "(<depth topic's namespace>/camera_info).")
    depth_sync_slop_s: float = _f(0.05, "Approximate sync (as message_filters): the depth image whose stamp is nearest "
                                  "the colour image's is used if within this many seconds; else status depth_stale and "
                                  "the monocular fit.")
    hri_enabled: bool = _f(True, "Publish the ROS4HRI (REP-155) body topics: /humans/bodies/tracked and per body "
                           "roi, skeleton2d, cropped and joint_states.")
    hri_cropped_rate_hz: float = _f(2.0, "Highest rate of the ROS4HRI cropped images during tracking (Hz): each "
                                    "costs a decode of the frame in the node, so they are not sent with every tracking "
                                    "update; answers to queries always carry them. 0 = only with answers.")
    tf_enabled: bool = _f(True, "Broadcast TF frames (child of the image's optical frame): chatpose_target for the "
                          "chosen person, body_<id> for each body with a known translation; and ~/target_pose.")
    tf_joint_frames: bool = _f(False, "Also broadcast per-joint frames <link>_<id> (head, shoulders, elbows, wrists, "
                               "hips, knees, ankles) as children of body_<id>.")
    speech_discover_voices: bool = _f(True, "Take queries from hri_msgs/LiveSpeech on /humans/voices/<id>/speech for "
                                      "every voice listed on /humans/voices/tracked (final results only).")
    speech_topics: str = _f("", "Comma-separated further hri_msgs/LiveSpeech topics to take queries from (final "
                            "results only); empty = none.")
    mesh_body: str = _f("auto", "Body mesh drawn (TRIANGLE_LIST marker) for the chosen person: 'smpl' = from "
                        "model.smpl_model_path; 'anny' = the Anny body (no SMPL licence; loads in the background, first "
                        "build minutes and ~0.55 GB under ~/.cache/chatpose_ros/anny); 'auto' = 'smpl' when a SMPL file "
                        "is set, else 'anny'; 'off' = none. The Anny mesh is switched off (status mesh_off) when it "
                        "would slow tracking below the camera rate.", ("auto", "smpl", "anny", "off"))
    mesh_rate_hz: float = _f(5.0, "Highest rate of the Anny mesh marker during tracking (Hz): each mesh is a round "
                             "trip to the mesh process and thousands of marker points built in the node, beside the "
                             "poses (never before them); answers to queries always get it. 0 = only with answers.")
    model_in_process: bool = _f(False, "Run the model in the node's process (tests, debugging). False: in a worker "
                                "process of its own, frames handed over through shared memory, restarted if it dies.")

    def __post_init__(self) -> None:
        validate_choices(self)
        if self.query_queue_size < 1 or self.image_qos_depth < 1 or self.output_qos_depth < 1:
            raise ConfigError("queue sizes and QoS depths must be >= 1")
        if self.tracking_rate_hz <= 0 or self.diagnostics_period_s <= 0:
            raise ConfigError("tracking_rate_hz and diagnostics_period_s must be > 0")
        if self.reacquire_s < 0:
            raise ConfigError(f"reacquire_s must be >= 0, got {self.reacquire_s}")
        if self.camera_timeout_s < 0:
            raise ConfigError("camera_timeout_s must be >= 0")
        if self.status_log_period_s < 0:
            raise ConfigError("status_log_period_s must be >= 0")
        if self.depth_sync_slop_s < 0:
            raise ConfigError("depth_sync_slop_s must be >= 0")
        if self.hri_cropped_rate_hz < 0 or self.mesh_rate_hz < 0:
            raise ConfigError("hri_cropped_rate_hz and mesh_rate_hz must be >= 0")


def validate_choices(cfg: Any) -> None:
    """Raise ConfigError when a field with `choices` metadata holds another value."""
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        if choices and getattr(cfg, f.name) not in choices:
            raise ConfigError(f"{type(cfg).__name__}.{f.name}={getattr(cfg, f.name)!r}: expected one of {choices}")


def field_help(cls: type, name: str) -> str:
    """The help text of field `name` of config dataclass `cls`."""
    return next(f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name)


def from_mapping(cls: type, values: dict[str, Any]) -> Any:
    """Build config dataclass `cls` from a mapping, refusing unknown keys and wrong types."""
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(names)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    kwargs = {}
    for k, v in values.items():
        default = names[k].default
        if isinstance(default, bool) and not isinstance(v, bool):
            raise ConfigError(f"{cls.__name__}.{k} must be a bool, got {v!r}")
        if isinstance(default, float) and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if type(default) is not type(v):
            raise ConfigError(f"{cls.__name__}.{k} must be {type(default).__name__}, got {v!r}")
        kwargs[k] = v
    return cls(**kwargs)
