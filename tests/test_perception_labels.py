"""The labelled real-photo set for the perception evaluation is well-formed and loads, and the
evaluation's matcher counts hits, misses and false positives correctly on hand-made cases."""
from __future__ import annotations

import json
import sys
import types
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import chatpose_ros.perception as perception_package
from chatpose_ros.perception.offline import eval_perception as ep

LABELS = Path(__file__).resolve().parent / "data" / "perception_labels.json"
MIN_IMAGES = 12
MIN_PEOPLE_PER_IMAGE = 2
MIN_BOXES = 40
SMALL_MAX_PX = 100       # the label file's definition of a small person (box height)
SMALL_TARGET_PX = 45     # the set must hold far people about 40 px tall


@pytest.fixture(scope="module")
def items():
    return ep.load_labels(LABELS)


def test_label_file_has_a_protocol_and_sources():
    data = json.loads(LABELS.read_text())
    for key in ("protocol", "boxes", "tags", "loading"):
        assert data.get(key), f"label file header lacks {key!r}"
    for rec in data["images"]:
        assert rec["source"].get("package") and rec["source"].get("licence"), rec["id"]


def test_set_size_and_tags(items):
    assert len(items) >= MIN_IMAGES
    assert all(len(it.people) >= MIN_PEOPLE_PER_IMAGE for it in items), \
        [it.id for it in items if len(it.people) < MIN_PEOPLE_PER_IMAGE]
    assert sum(len(it.people) for it in items) >= MIN_BOXES
    tags = Counter(p.tag for it in items for p in it.people)
    assert set(tags) == set(ep.TAGS), tags
    heights = [p.box[3] - p.box[1] for it in items for p in it.people if p.tag == "small"]
    assert all(h < SMALL_MAX_PX for h in heights)
    assert min(heights) <= SMALL_TARGET_PX


def test_every_source_loads_and_every_box_is_inside(items):
    for it in items:
        image = ep.load_image(it)
        h, w = image.shape[:2]
        assert image.dtype == np.uint8 and image.shape[2] == 3 and h > 0 and w > 0, it.id
        for p in it.people:
            x0, y0, x1, y1 = p.box
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (it.id, p.box, (w, h))


def test_stored_copies_are_small():
    """Copies in tests/data/people are 640 px on the long side at most (no large images)."""
    import cv2

    files = sorted((LABELS.parent / "people").glob("*.jpg"))
    assert files
    for f in files:
        im = cv2.imread(str(f))
        assert im is not None and max(im.shape[:2]) <= 640, f


def test_loader_rejects_bad_records(tmp_path):
    good = {"id": "a", "source": {"package": "p", "licence": "l"}, "load": {"kind": "repo_file", "path": "x.jpg"},
            "crop": None, "people": [{"box": [0, 0, 10, 10], "tag": "group"}]}
    for bad in ({"people": [{"box": [0, 0, 10, 10], "tag": "crowd"}]},
                {"people": [{"box": [10, 0, 10, 10], "tag": "group"}]},
                {"load": {"kind": "url", "path": "x"}},
                {"scale": 0}):
        f = tmp_path / "labels.json"
        f.write_text(json.dumps({"images": [dict(good, **bad)]}))
        with pytest.raises(ValueError):
            ep.load_labels(f)
    f.write_text(json.dumps({"images": [good, good]}))
    with pytest.raises(ValueError, match="duplicate"):
        ep.load_labels(f)


def test_load_image_crops_and_scales(tmp_path):
    import cv2

    rgb = np.zeros((40, 60, 3), np.uint8)
    rgb[10:20, 30:50] = (255, 0, 0)
    cv2.imwrite(str(tmp_path / "x.png"), rgb[..., ::-1])
    item = ep.LabelledImage("x", {}, {"kind": "repo_file", "path": "x.png"}, (30, 10, 50, 20), (), scale=0.5)
    out = ep.load_image(item, root=tmp_path)
    assert out.shape == (5, 10, 3) and (out == (255, 0, 0)).all()
    with pytest.raises(ep.InvalidImageError):
        ep.load_image(ep.LabelledImage("y", {}, {"kind": "repo_file", "path": "missing.png"}, None, ()), root=tmp_path)


# -- the matcher ------------------------------------------------------------------------
A = (0.0, 0.0, 10.0, 10.0)
B = (20.0, 0.0, 30.0, 10.0)


def _tally(labels, preds, scores=None, tags=None, ignore=()):
    res = ep.match(labels, preds, scores, ignore=ignore)
    t = ep.Tally()
    t.add(tags or ["group"] * len(labels), res)
    return res, t


def test_match_perfect_and_empty():
    res, t = _tally([A, B], [B, A])
    assert sorted(res.pairs) == [(0, 1), (1, 0)] and t.recall == 1.0 and t.precision == 1.0
    res, t = _tally([A, B], [])
    assert res.missed == [0, 1] and t.recall == 0.0 and t.precision != t.precision  # nan: nothing predicted
    res, t = _tally([], [A])
    assert res.false_positives == [0] and t.precision == 0.0


def test_match_iou_threshold():
    half = (0.0, 0.0, 10.0, 5.0)          # IoU 0.5 with A: a match
    under = (0.0, 0.0, 10.0, 4.9)         # IoU 0.49: not
    assert ep.match([A], [half]).pairs == [(0, 0)]
    res = ep.match([A], [under])
    assert res.pairs == [] and res.missed == [0] and res.false_positives == [0]


def test_match_duplicates_count_once():
    """Two predictions on one person: one hit, one false positive (recall 1, precision 0.5)."""
    res, t = _tally([A], [A, (0.0, 0.0, 10.0, 9.0)], scores=[0.9, 0.8])
    assert res.pairs == [(0, 0)] and res.false_positives == [1]
    assert t.recall == 1.0 and t.precision == 0.5


def test_match_is_greedy_by_score():
    """The higher-scored prediction takes the label it overlaps most, even if a lower-scored
    one would fit it better."""
    lab = [A]
    better, worse = (0.0, 0.0, 10.0, 10.0), (0.0, 0.0, 10.0, 7.0)
    res = ep.match(lab, [better, worse], scores=[0.1, 0.9])
    assert res.pairs == [(1, 0)] and res.false_positives == [0]


def test_match_each_prediction_takes_its_best_label():
    left, right = (0.0, 0.0, 10.0, 10.0), (6.0, 0.0, 16.0, 10.0)  # overlapping labels
    pred = (5.0, 0.0, 15.0, 10.0)  # IoU 0.33 with left, 0.82 with right
    res = ep.match([left, right], [pred])
    assert res.pairs == [(0, 1)] and res.missed == [0]


def test_match_ignore_regions_and_tags():
    region = (100.0, 100.0, 140.0, 140.0)
    inside = (105.0, 105.0, 120.0, 130.0)
    res, t = _tally([A, B], [A, inside], tags=["small", "closeup"], ignore=[region])
    assert res.ignored == [1] and res.false_positives == []
    assert t.precision == 1.0 and t.recall == 0.5
    assert t.tag_recall("small") == 1.0 and t.tag_recall("closeup") == 0.0
    assert t.tag_recall("edge_cut") != t.tag_recall("edge_cut")  # nan: no such label


def test_match_rejects_mismatched_scores():
    with pytest.raises(ValueError):
        ep.match([A], [A, B], scores=[0.5])


def test_evaluate_candidate_and_table(items, tmp_path):
    """A fake candidate that returns the labels themselves scores 1.0; one that finds nothing
    scores 0 recall; the table shows both and an unavailable one."""
    subset = [it for it in items if it.id.startswith("ocv_basketball")][:2]
    images = [np.full((8, 8, 3), k, np.uint8) for k in range(len(subset))]  # pixel value = index

    def oracle(image):
        boxes = [p.box for p in subset[int(image[0, 0, 0])].people]
        return ep.Found(boxes, [1.0] * len(boxes), 1.0)

    perfect = ep.evaluate_candidate(ep.Candidate("oracle", oracle), subset, images, timing=images[:1])
    blind = ep.evaluate_candidate(ep.Candidate("blind", lambda im: ep.Found([], [])), subset, images)
    gone = ep.evaluate_candidate(ep.Candidate("gone", None, "unavailable (no mediapipe)"), subset, images)
    assert perfect.tally.recall == 1.0 and perfect.tally.precision == 1.0
    assert len(perfect.ms) == len(subset) and perfect.people_ms == [1.0] * len(subset)
    assert len(perfect.ms_640) == len(perfect.cpu_ms_640) == ep.TIMING_REPEATS
    assert blind.tally.recall == 0.0 and blind.tally.fn == sum(len(it.people) for it in subset)
    table = ep.markdown_table([perfect, blind, gone], len(subset), 4)
    assert "| oracle | 1.00 | 1.00 |" in table and "| blind | 0.00 | - |" in table
    assert "unavailable (no mediapipe)" in table
    data = ep.reports_to_json([perfect, blind, gone], subset)
    assert [c["name"] for c in data["candidates"]] == ["oracle", "blind", "gone"]
    assert data["candidates"][0]["recall"] == 1.0 and data["candidates"][1]["fn"] == blind.tally.fn
    assert len(data["candidates"][1]["misses"]) == blind.tally.fn
    ep.draw_results(perfect, subset, images, tmp_path)
    assert len(list(tmp_path.glob("oracle__*.png"))) == len(subset)


def test_perception_presets_become_candidates(monkeypatch):
    """Every preset of the perception module is one candidate; its Scene's people become boxes
    and scores, its people-stage timing is kept; a preset that fails to load is unavailable."""
    from chatpose_ros.core.errors import ModelLoadError
    from chatpose_ros.core.scene import COCO17, Scene, ScenePerson

    k = len(COCO17)
    person = ScenePerson(box=(1.0, 2.0, 30.0, 40.0), score=0.7, layout="coco17",
                         keypoints=np.zeros((k, 2), np.float32), keypoint_scores=np.ones(k, np.float32))

    class FakePerception:
        def __init__(self, config):
            if config == "broken":
                raise ModelLoadError("perception model missing")
            self.config = config

        @classmethod
        def from_preset(cls, name, threads):
            return cls(PRESETS[name])

        def see(self, image):
            return Scene(image_size=(image.shape[1], image.shape[0]), people=(person,), timings_ms={"people": 3.0})

    PRESETS = {"good": "good", "bad": "broken"}
    fake = types.ModuleType("fake_perception")
    fake.PERCEPTION_PRESETS, fake.Perception = PRESETS, FakePerception
    monkeypatch.setitem(sys.modules, "chatpose_ros.perception.perception", fake)
    monkeypatch.setattr(perception_package, "perception", fake, raising=False)
    for threads in (None, 1):
        good, bad = ep.perception_candidates(threads)
        assert good.name == "new: good" and bad.name == "new: bad"
        found = good.detect(np.zeros((50, 40, 3), np.uint8))
        assert found.boxes == [(1.0, 2.0, 30.0, 40.0)] and found.scores == [0.7] and found.people_ms == 3.0
        assert bad.detect is None and "perception model missing" in bad.unavailable


def _source_key(item: ep.LabelledImage) -> str:
    """The photo or video an image is cut from."""
    return item.load["path"]


def test_split_halves_keep_sources_whole(items):
    """Every image is in exactly one half; images cut from one photo share a half; frames of
    vtest.avi fall in one stretch per half (A's frames all before B's); each half holds every tag."""
    listed = [i for members in ep.SPLIT_HALVES.values() for i in members]
    assert sorted(listed) == sorted(it.id for it in items)
    half = {i: h for h, members in ep.SPLIT_HALVES.items() for i in members}
    photos: dict[str, set[str]] = {}
    frames: dict[str, list[int]] = {h: [] for h in ep.SPLIT_HALVES}
    for it in items:
        if it.load["kind"] == "video_frame":
            frames[half[it.id]].append(int(it.load["frame"]))
        else:
            photos.setdefault(_source_key(it), set()).add(half[it.id])
    assert all(len(h) == 1 for h in photos.values()), photos
    assert max(frames["A"]) < min(frames["B"])
    for h, members in ep.SPLIT_HALVES.items():
        tags = {p.tag for it in items if it.id in members for p in it.people}
        assert tags == set(ep.TAGS), (h, tags)


def _counts(tp: int, fp: int, fn: int) -> ep.Tally:
    return ep.Tally(tp=tp, fp=fp, fn=fn)


def test_choose_cheapest_reaching_the_targets():
    tallies = [_counts(8, 0, 2), _counts(9, 1, 1), _counts(10, 0, 0), _counts(9, 0, 1)]
    costs = [10.0, 20.0, 50.0, 20.0]
    # 0 misses the recall target; 1 and 3 reach both at the same cost: 3 has the higher precision
    assert ep.choose(tallies, costs) == 3
    # none reaches both: the highest recall + precision
    assert ep.choose([_counts(5, 5, 5), _counts(8, 4, 2)], [1.0, 2.0]) == 1


def test_split_choice_reports_the_other_half():
    """Chosen on A, figures from B (and back): a configuration perfect on A but blind on B is
    chosen on A and shows B's zero recall."""
    items = [ep.LabelledImage(i, {}, {"kind": "file", "path": i}, None, (ep.LabelledPerson((0, 0, 1, 1), "small"),))
             for i in ("a1", "a2", "b1")]
    grid = [ep.PassConfig((256,), (0.2,)), ep.PassConfig((256, 480), (0.2, 0.15))]
    perfect, blind = _counts(1, 0, 0), _counts(0, 0, 1)
    per_image = [[perfect, perfect, blind],    # cheap: good on A only
                 [perfect, perfect, perfect]]  # dearer: good everywhere
    rows = ep.split_choice(items, per_image, grid, halves={"A": ("a1", "a2"), "B": ("b1",)})
    a, b = rows
    assert (a.choice, a.held_out, a.config) == ("A", "B", grid[0])
    assert a.on_choice.recall == 1.0 and a.on_held_out.recall == 0.0 and a.on_all.tp == 2
    assert (b.choice, b.config) == ("B", grid[1]) and b.on_held_out.recall == 1.0
    assert "| B | 256@0.2+480@0.15 |" in ep.split_table(rows)
    with pytest.raises(ValueError):
        ep.split_choice(items, per_image, grid, halves={"A": ("a1",), "B": ("b1",)})


def test_pass_config_cost_counts_padded_input_pixels():
    # 640x480 at long side 480 -> 480 x 360, padded to 480 x 384
    assert ep.PassConfig((480,), (0.15,)).kpx() == pytest.approx(480 * 384 / 1000)
    assert ep.PassConfig((256, 480), (0.2, 0.15)).kpx() == pytest.approx((256 * 192 + 480 * 384) / 1000)


def test_posture_depth_labels_cover_every_box():
    """tests/data/posture_depth_labels.json: one posture and one depth rank per labelled box of each set."""
    from chatpose_ros.perception.offline.eval_posture import LABELS, POSTURES, SETS, closer_pairs

    data = json.loads(LABELS.read_text())
    assert "spent" in data["protocol"] and "check" in data["protocol"]
    for name in SETS.values():
        marks = data["sets"][name]
        items = ep.load_labels(ep.REPO_ROOT / "tests" / "data" / name)
        assert {i.id for i in items} == set(marks)
        for item in items:
            m = marks[item.id]
            assert len(m["posture"]) == len(m["depth_rank"]) == len(item.people), item.id
            assert set(m["posture"]) <= set(POSTURES)
            assert all(0 <= a < len(item.people) and 0 <= b < len(item.people) for a, b in closer_pairs(m))


def test_posture_and_depth_tally():
    from chatpose_ros.perception.offline.eval_posture import Found, closer_pairs, tally

    assert closer_pairs({"depth_rank": [1, 0, None, 1], "closer": [[2, 0]]}) == [(1, 0), (1, 3), (2, 0)]
    near, far = {"facts": 0.1, "box": 0.3, "head": 0.2}, {"facts": 0.5, "box": 0.2, "head": 0.2}
    rows = [{"image": "a", "label": 0, "posture": "sitting", "found": Found(("sitting", 0.8), near)},
            {"image": "a", "label": 1, "posture": "standing", "found": Found(None, far)},
            {"image": "a", "label": 2, "posture": "unclear", "found": Found(("standing", 0.5), far)},
            {"image": "a", "label": 3, "posture": "standing", "found": None},
            {"image": "a", "pair": (0, 1)}, {"image": "a", "pair": (0, 3)}]
    t = tally(rows)
    p = t["posture"]
    assert (p["clear"], p["found"], p["answered"], p["right"], p["answered_on_unclear"]) == (3, 2, 1, 1, 1)
    assert p["coverage"] == 0.5 and p["accuracy"] == 1.0
    assert t["labelled_pairs"] == 2 and t["depth"]["facts"] == {"right": 1, "pairs": 1, "accuracy": 1.0}
    assert t["depth"]["box"]["right"] == 0 and t["depth"]["head"]["right"] == 0  # a tie is wrong
