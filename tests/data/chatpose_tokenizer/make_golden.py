"""How tests/data/chatpose_tokenizer was made (run again only to regenerate it).

Step 1, with the project's venv (sentencepiece): a tiny Llama-style sentencepiece model (BPE,
byte fallback, dummy prefix, no whitespace normalisation; unk/bos/eos = 0/1/2 as Llama):

    .venv/bin/python tests/data/chatpose_tokenizer/make_golden.py sp

Step 2, with transformers 4.31 (the version the released ChatPose code ran) in a throw-away venv:
the slow `LlamaTokenizer` with the tokens LISA/ChatPose add (`[SEG]`, `<im_start>`, `<im_end>`),
saved as the released checkpoint saves it, and the token ids of the full llava_v1 template
computed the upstream way (LLaVA's `tokenizer_image_token`: split on "<image>", each piece
tokenised with BOS, BOS dropped from all but the first piece) -> golden.json:

    python3.11 -m venv /tmp/tf431
    /tmp/tf431/bin/pip install transformers==4.31.0 tokenizers==0.13.3 "huggingface-hub<0.20" \
        sentencepiece==0.2.0 "numpy<2"
    /tmp/tf431/bin/python tests/data/chatpose_tokenizer/make_golden.py golden
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYSTEM = ("A chat between a curious human and an artificial intelligence assistant. "
          "The assistant gives helpful, detailed, and polite answers to the human's questions.")
QUESTIONS = [
    "What is the pose of the man?",
    "Can you give the SMPL pose of the woman on the left?",
    "What is the person doing?",
    "What is the man wearing?",
    "How many people are in the image?",
    "Describe the body pose of the person sitting on the chair.",
]
ANSWERS = ["Sure, it is [SEG].", "Sure, the SMPL pose is [SEG].", "He is wearing a red shirt and blue jeans."]
IMAGE = "<image>"
IM_START, IM_END, SEG = "<im_start>", "<im_end>", "[SEG]"
IMAGE_TOKEN_INDEX = -200


def prompt(question: str, answer: str | None) -> str:
    """llava_v1 with the image wrapped in <im_start>/<im_end> (as ChatPose's inference does)."""
    user = (IM_START + IMAGE + IM_END) + "\n" + question
    out = SYSTEM + " " + "USER: " + user + " " + "ASSISTANT:"
    return out + (" " + answer + "</s>" if answer else "")


def make_sp() -> None:
    import sentencepiece as spm

    corpus = HERE / "corpus.txt"
    lines = [SYSTEM] + QUESTIONS + ANSWERS + [f"USER: {q} ASSISTANT: {a}" for q in QUESTIONS for a in ANSWERS]
    corpus.write_text("\n".join(lines * 4) + "\n")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(HERE / "tokenizer"), model_type="bpe", vocab_size=400,
        byte_fallback=True, add_dummy_prefix=True, remove_extra_whitespaces=False,
        normalization_rule_name="identity", split_digits=True, character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, seed_sentencepiece_size=1000)
    (HERE / "tokenizer.vocab").unlink()
    corpus.unlink()


def tokenizer_image_token(text: str, tok) -> list[int]:
    chunks = [tok(c).input_ids for c in text.split(IMAGE)]
    ids = [chunks[0][0]]  # BOS
    for i, c in enumerate(chunks):
        if i:
            ids.append(IMAGE_TOKEN_INDEX)
        ids.extend(c[1:])
    return ids


def make_golden() -> None:
    import transformers
    from transformers import LlamaTokenizer

    assert transformers.__version__ == "4.31.0", transformers.__version__
    tok = LlamaTokenizer(vocab_file=str(HERE / "tokenizer.model"), legacy=True)
    tok.pad_token = tok.unk_token
    tok.add_tokens(SEG)
    tok.add_tokens([IM_START, IM_END], special_tokens=True)
    folder = HERE / "released"
    tok.save_pretrained(str(folder))
    tok = LlamaTokenizer.from_pretrained(str(folder), use_fast=False)  # as the released code loads it
    cases = []
    for q in QUESTIONS:
        cases.append({"text": prompt(q, None), "ids": tokenizer_image_token(prompt(q, None), tok)})
    for a in ANSWERS:
        text = prompt(QUESTIONS[0], a)
        cases.append({"text": text, "ids": tokenizer_image_token(text, tok)})
    out = {"made_with": f"transformers {transformers.__version__} slow LlamaTokenizer (legacy)",
           "seg_id": tok.convert_tokens_to_ids(SEG), "im_start_id": tok.convert_tokens_to_ids(IM_START),
           "im_end_id": tok.convert_tokens_to_ids(IM_END), "cases": cases}
    lines = ",\n  ".join(json.dumps(c) for c in out.pop("cases"))
    head = json.dumps(out)[:-1]
    (HERE / "golden.json").write_text(f'{head}, "cases": [\n  {lines}\n]}}\n')
    (HERE / "tokenizer.model").unlink()  # the copy in released/ is the one the tests read


if __name__ == "__main__":
    {"sp": make_sp, "golden": make_golden}[sys.argv[1]]()
