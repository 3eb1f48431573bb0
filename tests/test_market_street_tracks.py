"""Issue 23's held-out tracking labels on a second video (tests/data/market_street_tracks.json over
tests/data/market_street_tracks.mp4, a 10 fps cut of *A Trip Down Market Street*, 1906): the clip and the labels
are the frozen ones, well-formed, readable by the tracking evaluation (the labels name their video; every frame
of the clip is read at its size), and the stretch shares no frame with the six stills used for grounding
questions. No detector or tracker is run."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from test_vtest_tracks2 import check_boxes

from chatpose_ros.tools.eval_tracking import VIDEO, label_stretches, label_video, load_tracks, read_frames

DATA = Path(__file__).parent / "data"
LABELS = DATA / "market_street_tracks.json"
CLIP = DATA / "market_street_tracks.mp4"
HASHES = DATA / "market_street_tracks.sha256"
WIDTH, HEIGHT = 540, 360  # the source's 640x360 less its black side bars (columns 50-589)
FIRST, LAST, STEP = 0, 99, 10
SOURCE_FIRST, SOURCE_LAST, SOURCE_STEP = 150, 449, 3  # sample.mp4 frames 150, 153, ..., 447
MIN_HEIGHT_PX = 40  # people shorter than this are not labelled (tests/data/README.md)


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(LABELS.read_text())


def test_the_clip_and_labels_are_the_frozen_ones():
    """Both files were frozen before any detector or tracker ran on the clip: their SHA-256 (sha256sum format,
    `sha256sum -c` in tests/data) are recorded beside them."""
    recorded = dict(reversed(line.split()) for line in HASHES.read_text().splitlines() if line.strip())
    assert set(recorded) == {LABELS.name, CLIP.name}
    for name, digest in recorded.items():
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, \
            f"{name} changed after it was frozen: add a new file instead"


def test_header_keyframes_and_the_video_it_names(doc):
    assert (doc["first_frame"], doc["last_frame"], doc["keyframe_step"]) == (FIRST, LAST, STEP)
    assert sorted(int(k) for k in doc["keyframes"]) == [*range(FIRST, LAST + 1, STEP), LAST]
    assert doc["tuning"] == [], "the whole stretch is held out"
    assert label_stretches(LABELS) == {"held_out": (FIRST, LAST)}
    assert label_video(LABELS) == CLIP.resolve()
    assert f"source frames {SOURCE_FIRST}-{SOURCE_LAST}, every {SOURCE_STEP}rd" in doc["video"]


def test_boxes_inside_the_image_by_eye_and_people_described(doc):
    check_boxes(doc, (WIDTH, HEIGHT), MIN_HEIGHT_PX, sources={"added by eye"})  # no detector ran on this clip


def test_the_stretch_shares_no_frame_with_the_grounding_stills():
    """people3/ holds the six sample.mp4 frames used for grounding questions; none is in this stretch."""
    stills = {int(m.group(1)) for p in (DATA / "people3").glob("market_street_f*.jpg")
              if (m := re.fullmatch(r"market_street_f(\d+)\.jpg", p.name))}
    assert len(stills) == 6
    assert not stills & set(range(SOURCE_FIRST, SOURCE_LAST + 1))


def test_the_evaluation_reads_every_frame_of_the_clip(doc):
    """eval_tracking reads the clip the labels name, frame for frame (100 frames of 540x360), and interpolates the
    keyframes to every frame; a person hidden at a keyframe keeps a box flagged hidden around it."""
    frames = read_frames(FIRST, LAST, label_video(LABELS))
    assert sorted(frames) == list(range(FIRST, LAST + 1))
    assert {f.shape for f in frames.values()} == {(HEIGHT, WIDTH, 3)}
    with pytest.raises(ValueError, match="no frame 100"):
        read_frames(LAST + 1, LAST + 1, CLIP)
    header, truth = load_tracks(LABELS)
    assert header["video_path"] == "tests/data/market_street_tracks.mp4" and "keyframes" not in header
    assert sorted(truth) == list(range(FIRST, LAST + 1)) and all(truth[f] for f in truth)
    assert truth[60][4].hidden and truth[62][4].hidden and not truth[68][4].hidden
    box90, box99 = (next(r["box"] for r in doc["keyframes"][k] if r["id"] == 7) for k in ("90", "99"))
    assert truth[95][7].box == pytest.approx([a + 5 / 9 * (b - a) for a, b in zip(box90, box99)])


def test_a_label_file_without_video_path_labels_vtest(tmp_path):
    """The earlier label files name no video_path: they label vtest.avi; a bad video_path is refused."""
    assert label_video(DATA / "vtest_tracks3.json") == VIDEO
    data = json.loads(LABELS.read_text())
    data["video_path"] = str(CLIP.resolve())
    (tmp_path / "abs.json").write_text(json.dumps(data))
    assert label_video(tmp_path / "abs.json") == CLIP.resolve()
    data["video_path"] = ""
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="video_path"):
        label_video(tmp_path / "bad.json")
