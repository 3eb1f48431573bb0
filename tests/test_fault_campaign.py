"""Fault campaign in the suite (issue 21; the bench mode runs it larger: chatpose_ros/tools/fault_campaign.py):
lifecycle cycles leak no thread, file, shared-memory block, process or memory; a query storm
keeps its queue bounded and reports every drop; frames at 60 Hz and at 4K keep the node serving,
every frame used or counted as skipped, memory bounded; the clock jumping back (a bag replay
loop under use_sim_time) resets tracking with a report, and the node answers on."""
from __future__ import annotations

import pytest

from chatpose_ros.tools.fault_campaign import clock_jump, frame_flood, leaks, lifecycle_cycles, query_storm
from fakes import FakePipeline, fake_pipeline

pytestmark = pytest.mark.timeout(240)


def _ask_and_wait(h, i):
    h.publish_and_wait(__import__("numpy").zeros((30, 40, 3), "uint8"))
    n = h.node.stats["queries_answered"] + 1
    h.ask(f"cycle {i}")
    h.wait_until(lambda: h.node.stats["queries_answered"] >= n, what="the cycle's answer")


def _serving(h):
    """What each lifecycle cycle does once active: wait for the connections, ask, wait for the answer."""
    def serve(node, i):
        h.wait_for_connections()
        _ask_and_wait(h, i)
    return serve


def test_ten_lifecycle_cycles_leak_nothing(ros_harness):
    fake = FakePipeline()
    h = ros_harness(lambda cfg: fake, autostart=False)
    figures = lifecycle_cycles(h.node, 10, _serving(h))
    print(figures)
    assert not figures["failed"] and not leaks(figures), figures


def test_lifecycle_cycles_with_a_worker_process_leak_no_process_or_shared_memory(ros_harness):
    h = ros_harness(fake_pipeline, autostart=False, model_in_process=False)
    figures = lifecycle_cycles(h.node, 3, _serving(h))
    print(figures)
    assert not figures["failed"] and not leaks(figures), figures
    assert figures["after_last"]["children"] == 0 and figures["after_last"]["shm_blocks"] == figures["after_first"]["shm_blocks"]


def test_query_storm_keeps_the_queue_bounded_and_reports_every_drop(ros_harness):
    h = ros_harness(lambda cfg: FakePipeline(delay_s=0.02), track_after_query=False, query_queue_size=4,
                    output_qos_depth=1000)
    figures = query_storm(h, queries=300, seconds=3.0)
    print(figures)
    assert figures["received"] > 0 and figures["max_queue"] <= 4
    assert figures["answered"] + figures["dropped"] + figures["invalid"] == figures["received"], figures
    assert figures["drops_on_status"] == figures["dropped"] > 0, figures


def _diagnostics_value(h, key: str) -> int:
    """`key` in the newest /diagnostics message of the node."""
    h.wait_for("diagnostics")
    values = {kv.key: kv.value for kv in h.received["diagnostics"][-1].status[0].values}
    return int(values.get(key, "0"))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("hz, size, seconds", [(60.0, (320, 240), 2.0), (10.0, (3840, 2160), 6.0)])
def test_frames_at_60_hz_and_at_4k_keep_the_node_serving_and_are_accounted_for(ros_harness, hz, size, seconds):
    h = ros_harness(lambda cfg: FakePipeline(), tracking_rate_hz=30.0, diagnostics_period_s=0.2)
    figures = frame_flood(h, hz, seconds, size)
    print(figures)
    assert figures["answered"] == 1 and figures["tracking_updates"] > 0 and figures["invalid"] == 0, figures
    # every frame received was used (an answer, a tracking update) or skipped for a newer one, but the latest
    assert figures["used"] > 1 and (figures["skipped"] > 0 or hz <= 30.0), figures  # tracking_rate_hz 30 < 60 Hz
    assert figures["received"] - figures["skipped"] - figures["used"] in (0, 1), figures
    stats = h.node.stats
    h.wait_until(lambda: (_diagnostics_value(h, "frames_skipped"), _diagnostics_value(h, "frames_used"))
                 == (stats["frames_skipped"], stats["frames_used"]), 10, "the frame counts on /diagnostics")
    w, hgt = size
    frame_mb = w * hgt * 3 / 2**20
    # memory levels off: the second half holds at most a few more frames in flight than the first (a
    # frame kept per frame would be 20+ more; the node keeps the latest frame only; this process also
    # holds the camera's and DDS's buffers: the absolute bound is loose)
    assert figures["rss_mb_max_second_half"] <= figures["rss_mb_max_first_half"] + max(3 * frame_mb, 20.0), figures
    assert figures["rss_mb_max"] - figures["rss_mb_before"] < max(150.0, 32 * frame_mb), figures


@pytest.mark.timeout(120)
def test_clock_jumping_back_resets_tracking_with_a_report_and_the_node_answers_on(ros_harness):
    h = ros_harness(lambda cfg: FakePipeline(), use_sim_time=True, tracking_rate_hz=30.0, diagnostics_period_s=0.2)
    figures = clock_jump(h)
    print(figures)
    assert figures["tracking_before"] and not figures["tracking_after_jump"], figures
    assert figures["clock_jumps"] >= 1 and figures["clock_jumped_on_status"] == 1, figures
    assert figures["answered_after"] == 1 and figures["tracking_again"], figures
    assert figures["diagnostics_since_jump"] > 0, figures  # the steady clock drives /diagnostics
    (rep,) = h.wait_status("clock_jumped")
    assert "tracking dropped" in rep.message and rep.level == 1
