"""The by-eye object labels (tests/data/object_labels.json) are well-formed and lie inside their images,
eval_objects' matcher counts hits, misses, duplicates and false detections correctly on hand-made
cases, and NanoDet's letterbox input gives boxes in the image's own pixels."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from chatpose_ros.core.errors import ConfigError
from chatpose_ros.core.scene import SceneObject
from chatpose_ros.perception.offline import eval_objects as eo

LABELS = Path(__file__).resolve().parent / "data" / "object_labels.json"
PERSON_SETS = ("perception_labels.json", "perception_labels2.json", "perception_labels3.json",
               "perception_labels4.json")


@pytest.fixture(scope="module")
def labels():
    return eo.load_object_labels(LABELS)


def test_header_and_coverage(labels):
    data = json.loads(LABELS.read_text())
    for key in ("protocol", "boxes", "classes", "ignore", "check_set"):
        assert data.get(key), f"label file header lacks {key!r}"
    assert labels.check_set in PERSON_SETS
    assert {im.set for im in labels.images} == set(PERSON_SETS)
    # every image of the four person label sets is here, once
    for name in PERSON_SETS:
        ids = [r["id"] for r in json.loads((LABELS.parent / name).read_text())["images"]]
        assert sorted(ids) == sorted(im.id for im in labels.images if im.set == name), name
    check = [o for im in labels.images if im.set == labels.check_set for o in im.objects]
    assert len(check) >= 15 and sum(o.cls in eo.HELD for o in check) >= 4


def test_every_box_is_inside_its_image(labels):
    pytest.importorskip("cv2")
    missing = [im.id for im in labels.images if im.set == "perception_labels.json"]
    try:
        images = eo.load_pixels(labels)
    except Exception as e:  # the first set reads Debian opencv-doc files (scripts/setup.sh installs them)
        pytest.skip(f"cannot load every image ({e}); first set: {len(missing)} images")
    for im, px in zip(labels.images, images):
        h, w = px.shape[:2]
        for b in [o.box for o in im.objects] + list(im.ignore):
            assert 0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h, (im.id, b, (w, h))


def test_loader_rejects_bad_records(tmp_path):
    good = {"set": "s.json", "id": "a", "objects": [{"class": "cup", "box": [0, 0, 10, 10]}]}
    for bad in ({"objects": [{"class": "person", "box": [0, 0, 10, 10]}]},
                {"objects": [{"class": "cup", "box": [0, 0, 10, 10], "also": ["mug"]}]},
                {"objects": [{"class": "cup", "box": [10, 0, 10, 10]}]}):
        f = tmp_path / "labels.json"
        f.write_text(json.dumps({"check_set": "s.json", "images": [dict(good, **bad)]}))
        with pytest.raises(ValueError):
            eo.load_object_labels(f)
    f.write_text(json.dumps({"check_set": "s.json", "images": [good, good]}))
    with pytest.raises(ValueError):
        eo.load_object_labels(f)


def _image(*objects, ignore=()):
    return eo.ObjectImage("s.json", "a", tuple(eo.LabelledObject(*o) for o in objects), tuple(ignore))


def test_matcher_counts():
    im = _image(("sports ball", (100, 100, 140, 140)), ("car", (300, 0, 400, 60), ("truck",)),
                ("couch", (0, 200, 400, 300)), ignore=[(500, 0, 600, 100)])
    found = [
        SceneObject("sports ball", (104, 98, 150, 150), 0.9),     # hit (IoU >= 0.3)
        SceneObject("sports ball", (100, 100, 130, 135), 0.5),    # duplicate of the ball
        SceneObject("truck", (310, 5, 390, 50), 0.8),             # hit through 'also'
        SceneObject("couch", (150, 230, 200, 260), 0.6),          # small, centre inside: hit
        SceneObject("vase", (110, 105, 135, 135), 0.7),           # wrong class on the ball: false
        SceneObject("bird", (520, 10, 580, 60), 0.7),             # in the ignore region
        SceneObject("cup", (10, 10, 30, 30), 0.4),                # nothing there: false
    ]
    res = eo.match_objects(im, found)
    assert sorted(res.pairs) == [(0, 0), (2, 1), (3, 2)]
    assert res.duplicates == [1] and res.ignored == [5] and sorted(res.false) == [4, 6] and res.missed == []
    assert res.located == 3
    res = eo.match_objects(im, [SceneObject("refrigerator", (90, 90, 150, 150), 0.9)])
    assert res.pairs == [] and res.false == [0] and res.missed == [0, 1, 2] and res.located == 1


def test_nanodet_letterbox_boxes_in_image_pixels():
    """The same scene with a black band added below: letterbox sees the same 416 px input, so the
    objects come back at the same pixels."""
    cv2 = pytest.importorskip("cv2")
    from chatpose_ros.perception.perception import MODEL_FILES, PERCEPTION_DIR, NanoDet, PerceptionConfig

    photo = Path("/usr/share/doc/opencv-doc/examples/data/messi5.jpg")
    if not photo.is_file():
        pytest.skip("Debian opencv-doc is not installed")
    img = cv2.imread(str(photo))[..., ::-1].copy()
    h, w = img.shape[:2]
    assert w > h
    padded = np.zeros((w, w, 3), np.uint8)
    padded[:h] = img
    nd = NanoDet(PERCEPTION_DIR / MODEL_FILES["nanodet"], 1)
    a = nd.run(img, 0.35, 0.5, 20, resize="letterbox")
    b = [o for o in nd.run(padded, 0.35, 0.5, 20, resize="letterbox") if o.box[1] < h]
    assert any(o.label == "sports ball" for o in a)
    assert [o.label for o in a] == [o.label for o in b]
    for oa, ob in zip(a, b):
        assert np.allclose(oa.box, np.minimum(ob.box, [w, h, w, h]), atol=1.0) and oa.box[2] <= w and oa.box[3] <= h
    # the config option reaches NanoDet through see()
    from chatpose_ros.perception.perception import Perception, parse_variant

    seen = Perception(parse_variant("movenet256:object_resize=letterbox")[1]).see(img).objects
    assert [(o.label, o.score) for o in seen] == [(o.label, o.score) for o in a]
    with pytest.raises(ConfigError):
        replace(PerceptionConfig(), object_resize="crop")
