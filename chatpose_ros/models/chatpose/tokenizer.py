"""Tokenisation exactly as the released ChatPose code ran it.

Upstream ran transformers 4.31 with the *slow* Llama tokenizer (sentencepiece, `legacy=True`).
Two of its rules change token ids and so what the model sees:

1. The text is split on added tokens (`[SEG]`, `<im_start>`, `<im_end>`, ...) and on the special
   tokens; whitespace next to an added token is stripped on both sides (special tokens strip only
   where their `lstrip` / `rstrip` flags say so; Llama's `<s>`, `</s>`, `<unk>` do not strip). So
   the model saw `USER:<im_start>...<im_end>What ...`, not `USER: <im_start>...<im_end>\\nWhat`.
2. Each remaining piece is encoded on its own by sentencepiece, which prepends its word-start
   marker to every piece (`"." -> "▁", "."` after `[SEG]`).

`LegacyLlamaTokenizer` reproduces that from the checkpoint's own `tokenizer.model` (the
`sentencepiece` library reads it; no conversion to a fast tokenizer, which transformers 5 cannot
do here without a newer protobuf). `encode_upstream(tokenizer, text)` applies the same two rules
to any Hugging Face tokenizer (each piece encoded separately), for checkpoints without a
sentencepiece model (the tiny test tokenizer, fast-only fine-tunes).
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from chatpose_ros.core.errors import CheckpointError

log = logging.getLogger(__name__)

SP_MODEL_FILE = "tokenizer.model"
ADDED_TOKENS_FILE = "added_tokens.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_ROLES = ("bos_token", "eos_token", "unk_token", "pad_token")


def split_on_tokens(text: str, strip_both: set[str], no_strip: set[str] | dict[str, tuple[bool, bool]]) -> list[str]:
    """Split `text` on the given tokens (longest match first), stripping whitespace around them.

    Args:
        strip_both: tokens that strip whitespace on both sides (4.31's rule for added tokens).
        no_strip: tokens split out but stripping only per their (lstrip, rstrip) flags; a set
            means no stripping at all.
    Returns:
        pieces in order: token strings appear as themselves; empty text pieces are dropped.
    """
    flags = dict(no_strip) if isinstance(no_strip, dict) else {t: (False, False) for t in no_strip}
    flags.update({t: (True, True) for t in strip_both})
    if not flags:
        return [text] if text else []
    pattern = re.compile("(" + "|".join(re.escape(t) for t in sorted(flags, key=len, reverse=True)) + ")")
    parts = pattern.split(text)  # odd indices are tokens
    for i in range(1, len(parts), 2):
        lstrip, rstrip = flags[parts[i]]
        if rstrip:
            parts[i + 1] = parts[i + 1].lstrip()
        if lstrip:
            parts[i - 1] = parts[i - 1].rstrip()
    return [p for p in parts if p]


def _hf_split_rules(tokenizer) -> tuple[set[str], dict[str, tuple[bool, bool]]]:
    """(strip-both tokens, special tokens with their flags) of a Hugging Face tokenizer."""
    named = {str(getattr(tokenizer, role, None)) for role in SPECIAL_ROLES if getattr(tokenizer, role, None)}
    added = set(tokenizer.get_added_vocab()) if hasattr(tokenizer, "get_added_vocab") else set()
    special = {t: (False, False) for t in named}
    return added - named, special


def encode_upstream(tokenizer, text: str) -> list[int]:
    """Token ids of `text` (no BOS) by the released code's rules (module docstring).

    `LegacyLlamaTokenizer` does it from sentencepiece; any other tokenizer encodes each piece
    with `tokenizer(piece, add_special_tokens=False)`.
    """
    if isinstance(tokenizer, LegacyLlamaTokenizer):
        return tokenizer.encode_upstream(text)
    strip_both, special = _hf_split_rules(tokenizer)
    ids: list[int] = []
    for piece in split_on_tokens(text, strip_both, special):
        if piece in strip_both or piece in special:
            ids.append(int(tokenizer.convert_tokens_to_ids(piece)))
        else:
            ids.extend(int(t) for t in tokenizer(piece, add_special_tokens=False)["input_ids"])
    return ids


class LegacyLlamaTokenizer:
    """The slow Llama tokenizer of transformers 4.31 (`legacy=True`) on a `tokenizer.model`.

    Implements what chatpose_ros uses of a Hugging Face tokenizer: `__call__`, `decode`,
    `convert_tokens_to_ids`, `convert_ids_to_tokens`, `get_vocab`, `get_added_vocab`,
    `add_tokens`, `save_pretrained`, `len()` and the special token ids.
    """

    def __init__(self, sp_model_file: str | Path, added: dict[str, int] | None = None,
                 special: dict[str, dict | str] | None = None, config: dict | None = None) -> None:
        import sentencepiece as spm

        self.sp_model_file = Path(sp_model_file)
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(self.sp_model_file))
        except (OSError, RuntimeError) as exc:
            raise CheckpointError(f"cannot read the sentencepiece model {self.sp_model_file}: {exc}") from exc
        self.added: dict[str, int] = dict(sorted((added or {}).items(), key=lambda kv: kv[1]))
        for tok, i in self.added.items():
            if i < self.sp.get_piece_size():
                raise CheckpointError(f"added token {tok!r} has id {i}, inside the sentencepiece vocabulary")
        special = special or {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
        self.special_flags: dict[str, tuple[bool, bool]] = {}
        self.special_map: dict[str, str] = {}
        for role in SPECIAL_ROLES:
            v = special.get(role)
            if v is None:
                continue
            content = v["content"] if isinstance(v, dict) else str(v)
            self.special_map[role] = content
            # 4.31: an AddedToken strips per its flags; a plain string strips both sides unless the
            # same content is also an AddedToken (e.g. pad "<unk>" = unk AddedToken)
            flags = (bool(v.get("lstrip")), bool(v.get("rstrip"))) if isinstance(v, dict) else None
            if flags is not None or content not in self.special_flags:
                self.special_flags[content] = flags if flags is not None else (True, True)
        self.config = dict(config or {})

    # ---- loading / saving
    @classmethod
    def from_folder(cls, folder: str | Path) -> LegacyLlamaTokenizer:
        folder = Path(folder)
        sp_file = folder / SP_MODEL_FILE
        if not sp_file.exists():
            raise CheckpointError(f"no {SP_MODEL_FILE} in {folder}")

        def read(name: str) -> dict:
            f = folder / name
            if not f.exists():
                return {}
            try:
                return json.loads(f.read_text())
            except json.JSONDecodeError as exc:
                raise CheckpointError(f"{f}: {exc}") from exc

        cfg = read(TOKENIZER_CONFIG_FILE)
        special = {r: cfg[r] for r in SPECIAL_ROLES if cfg.get(r) is not None}
        special.update({r: v for r, v in read(SPECIAL_TOKENS_FILE).items() if r in SPECIAL_ROLES and v is not None})
        if not special:
            special = None
        added = {str(k): int(v) for k, v in read(ADDED_TOKENS_FILE).items()}
        # transformers >= 4.34 keeps added tokens in tokenizer_config.json instead
        for i, d in (cfg.get("added_tokens_decoder") or {}).items():
            if int(i) >= 0 and d.get("content") and int(i) >= _piece_count(sp_file):
                added.setdefault(d["content"], int(i))
        if cfg.get("legacy") is False:
            log.warning("%s says legacy=false; ids follow the released code's legacy slow tokenizer "
                        "(transformers 4.31) all the same", folder / TOKENIZER_CONFIG_FILE)
        keep = {k: cfg[k] for k in ("model_max_length", "padding_side") if k in cfg}
        return cls(sp_file, added, special, keep)

    def save_pretrained(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SP_MODEL_FILE).write_bytes(self.sp.serialized_model_proto())
        (folder / ADDED_TOKENS_FILE).write_text(json.dumps(self.added, indent=2))
        special = {}
        for role, content in self.special_map.items():
            lstrip, rstrip = self.special_flags.get(content, (True, True))
            special[role] = {"content": content, "lstrip": lstrip, "rstrip": rstrip, "normalized": True,
                             "single_word": False}
        (folder / SPECIAL_TOKENS_FILE).write_text(json.dumps(special, indent=2))
        cfg = {**self.config, "tokenizer_class": "LlamaTokenizer", "legacy": True, "add_bos_token": True,
               "add_eos_token": False, **{r: {"content": c, "__type": "AddedToken", **special[r]}
                                          for r, c in self.special_map.items()}}
        (folder / TOKENIZER_CONFIG_FILE).write_text(json.dumps(cfg, indent=2))

    # ---- vocabulary
    def __len__(self) -> int:
        return self.sp.get_piece_size() + len(self.added)

    def get_added_vocab(self) -> dict[str, int]:
        return dict(self.added)

    def get_vocab(self) -> dict[str, int]:
        vocab = {self.sp.id_to_piece(i): i for i in range(self.sp.get_piece_size())}
        vocab.update(self.added)
        return vocab

    def add_tokens(self, tokens: str | list[str], special_tokens: bool = False) -> int:
        """Append new tokens after the vocabulary (as 4.31's `add_tokens`); returns how many."""
        n = 0
        for t in [tokens] if isinstance(tokens, str) else tokens:
            if t not in self.added and self.sp.piece_to_id(t) == self.sp.unk_id() and t != self._content("unk_token"):
                self.added[t] = len(self)
                n += 1
        return n

    def _content(self, role: str) -> str | None:
        return self.special_map.get(role)

    def _id_of(self, role: str) -> int | None:
        c = self._content(role)
        return None if c is None else self.convert_tokens_to_ids(c)

    @property
    def bos_token_id(self) -> int | None:
        return self._id_of("bos_token")

    @property
    def eos_token_id(self) -> int | None:
        return self._id_of("eos_token")

    @property
    def unk_token_id(self) -> int | None:
        return self._id_of("unk_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._id_of("pad_token")

    @property
    def all_special_tokens(self) -> list[str]:
        return list(dict.fromkeys(self.special_map.values()))

    @property
    def all_special_ids(self) -> list[int]:
        return [self.convert_tokens_to_ids(t) for t in self.all_special_tokens]

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self.added[tokens] if tokens in self.added else int(self.sp.piece_to_id(tokens))
        return [self.convert_tokens_to_ids(t) for t in tokens]

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, int):
            if ids >= self.sp.get_piece_size():
                return next((t for t, i in self.added.items() if i == ids), None)
            return self.sp.id_to_piece(ids)
        return [self.convert_ids_to_tokens(int(i)) for i in ids]

    # ---- encoding / decoding
    def encode_upstream(self, text: str) -> list[int]:
        """Ids of `text` without BOS, by 4.31's slow-tokenizer rules (module docstring)."""
        ids: list[int] = []
        for piece in split_on_tokens(text, set(self.added), self.special_flags):
            if piece in self.added or piece in self.special_flags:
                ids.append(self.convert_tokens_to_ids(piece))
            else:
                ids.extend(int(i) for i in self.sp.encode(piece))
        return ids

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict:
        ids = self.encode_upstream(text)
        if add_special_tokens and self.bos_token_id is not None:
            ids = [self.bos_token_id] + ids
        return {"input_ids": ids}

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """Runs of sentencepiece ids decoded by sentencepiece, added tokens as themselves,
        joined by spaces (4.31's `spaces_between_special_tokens`)."""
        special = set(self.all_special_ids)
        out: list[str] = []
        run: list[int] = []
        for i in (int(t) for t in ids):
            if skip_special_tokens and i in special:
                continue
            if i >= self.sp.get_piece_size():
                if run:
                    out.append(self.sp.decode(run))
                    run = []
                out.append(self.convert_ids_to_tokens(i))
            else:
                run.append(i)
        if run:
            out.append(self.sp.decode(run))
        return " ".join(s for s in out if s)


def _piece_count(sp_file: Path) -> int:
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(sp_file)).get_piece_size()


def load_tokenizer(folder: str | Path):
    """The checkpoint's tokenizer: `LegacyLlamaTokenizer` when the folder carries a sentencepiece
    `tokenizer.model` (the released checkpoint; exact upstream ids), else `AutoTokenizer`."""
    folder = Path(folder)
    if (folder / SP_MODEL_FILE).exists():
        return LegacyLlamaTokenizer.from_folder(folder)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception as exc:  # transformers raises OSError/ValueError variants
        raise CheckpointError(f"cannot load the tokenizer from {folder}: {exc}") from exc
