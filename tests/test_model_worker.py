"""The model in its own process (chatpose_ros.core.worker_process, model_worker; no ROS): frames through shared
memory decoded in the worker, typed errors across the process boundary, crash and restart."""
from __future__ import annotations

import os

import numpy as np
import pytest

from chatpose_ros.core.config import NodeConfig, PipelineConfig
from chatpose_ros.core.errors import ChatPoseError, ConfigError, InvalidImageError, ModelLoadError, WorkerCrashedError
from chatpose_ros.core.image_codec import encode_raw
from chatpose_ros.core.images import RawImage, RgbImage
from chatpose_ros.core.model_runners import InProcessRunner
from chatpose_ros.core.model_worker import ModelHost
from chatpose_ros.core.session import Session
from chatpose_ros.core.worker_process import ProcessRunner
from fakes import FakePipeline, crashing_pipeline, echo_pipeline, profile_error_pipeline, rewrapping_pipeline

pytestmark = pytest.mark.timeout(300)


def _raw(rgb, encoding="bgr8"):
    data, step = encode_raw(rgb, encoding)
    return RawImage(memoryview(data), rgb.shape[1], rgb.shape[0], encoding, step)


def _broken_factory(cfg):
    raise ModelLoadError("weights file /nope/x.safetensors not found")


@pytest.fixture
def runner():
    made = []

    def make(factory, **cfg):
        made.append(ProcessRunner(factory, PipelineConfig(**cfg)))
        made[-1].start()
        return made[-1]

    yield make
    for r in made:
        r.close()


def test_frames_reach_the_worker_intact_and_decoded_there(runner):
    r = runner(echo_pipeline)
    assert r.model_id == "fake:echo" and r.alive and r.pid is not None
    rng = np.random.default_rng(0)
    for shape in ((48, 64), (480, 640), (30, 40)):  # the shared block grows, and is reused
        rgb = rng.integers(0, 255, shape + (3,), dtype=np.uint8)
        for image in (_raw(rgb, "bgr8"), _raw(rgb, "rgb8"), RgbImage(rgb)):
            result, size = r.estimate(image, "the person on the right")
            assert result.answer == f"sum={int(rgb.astype(np.int64).sum())} shape={shape[0]}x{shape[1]}"
            assert size == (shape[1], shape[0]) and result.selected == 1 and len(result.people) == 2
    people, size = r.observe(_raw(rgb), near=(0.0, 0.0, 10.0, 10.0))
    assert len(people) == 2 and size == (40, 30)
    result, size = r.estimate(None, "text only")
    assert result.answer == "none" and size is None


def test_in_process_runner_answers_the_same(runner):
    rgb = np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    here = InProcessRunner(echo_pipeline, PipelineConfig())
    here.start()
    there = runner(echo_pipeline)
    assert here.estimate(_raw(rgb), "q")[0].answer == there.estimate(_raw(rgb), "q")[0].answer
    assert here.runtime == there.runtime == "fake runtime"  # across the process boundary too
    here.close()
    assert here.pipeline is None


def test_errors_keep_their_type_across_the_process_boundary(runner):
    r = runner(echo_pipeline, max_image_pixels=100)
    big = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(InvalidImageError, match="max_image_pixels"):
        r.estimate(_raw(big), "q")
    assert r.estimate(None, "still serving")[0].answer == "none"


def test_a_profile_own_typed_error_keeps_its_code_across_the_process_boundary(runner):
    r = runner(profile_error_pipeline)
    with pytest.raises(InvalidImageError, match="unusable") as info:
        r.estimate(RgbImage(np.zeros((8, 8, 3), np.uint8)), "q")
    assert info.value.code == "invalid_image"


def test_a_failed_request_leaves_no_view_into_shared_memory(runner, capfd):
    r = runner(rewrapping_pipeline)  # decodes the frame, then fails in the pipeline
    for side in (8, 20, 40):  # a bigger block each time: the worker lets go of the last one
        with pytest.raises(ChatPoseError):
            r.estimate(_raw(np.zeros((side, side, 3), np.uint8), "rgb8"), "q")
    r.close()  # the worker exits: its blocks are closed
    err = capfd.readouterr().err
    assert "BufferError" not in err and "Exception ignored" not in err, err


def test_load_failure_is_a_typed_error():
    r = ProcessRunner(_broken_factory, PipelineConfig())
    with pytest.raises(ModelLoadError, match="not found"):
        r.start()
    assert not r.alive
    r.close()


def test_crash_is_detected_and_restart_serves_again(runner):
    r = runner(crashing_pipeline)
    first = r.pid
    with pytest.raises(WorkerCrashedError, match="died"):
        r.estimate(None, "crash now")
    assert not r.alive
    r.restart()
    assert r.alive and r.pid != first
    assert r.estimate(None, "hello")[0].answer


def test_close_frees_the_shared_block(runner):
    from multiprocessing import shared_memory

    r = runner(echo_pipeline)
    r.estimate(RgbImage(np.zeros((8, 8, 3), np.uint8)), "q")
    name = r._shm.name
    r.close()
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=name)


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="POSIX priorities")
def test_worker_runs_nicer_than_the_node_by_worker_nice(runner):
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    nicer = runner(echo_pipeline, worker_nice=7)
    same = runner(echo_pipeline, worker_nice=0)
    assert os.getpriority(os.PRIO_PROCESS, nicer.pid) == min(19, ours + 7)
    assert os.getpriority(os.PRIO_PROCESS, same.pid) == ours


def test_worker_nice_is_validated():
    with pytest.raises(ConfigError):
        PipelineConfig(worker_nice=20)
    with pytest.raises(ConfigError):
        PipelineConfig(worker_nice=-1)


def test_model_host_states_through_load_serve_stop_and_close():
    host = ModelHost()
    assert host.state == "unconfigured" and host.runner is None and host.stop(1.0)
    with pytest.raises(ModelLoadError, match="not found"):
        host.load(_broken_factory, PipelineConfig(), None, in_process=True)
    assert host.state.startswith("load failed:") and "not found" in host.state and host.runner is None
    pipeline = FakePipeline()
    runner = host.load(lambda cfg: pipeline, PipelineConfig(), None, in_process=True)
    assert host.runner is runner and host.state == "loaded"
    session = Session(NodeConfig(), max_query_chars=100)
    events = []
    host.serve(session, events.extend, on_error=events.append)
    job, _ = session.submit("the person on the right")
    assert job.done.wait(30) and job.result.model_id == "fake:0" and pipeline.calls == [(None, job.query)]  # a bound
    host.loop.state = "restarting"  # the loop's state is the host's while it runs, and kept after it
    assert host.state == "restarting"
    session.stop()
    assert host.stop(30.0) and host.loop is None and host.state == "restarting"
    host.close()
    assert pipeline.closed and host.runner is None and host.state == "unconfigured"


def test_the_asker_reaches_a_profile_that_keeps_conversations_and_no_other(runner):
    from fakes import conversation_pipeline

    rgb = np.zeros((8, 8, 3), np.uint8)
    for r in (InProcessRunner(conversation_pipeline, PipelineConfig()), runner(conversation_pipeline)):
        r.start()
        result, _ = r.estimate(RgbImage(rgb), "is he waving?", conversation="voice_7")
        assert result.answer == "conversation=voice_7"
    plain = InProcessRunner(echo_pipeline, PipelineConfig())  # takes (image, query) only
    plain.start()
    assert plain.estimate(RgbImage(rgb), "q", conversation="voice_7")[0].query == "q"
