"""Typed errors for everything a user can cause. Each carries a stable machine-readable `code`
that the ROS layer copies into `PipelineStatus.code`."""
from __future__ import annotations


class ChatPoseError(Exception):
    """Base class of every error this package raises on purpose."""

    code = "error"


class ConfigError(ChatPoseError, ValueError):
    """A configuration value is unknown or out of range."""

    code = "invalid_config"


class InvalidImageError(ChatPoseError, ValueError):
    """An image cannot be decoded: unknown encoding, wrong size, truncated or huge data."""

    code = "invalid_image"


class InvalidCameraInfoError(ChatPoseError, ValueError):
    """Camera intrinsics are unusable (zero/negative focal length, non-finite values, unknown
    distortion model) or do not match the image they are meant for (size mismatch)."""

    code = "invalid_camera_info"


class InvalidQueryError(ChatPoseError, ValueError):
    """A query is empty, not text, or longer than allowed."""

    code = "invalid_query"


class ModelLoadError(ChatPoseError, RuntimeError):
    """A model file is missing, unreadable or does not match the expected layout."""

    code = "model_load_failed"


class CheckpointError(ModelLoadError):
    """A checkpoint is malformed or mismatched (missing keys, wrong shapes, wrong layout)."""

    code = "invalid_checkpoint"


class BackendUnavailableError(ChatPoseError, RuntimeError):
    """An optional backend (TensorRT, CUDA, ONNX Runtime, SMPL files) is not available."""

    code = "backend_unavailable"


class InferenceError(ChatPoseError, RuntimeError):
    """Inference failed on an input that passed validation."""

    code = "inference_failed"


class WorkerCrashedError(InferenceError):
    """The model's worker process died (killed, out of memory, a crash in native code) while
    answering; it is restarted."""

    code = "worker_crashed"


class DepthInputError(ChatPoseError, ValueError):
    """The optional depth image cannot place people for this frame (core/depth.py): the node
    falls back to the monocular fit and reports the subclass's code."""

    code = "invalid_depth"


class DepthEncodingError(DepthInputError):
    """A depth image whose encoding is not REP-118's 16UC1 (mm) or 32FC1 (m)."""

    code = "depth_encoding"


class DepthSizeMismatchError(DepthInputError):
    """The depth image's size differs from the colour image's or from its own camera_info's (not
    aligned to the colour image)."""

    code = "depth_size_mismatch"


class DepthFrameMismatchError(DepthInputError):
    """The depth image is in another frame than the colour image (not registered to it)."""

    code = "depth_frame_mismatch"


class DepthStaleError(DepthInputError):
    """No depth image within the sync slop of the colour image's stamp (or none received yet)."""

    code = "depth_stale"


class NoDepthCameraInfoError(DepthInputError):
    """No valid camera_info for the depth image: its pixels cannot be back-projected."""

    code = "no_depth_camera_info"
