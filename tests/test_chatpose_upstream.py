"""The ChatPose profile reproduces the released inference code's conventions (issue 10, defects
1-5 and 7): the pose head's input position, crop, <im_start>/<im_end> wrapping, the slow
tokenizer's token ids, forcing only for pose questions, and the fine-tuning defaults."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from chatpose_ros.core.body import SmplBody
from chatpose_ros.core.config import PipelineConfig
from chatpose_ros.models.chatpose import checkpoints as ck
from chatpose_ros.models.chatpose.data import Sample, conversation_text, tokenize_conversation
from chatpose_ros.models.chatpose.model import (
    IMAGE_TOKEN_INDEX, ChatPoseModel, ChatPoseModelConfig, ImagePreprocessor,
)
from chatpose_ros.models.chatpose.pipeline import ChatPosePipeline, asks_for_pose
from chatpose_ros.models.chatpose.tiny import (
    TINY_IMAGE_TOKENS, TinySizes, tiny_clip_vision_config, tiny_image_processor_config, tiny_llama, tiny_tokenizer,
    write_tiny_released,
)
from chatpose_ros.models.chatpose.vision_backends import TorchVisionBackend

TOKENIZER_DATA = Path(__file__).parent / "data" / "chatpose_tokenizer"
GOLDEN = json.loads((TOKENIZER_DATA / "golden.json").read_text())
QUESTION = "What is the pose of the man?"


def _model(**cfg) -> ChatPoseModel:
    tok = tiny_tokenizer()
    lm = tiny_llama(len(tok), TinySizes())
    return ChatPoseModel.build(ChatPoseModelConfig(**cfg), tiny_clip_vision_config(), lm, tok,
                               tiny_image_processor_config())


def _pipeline(model: ChatPoseModel, **cfg) -> ChatPosePipeline:
    config = PipelineConfig(profile="chatpose", device="cpu", **cfg)
    return ChatPosePipeline(config, model, TorchVisionBackend(model), SmplBody(None), "chatpose:test")


def _emitting_model() -> ChatPoseModel:
    """A tiny model whose answer to QUESTION contains [SEG] (the pose token's output row copies,
    scaled, the row of the first answer token)."""
    m = _model()
    first = m.generate(None, QUESTION, max_new_tokens=1).token_ids[0]
    with torch.no_grad():
        m.lm.lm_head.weight[m.pose_token_id] = m.lm.lm_head.weight[first] * 3.0
    return m


class _NeverPose(torch.nn.Module):
    def __init__(self, head: torch.nn.Module, pose: int) -> None:
        super().__init__()
        self.head, self.pose = head, pose

    def forward(self, h):
        out = self.head(h).clone()
        out[..., self.pose] = -1e9
        return out


def _silent_model() -> ChatPoseModel:
    """A tiny model that never emits [SEG] by itself (its logit masked)."""
    m = _model()
    m.lm.lm_head = _NeverPose(m.lm.lm_head, m.pose_token_id)
    return m


# --------------------------------------------------------------------------- 1. position
def test_pipeline_pose_is_the_head_on_the_state_before_seg():
    """The released code feeds the head the last-layer state before [SEG] (the state whose logits
    produced it). Reference: one full forward over prompt + answer, the head on that position."""
    m = _emitting_model()
    for n_tokens in (1, 4):  # the first [SEG] reads the prompt's last state; a later one an answer token's
        res = _pipeline(m, chatpose_max_new_tokens=n_tokens).estimate(None, QUESTION)
        gen = m.generate(None, QUESTION, max_new_tokens=n_tokens)
        segs = [k for k, t in enumerate(gen.token_ids) if t == m.pose_token_id]
        assert segs and not res.pose_forced and len(res.people) == 1  # the last [SEG] (upstream's text_embeddings[-1:])
        prompt = m.embed_ids(m.prompt_ids(m.question_prompt(QUESTION, False)), None)[None]
        with torch.no_grad():
            answer = m.lm.get_input_embeddings()(torch.tensor([gen.token_ids]))
            states = m.lm(inputs_embeds=torch.cat((prompt, answer), 1), output_hidden_states=True).hidden_states[-1][0]
            seg = prompt.shape[1] + segs[-1]
            before = m.rotmats_to_theta(m.pose_rotmats(states[seg - 1][None]))[0].numpy()
            at_seg = m.rotmats_to_theta(m.pose_rotmats(states[seg][None]))[0].numpy()
        np.testing.assert_allclose(res.people[0].theta, before, atol=1e-4)
        assert np.abs(res.people[0].theta - at_seg).max() > 1e-3


def test_training_reads_the_state_before_seg():
    from chatpose_ros.models.chatpose.train import batch_loss, pose_state_positions, rotation_l1

    assert pose_state_positions([5, 9, 7, 9], 9) == [0, 2]
    m = _model()
    theta = (np.random.default_rng(0).normal(size=72) * 0.3).astype(np.float32)
    s = Sample(None, (("human", "what is the pose of the man ?"), ("gpt", "sure , it is [POSE] .")), theta, "text_to_pose")
    _, parts = batch_loss(m, m.lm, [s], 1.0)
    ids, _ = tokenize_conversation(m, s)
    with torch.no_grad():
        states = m.lm(inputs_embeds=m.embed_ids(ids, None)[None], output_hidden_states=True).hidden_states[-1][0]
        from chatpose_ros.core.body import theta_to_rotmats

        target = theta_to_rotmats(torch.from_numpy(theta)[None])
        pos = ids.index(m.pose_token_id)
        expect = float(rotation_l1(m.pose_head(states[pos - 1][None]), target))
        wrong = float(rotation_l1(m.pose_head(states[pos][None]), target))
    assert parts["pose"] == pytest.approx(expect, rel=1e-5)
    assert abs(expect - wrong) > 1e-4


# --------------------------------------------------------------------------- 2. crop
def test_preprocessor_resizes_the_short_side_and_centre_crops():
    pre = ImagePreprocessor.from_dict(tiny_image_processor_config(), pad_to_square=False)
    img = np.zeros((40, 120, 3), np.uint8)
    img[:, :, 2] = 255  # blue
    img[:, :30, 0] = 255  # magenta borders, cropped away by a centre crop (kept by padding)
    img[:, -30:, 0] = 255
    x = pre(img)[0]
    red = x[0] * pre.std[0] + pre.mean[0]
    assert x.shape == (3, 32, 32) and red.max() < 0.02
    try:
        from transformers import CLIPImageProcessorPil as Reference
    except ImportError:
        pytest.skip("this transformers has no PIL CLIP image processor")
    d = {k: v for k, v in tiny_image_processor_config().items() if k != "image_processor_type"}
    rng = np.random.default_rng(0)
    for shape in ((45, 77, 3), (90, 33, 3), (32, 32, 3)):
        photo = rng.integers(0, 255, shape, dtype=np.uint8)
        ref = torch.as_tensor(np.asarray(Reference(**d)(images=photo, return_tensors="np")["pixel_values"]))
        torch.testing.assert_close(pre(photo), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("overrides", [{"image_aspect_ratio": "pad", "mm_use_im_start_end": False},
                                       {"image_aspect_ratio": None, "mm_use_im_start_end": None}])
def test_converted_released_checkpoint_crops_and_wraps(tmp_path, overrides):
    """Whatever config.json says (or lacks), the released code crops and wraps the image."""
    write_tiny_released(tmp_path / "src", tmp_path / "clip", config_overrides=overrides)
    model = ck.load_checkpoint(ck.convert_released(tmp_path / "src", tmp_path / "clip", tmp_path / "ours",
                                                   image_tokens=TINY_IMAGE_TOKENS))
    assert model.config.image_aspect_ratio == "crop" and not model.preprocessor.pad_to_square
    assert model.config.mm_use_im_start_end
    ids = model.prompt_ids(model.question_prompt("what is the pose ?", True))
    k = ids.index(IMAGE_TOKEN_INDEX)
    assert ids[k - 1] == model.im_start_id and ids[k + 1] == model.im_end_id


def test_model_config_defaults_are_upstream():
    c = ChatPoseModelConfig()
    assert c.image_aspect_ratio == "crop" and c.mm_use_im_start_end
    assert ChatPoseModelConfig.from_json({"pose_token": "[SEG]"}).image_aspect_ratio == "crop"


# --------------------------------------------------------------------------- 4. token ids
@pytest.fixture(scope="module")
def sp_model(tmp_path_factory):
    """A tiny checkpoint in the released layout with the slow-tokenizer folder (sentencepiece
    model + added_tokens.json) made with transformers 4.31, converted and loaded."""
    d = tmp_path_factory.mktemp("sp")
    write_tiny_released(d / "src", d / "clip", tokenizer_dir=TOKENIZER_DATA / "released")
    return ck.load_checkpoint(ck.convert_released(d / "src", d / "clip", d / "ours", image_tokens=TINY_IMAGE_TOKENS))


def test_prompt_token_ids_equal_transformers_4_31_slow_tokenizer(sp_model):
    m = sp_model
    assert m.pose_token_id == GOLDEN["seg_id"] and m.im_start_id == GOLDEN["im_start_id"]
    questions = [c for c in GOLDEN["cases"] if c["text"].endswith("ASSISTANT:")]
    assert len(questions) >= 5
    for case in questions:
        q = case["text"].split("<im_end>\n", 1)[1].rsplit(" ASSISTANT:", 1)[0]
        prompt = m.question_prompt(q, True)
        assert prompt == case["text"]
        assert m.prompt_ids(prompt) == case["ids"], q


def test_slow_tokenizer_survives_save_and_load(sp_model, tmp_path):
    ck.save_checkpoint(sp_model, tmp_path / "again")
    m2 = ck.load_checkpoint(tmp_path / "again")
    case = GOLDEN["cases"][0]
    assert type(m2.tokenizer) is type(sp_model.tokenizer) and m2.prompt_ids(case["text"]) == case["ids"]


def test_golden_ids_depend_on_the_whitespace_rule(sp_model):
    """Encoding the text between placeholders whole (whitespace kept next to added tokens), as
    the code did before, does not give upstream's ids: the golden test can fail."""
    m = sp_model
    case = GOLDEN["cases"][0]
    head, tail = case["text"].split("<image>")
    naive = [m.tokenizer.bos_token_id]
    for piece in (head.replace("<im_start>", ""), None, tail.replace("<im_end>", "")):
        if piece is None:
            naive += [m.im_start_id, IMAGE_TOKEN_INDEX, m.im_end_id]
        else:
            naive += list(m.tokenizer.sp.encode(piece))
    assert naive != case["ids"]


def test_training_tokenises_the_conversation_in_one_piece(sp_model):
    m = sp_model
    for case in (c for c in GOLDEN["cases"] if c["text"].endswith("</s>")):
        answer = case["text"].rsplit("ASSISTANT: ", 1)[1][: -len("</s>")].replace("[SEG]", "[POSE]")
        s = Sample(Path("x.png"), (("human", "<image>\n" + QUESTION), ("gpt", answer)), None, "image_to_pose")
        assert conversation_text(m, s)[0] == case["text"]
        ids, labels = tokenize_conversation(m, s)
        assert ids == case["ids"]
        learned = [t for t in labels if t != -100]
        assert learned[-1] == m.tokenizer.eos_token_id and learned == ids[len(ids) - len(learned):]
        assert m.tokenizer.decode(learned[:-1]).replace(" [SEG] ", "[SEG]").strip().startswith(answer.split()[0])
        piecewise, _ = tokenize_conversation(m, s, one_piece=False)
        assert piecewise != ids  # stray word-start tokens at the piece boundaries
        stray = m.tokenizer.convert_tokens_to_ids("\u2581")
        assert piecewise.count(stray) > ids.count(stray)


# --------------------------------------------------------------------------- 5. forcing
def test_no_pose_is_forced_for_a_question_not_about_pose():
    pipe = _pipeline(_silent_model(), chatpose_force_pose_token=True, chatpose_max_new_tokens=6)
    res = pipe.estimate(None, "What is the man wearing?")
    assert res.people == () and res.selected == -1 and not res.pose_forced and "[POSE]" not in res.answer
    res = pipe.estimate(None, QUESTION)
    assert len(res.people) == 1 and res.pose_forced and res.selected == 0
    assert res.people[0].confidence < 1.0 and "[POSE]" in res.answer
    assert res.to_json()["pose_forced"] is True
    off = _pipeline(_silent_model(), chatpose_force_pose_token=False, chatpose_max_new_tokens=6).estimate(None, QUESTION)
    assert off.people == () and not off.pose_forced


def test_forced_flag_reaches_the_message():
    convert = pytest.importorskip("chatpose_ros.ros.convert")
    from std_msgs.msg import Header

    res = _pipeline(_silent_model(), chatpose_force_pose_token=True, chatpose_max_new_tokens=4).estimate(None, QUESTION)
    arr = convert.result_to_msg(res, Header(frame_id="camera"))
    assert arr.poses[0].pose_forced


def test_answers_may_be_512_tokens_long(monkeypatch):
    assert PipelineConfig().chatpose_max_new_tokens == 512
    m = _silent_model()
    seen = {}
    real = m.generate

    def spy(features, query, **kw):
        seen.update(kw)
        return real(features, query, **{**kw, "max_new_tokens": 2})

    monkeypatch.setattr(m, "generate", spy)
    _pipeline(m).estimate(None, QUESTION)
    assert seen["max_new_tokens"] == 512


def test_asks_for_pose():
    for q in (QUESTION, "the man holding the basketball", "who looks ready to fight?", "Is the woman sitting",
              "what pose would a tired person take?", "Can you give the SMPL pose of the woman?"):
        assert asks_for_pose(q) or q.startswith("Is"), q
    for q in ("What is the man wearing?", "How many people are standing?", "Describe the image.",
              "what colour is the car?", "Is anyone there?"):
        assert not asks_for_pose(q), q


# --------------------------------------------------------------------------- 7. fine-tuning
def test_rotation_loss_averages_global_orientation_and_body_separately():
    from chatpose_ros.models.chatpose.train import rotation_l1

    target = torch.eye(3).expand(1, 24, 3, 3).clone()
    pred = target.clone()
    pred[0, 0] = -torch.eye(3)  # only the global orientation is wrong: |diff| = 2 on 3 of 9 entries
    assert float(rotation_l1(pred, target, "split")) == pytest.approx(6 / 9)
    assert float(rotation_l1(pred, target, "mean")) == pytest.approx(6 / 9 / 24)
    pred = target.clone()
    pred[0, 1:] = -torch.eye(3)  # every body joint wrong
    assert float(rotation_l1(pred, target, "split")) == pytest.approx(6 / 9)


def test_lora_defaults_to_q_and_v_projections():
    from peft import LoraConfig, get_peft_model

    from chatpose_ros.models.chatpose.train import TrainConfig

    cfg = TrainConfig()
    assert cfg.lora_targets == ("q_proj", "v_proj") and cfg.rotation_loss == "split" and cfg.one_piece_prompt
    lm = get_peft_model(copy.deepcopy(tiny_llama(len(tiny_tokenizer()))),
                        LoraConfig(r=4, lora_alpha=8, target_modules=list(cfg.lora_targets), task_type="CAUSAL_LM"))
    assert {n.split(".")[-4] for n, _ in lm.named_parameters() if "lora_A" in n} == {"q_proj", "v_proj"}


# --------------------------------------------------------------------------- issue 22
def test_released_tokenizer_without_im_start_end_tokens(tmp_path):
    """Upstream's merge script adds <im_start>/<im_end> as tokens only with --use_mm_start_end
    (off by default); its inference wraps the image in them all the same, as plain text. Such a
    tokenizer ([SEG] alone) converts, and the wrappers are encoded as text, as 4.31 did."""
    tok_dir = tmp_path / "tok"
    shutil.copytree(TOKENIZER_DATA / "released", tok_dir)
    (tok_dir / "added_tokens.json").write_text(json.dumps({"[SEG]": GOLDEN["seg_id"]}))
    write_tiny_released(tmp_path / "src", tmp_path / "clip", tokenizer_dir=tok_dir)
    m = ck.load_checkpoint(ck.convert_released(tmp_path / "src", tmp_path / "clip", tmp_path / "ours",
                                               image_tokens=TINY_IMAGE_TOKENS))
    assert m.pose_token_id == GOLDEN["seg_id"] and m.config.mm_use_im_start_end
    assert m.im_start_id is None and m.im_end_id is None
    prompt = m.question_prompt(QUESTION, True)
    assert "<im_start><image><im_end>\n" in prompt
    head, tail = prompt.split("<image>")
    sp = m.tokenizer.sp  # the slow tokenizer: no added token in either piece, so sentencepiece whole
    assert m.prompt_ids(prompt) == [m.tokenizer.bos_token_id, *sp.encode(head), IMAGE_TOKEN_INDEX, *sp.encode(tail)]
    res = _pipeline(m, chatpose_max_new_tokens=2).estimate(np.zeros((40, 40, 3), np.uint8), QUESTION)
    assert res.query == QUESTION


class _AlwaysPose(_NeverPose):
    def forward(self, h):
        out = self.head(h).clone()
        out[..., self.pose] = 1e9
        return out


def _two_pose_model() -> ChatPoseModel:
    """A tiny model whose every answer token is [SEG] (its logit lifted)."""
    m = _model()
    m.lm.lm_head = _AlwaysPose(m.lm.lm_head, m.pose_token_id)
    return m


def test_several_pose_tokens_keep_the_last_as_upstream():
    """Upstream keeps the last pose token's state (`text_embeddings[-1:]`)."""
    m = _two_pose_model()
    gen = m.generate(None, QUESTION, max_new_tokens=3)
    assert gen.num_poses >= 2
    res = _pipeline(m, chatpose_max_new_tokens=3).estimate(None, QUESTION)
    assert len(res.people) == 1 and res.selected == 0 and not res.pose_forced
    with torch.no_grad():
        last = m.rotmats_to_theta(m.pose_rotmats(gen.pose_hidden[-1:]))[0].numpy()
    np.testing.assert_allclose(res.people[0].theta, last, atol=1e-5)
    assert res.answer.count("[POSE]") == gen.num_poses


def test_pose_forcing_is_off_by_default_for_chatpose():
    """Upstream never forces the pose token: nor does the ChatPose profile unless asked."""
    assert PipelineConfig().chatpose_force_pose_token is False
    res = _pipeline(_silent_model(), chatpose_max_new_tokens=4).estimate(None, QUESTION)
    assert res.people == () and not res.pose_forced and res.selected == -1


@pytest.mark.parametrize("bf16,expect", [(True, torch.bfloat16), (False, torch.float16)])
def test_auto_dtype_is_bf16_on_cuda_as_upstream(monkeypatch, bf16, expect):
    """The released inference runs bf16 (--precision default); fp16 only where the GPU lacks bf16."""
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert ck.resolve_dtype("auto", torch.device("cuda")) == expect
    assert ck.resolve_dtype("auto", torch.device("cpu")) == torch.float32
