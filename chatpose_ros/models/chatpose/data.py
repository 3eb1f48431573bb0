"""Training / evaluation data: the JSONL format and its tokenisation.

One JSON object per line::

    {"image": "images/0001.jpg" | null,          # relative to the JSONL file's folder
     "conversations": [{"from": "human", "value": "<image>\\nWhat is the pose of the man?"},
                       {"from": "gpt", "value": "Sure, it is [POSE]."}],
     "theta": [72 floats] | null,                # SMPL axis-angle (rad), joint 0 global orient
     "task": "image_to_pose" | "text_to_pose" | "chat",
     "person_index": 1,                          # optional: which of "candidates" is meant
     "candidates": [[72 floats], ...]}           # optional: thetas of every person in the image

"[POSE]" in answers stands for the model's pose token; "<image>" marks where the image goes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chatpose_ros.core.body import NUM_JOINTS
from chatpose_ros.core.errors import ConfigError

from .model import IMAGE_PLACEHOLDER, POSE_TEXT, ChatPoseModel, tokenizer_image_token

TASKS = ("image_to_pose", "text_to_pose", "chat")
IGNORE_INDEX = -100


@dataclass(frozen=True)
class Sample:
    image: Path | None
    conversations: tuple[tuple[str, str], ...]  # (from, value)
    theta: np.ndarray | None  # (72,)
    task: str
    person_index: int | None = None
    candidates: np.ndarray | None = None  # (K, 72)

    @property
    def query(self) -> str:
        """The first human turn without the image placeholder."""
        text = next(v for f, v in self.conversations if f == "human")
        return text.replace(IMAGE_PLACEHOLDER, "").strip()


def load_jsonl(path: str | Path) -> list[Sample]:
    """Parse the JSONL format (see module docstring). Raises ConfigError with the line number."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"data file not found: {path}")
    out: list[Sample] = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            d = json.loads(line)
            task = d.get("task", "chat")
            if task not in TASKS:
                raise ValueError(f"task {task!r} not in {TASKS}")
            conv = tuple((c["from"], c["value"]) for c in d["conversations"])
            if not conv or conv[0][0] != "human":
                raise ValueError("conversations must start with a 'human' turn")
            theta = None if d.get("theta") is None else np.asarray(d["theta"], np.float32)
            if theta is not None and theta.shape != (NUM_JOINTS * 3,):
                raise ValueError(f"theta must have 72 numbers, got {theta.shape}")
            cands = None if d.get("candidates") is None else np.asarray(d["candidates"], np.float32).reshape(-1, NUM_JOINTS * 3)
            image = None if d.get("image") in (None, "") else (path.parent / d["image"])
            out.append(Sample(image, conv, theta, task, d.get("person_index"), cands))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{path}:{n}: {exc}") from exc
    return out


def load_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def conversation_text(model: ChatPoseModel, sample: Sample) -> tuple[str, list[tuple[int, int]]]:
    """The whole conversation as one template string, and the (start, end) character spans of
    the parts the model learns: each answer from its leading space through its end token.

    As upstream: `<system> USER: <im_start><image><im_end>\\n{q} ASSISTANT: {a}</s>USER: ...`
    ("[POSE]" in answers replaced by the model's pose token)."""
    tpl = model.template
    roles = {"human": tpl.roles[0], "gpt": tpl.roles[1]}
    text = tpl.system + tpl.sep
    spans: list[tuple[int, int]] = []
    for frm, value in sample.conversations:
        if frm not in roles:
            raise ConfigError(f"unknown speaker {frm!r} (expected 'human' or 'gpt')")
        if frm == "human":
            q = value if sample.image is not None else value.replace(IMAGE_PLACEHOLDER, "").strip()
            text += f"{roles[frm]}: {model._wrap_image(q)}{tpl.sep}"
        else:
            text += f"{roles[frm]}:"
            start = len(text)
            text += " " + value.replace(POSE_TEXT, model.config.pose_token) + tpl.sep2
            spans.append((start, len(text)))
    return text, spans


def tokenize_conversation(model: ChatPoseModel, sample: Sample, *, one_piece: bool = True) -> tuple[list[int], list[int]]:
    """Token ids (with IMAGE_TOKEN_INDEX) and labels (IGNORE_INDEX outside answers) for `sample`.

    one_piece (upstream, the default): the conversation is tokenised as one string, so the ids are
    exactly those the released code's tokenizer gives; labels cover the answers and their end
    token, found by tokenising the text up to each span boundary (which must give a prefix of the
    ids: spans start at a space and end after the end token, where pieces never merge).
    Otherwise: template pieces tokenised one by one (each piece may start with a stray word-start
    token), the answer's "[POSE]" as the pose token, each answer ended with EOS.
    """
    if not one_piece:
        return _tokenize_piecewise(model, sample)
    tok = model.tokenizer
    text, spans = conversation_text(model, sample)
    ids = tokenizer_image_token(text, tok)
    labels = [IGNORE_INDEX] * len(ids)
    for start, end in spans:
        a = tokenizer_image_token(text[:start], tok)
        b = tokenizer_image_token(text[:end], tok)
        if ids[:len(a)] != a or ids[:len(b)] != b:
            raise ConfigError(f"answer boundary at characters {start}..{end} splits a token; cannot label the "
                              "answer of this conversation in one piece")
        labels[len(a):len(b)] = ids[len(a):len(b)]
    # labels never contain the image sentinel
    labels = [IGNORE_INDEX if t < 0 else t for t in labels]
    return ids, labels


def _tokenize_piecewise(model: ChatPoseModel, sample: Sample) -> tuple[list[int], list[int]]:
    tpl, tok = model.template, model.tokenizer
    roles = {"human": tpl.roles[0], "gpt": tpl.roles[1]}
    ids: list[int] = []
    labels: list[int] = []

    def add(text: str, learn: bool, bos: bool = False) -> None:
        piece = tokenizer_image_token(text, tok, add_bos=bos)
        ids.extend(piece)
        labels.extend(piece if learn else [IGNORE_INDEX] * len(piece))

    add(tpl.system + tpl.sep, False, bos=True)
    for frm, value in sample.conversations:
        if frm not in roles:
            raise ConfigError(f"unknown speaker {frm!r} (expected 'human' or 'gpt')")
        if frm == "human":
            text = value if sample.image is not None else value.replace(IMAGE_PLACEHOLDER, "").strip()
            add(f"{roles[frm]}: {model._wrap_image(text)}{tpl.sep}", False)
        else:
            add(f"{roles[frm]}:", False)
            add(" " + value.replace(POSE_TEXT, model.config.pose_token), True)
            if tok.eos_token_id is not None:
                ids.append(int(tok.eos_token_id))
                labels.append(int(tok.eos_token_id))
    labels = [IGNORE_INDEX if t < 0 else t for t in labels]
    return ids, labels


def expand_image_positions(ids: list[int], n_image_tokens: int, image_index: int) -> list[int]:
    """Ids with each image sentinel repeated N times: positions then match the embeddings."""
    out: list[int] = []
    for t in ids:
        out.extend([t] * n_image_tokens if t == image_index else [t])
    return out


def theta_to_tensor(theta: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(theta, dtype=torch.float32).reshape(1, NUM_JOINTS * 3)
