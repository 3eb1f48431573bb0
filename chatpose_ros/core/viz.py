"""Pictures of results: the skeleton drawn over the photo, and a 3D view of the SMPL joints.

Pure drawing with OpenCV on numpy arrays (no display needed); kept apart from inference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .body import SMPL_BONES, SMPL_JOINT_NAMES
from .types import PersonPose, PoseResult

SELECTED_RGB = (40, 220, 80)
OTHER_RGB = (200, 200, 200)
UNSEEN_RGB = (175, 175, 175)  # 3D view: joints the camera did not see (joint_confidence 0) and their bones


def seen_joints(person: PersonPose) -> np.ndarray:
    """(24,) bool: the joints the camera saw (joint_confidence > 0); all True when the
    estimator gives no per-joint confidence, all False for a generated pose."""
    if person.generated:
        return np.zeros(len(SMPL_JOINT_NAMES), bool)
    if person.joint_confidence is None:
        return np.ones(len(SMPL_JOINT_NAMES), bool)
    return np.asarray(person.joint_confidence) > 0


def draw_result_on_image(image_rgb: np.ndarray, result: PoseResult) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> a copy with boxes, 2D skeletons and the answer drawn on it."""
    import cv2

    out = np.ascontiguousarray(image_rgb.copy())
    scale = max(1.0, max(out.shape[:2]) / 640.0)
    th = max(1, int(round(2 * scale)))
    for i, person in enumerate(result.people):
        col = SELECTED_RGB if i == result.selected else OTHER_RGB
        if person.box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in person.box)
            cv2.rectangle(out, (x0, y0), (x1, y1), col, th)
            tag = f"#{person.track_id if person.track_id >= 0 else i} {person.confidence:.2f}"
            cv2.putText(out, tag, (x0 + 3, max(12, y0 - 5)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, col, th, cv2.LINE_AA)
        if person.keypoints_2d is not None:
            kp = np.asarray(person.keypoints_2d, dtype=float)
            for a, b in person.keypoints_2d_edges:
                if np.isfinite(kp[[a, b]]).all():
                    cv2.line(out, tuple(int(v) for v in kp[a]), tuple(int(v) for v in kp[b]), col, th, cv2.LINE_AA)
            for p in kp:
                if np.isfinite(p).all():
                    cv2.circle(out, (int(p[0]), int(p[1])), th + 1, col, -1, cv2.LINE_AA)
    banner = f"Q: {result.query[:70]}"
    answer = f"A: {result.answer[:70]}"
    for k, text in enumerate((banner, answer)):
        y = int(22 * scale * (k + 1))
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, (0, 0, 0), th + 2, cv2.LINE_AA)
        cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.55 * scale, (255, 255, 255), th, cv2.LINE_AA)
    return out


def draw_skeleton_3d(person: PersonPose, size: int = 360, title: str = "") -> np.ndarray:
    """(size, 2*size, 3) uint8 RGB: front view (x right, y down) and side view (z right, y down)
    of the 24 SMPL joints, orthographic, 1 m = 0.4 * size pixels. Joints the camera did not see
    (:func:`seen_joints`) are hollow grey circles and the bones leading to them grey."""
    import cv2

    canvas = np.full((size, 2 * size, 3), 255, np.uint8)
    joints = np.asarray(person.joints, dtype=float)
    seen = seen_joints(person)
    centre = (joints.max(0) + joints.min(0)) / 2
    ppm = 0.4 * size
    for view, (u_axis, name) in enumerate(((0, "front (x right, y down)"), (2, "side (z forward, y down)"))):
        ox = view * size + size // 2
        oy = size // 2
        uv = np.stack([(joints[:, u_axis] - centre[u_axis]) * ppm + ox, (joints[:, 1] - centre[1]) * ppm + oy], 1)
        cv2.line(canvas, (view * size, 0), (view * size, size), (220, 220, 220), 1)
        for p, c in SMPL_BONES:
            name_c = SMPL_JOINT_NAMES[c]
            col = (30, 120, 230) if "left" in name_c else (230, 80, 40) if "right" in name_c else (60, 60, 60)
            col = col if seen[c] else UNSEEN_RGB
            cv2.line(canvas, tuple(int(v) for v in uv[p]), tuple(int(v) for v in uv[c]), col, 2, cv2.LINE_AA)
        for q, ok in zip(uv, seen):
            centre_px = (int(q[0]), int(q[1]))
            if ok:
                cv2.circle(canvas, centre_px, 3, (20, 20, 20), -1, cv2.LINE_AA)
            else:  # hollow: estimated, not seen
                cv2.circle(canvas, centre_px, 4, (255, 255, 255), -1, cv2.LINE_AA)
                cv2.circle(canvas, centre_px, 4, (120, 120, 120), 1, cv2.LINE_AA)
        cv2.putText(canvas, name, (view * size + 6, size - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    if title:
        cv2.putText(canvas, title[: size // 9], (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(canvas, "blue = left side, red = right side", (size + 6, size - 26), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                (90, 90, 90), 1, cv2.LINE_AA)
    if not seen.all():
        note = "generated from text, not seen" if person.generated else "hollow grey = not seen (estimated)"
        cv2.putText(canvas, note, (size + 6, size - 44), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (90, 90, 90), 1, cv2.LINE_AA)
    return canvas


def result_picture(image_rgb: np.ndarray | None, result: PoseResult) -> np.ndarray:
    """One picture for people to look at: the annotated photo (if any) above the 3D view of the
    selected (else first) person. (H, W, 3) uint8 RGB."""
    import cv2

    person = result.selected_person or (result.people[0] if result.people else None)
    panels = []
    if image_rgb is not None:
        panels.append(draw_result_on_image(image_rgb, result))
    width = panels[0].shape[1] if panels else 720
    if person is not None:
        view = draw_skeleton_3d(person, title=f"{person.estimator}: {result.query}")
        view = cv2.resize(view, (width, int(view.shape[0] * width / view.shape[1])), interpolation=cv2.INTER_AREA)
        panels.append(view)
    panels.append(caption(f"Q: {result.query}", f"A: {result.answer}" + (" (asks which person)" if result.clarify else "")
                          + (" (nobody matches)" if result.no_match else ""), width))
    return np.concatenate(panels, axis=0)


def caption(question: str, answer: str, width: int, chars_per_line: int | None = None) -> np.ndarray:
    """A white band with the question and the answer wrapped to `width` px: what was checked and
    what could not be, beside the picture. (H, width, 3) uint8 RGB."""
    import textwrap

    import cv2

    per_line = chars_per_line or max(20, width // 9)
    lines = textwrap.wrap(question, per_line) + textwrap.wrap(answer, per_line)
    band = np.full((12 + 20 * len(lines), width, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        colour = (0, 0, 0) if i >= len(textwrap.wrap(question, per_line)) else (60, 60, 160)
        cv2.putText(band, line, (8, 24 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return band


def save_png(path: str, image_rgb: np.ndarray) -> str:
    """Write an (H, W, 3) RGB picture; a path without an image suffix gets ".png". Returns the path
    written; raises OSError when it cannot be written."""
    import cv2

    p = Path(path)
    if p.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".webp"):
        p = p.with_name(p.name + ".png")
    p.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(p), np.ascontiguousarray(image_rgb[..., ::-1])):
        raise OSError(f"could not write {p}")
    return str(p)

