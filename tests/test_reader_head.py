"""The reader's decision heads (reader.InteractionPointerHead, reader.LateInteractionHead) and
their training on the frozen reader's states (offline.train_reader_head)."""
from __future__ import annotations

import hashlib
import json

import pytest
import torch

from chatpose_ros.models.default.reader import (ADAPTER_FILE, SPEC_FILE, InteractionPointerHead, LateInteractionHead,
                                                ReaderSpec)

H = 16


def test_one_example_equals_its_row_of_a_padded_batch():
    torch.manual_seed(0)
    head = InteractionPointerHead(H, dim=8).eval()
    examples = [(torch.randn(n, H), torch.randn(H), torch.randn(H)) for n in (0, 1, 3, 5)]
    P = 6
    lines = torch.zeros(len(examples), P, H)
    mask = torch.zeros(len(examples), P, dtype=torch.bool)
    for b, (ln, _, _) in enumerate(examples):
        lines[b, :len(ln)], mask[b, :len(ln)] = ln, True
    batch, counted = head.forward_batch(lines, mask, torch.stack([e[1] for e in examples]),
                                        torch.stack([e[2] for e in examples]), with_counted=True)
    assert batch.shape == (len(examples), P + len(head.kinds)) and counted.shape == (len(examples), P, 1)
    for b, (ln, q, last) in enumerate(examples):
        one = head(ln, q, last)
        n = len(ln)
        assert one.shape == (n + 4,)
        assert torch.allclose(one[:n], batch[b, :n], atol=1e-5) and torch.allclose(one[n:], batch[b, P:], atol=1e-5)
        assert torch.allclose(head.outputs(ln, q, last)[1][:, 0], counted[b, :n, 0], atol=1e-5)
        assert torch.isinf(batch[b, n:P]).all()


@pytest.mark.parametrize("cls", [InteractionPointerHead, LateInteractionHead])
def test_count_all_is_a_fifth_kind_and_the_example_label_points_at_it(cls):
    from chatpose_ros.models.default.offline.scene_questions import SceneWords, make_qa
    from chatpose_ros.models.default.offline.train_reader import Example
    from chatpose_ros.models.default.reader import COUNT_ALL_KIND, COUNT_KIND

    assert cls(H, dim=8).kinds[-1] == COUNT_KIND
    head = cls(H, dim=8, count_all=True)
    assert head.kinds[-2:] == (COUNT_KIND, COUNT_ALL_KIND)
    assert head.other[-1].out_features + head.count_all.out_features == len(head.kinds)
    lines, question = torch.randn(3, H), torch.randn(H)
    inputs = (lines, question, torch.randn(H)) if cls is InteractionPointerHead else (
        lines, torch.tensor([0, 1, 2]), question[None], torch.randn(H))
    assert head(*inputs).shape == (3 + len(head.kinds),)
    rng = __import__("numpy").random.default_rng(0)
    seen = set()
    for _ in range(80):
        qa = make_qa(rng, "train", category="counting")
        e = Example(qa.scene, qa.question, qa.answer, qa.target, counted=qa.counted, everyone=qa.counts_everyone)
        n = len(qa.scene.people)
        assert isinstance(qa.scene, SceneWords)
        assert e.decision(count_kind=True) == n + 3  # without the fifth kind: the count kind
        want = n + 4 if qa.family == "count_all" else n + 3
        assert e.decision(count_kind=True, count_all=True) == want, (qa.family, qa.question)
        seen.add(qa.family)
    assert seen == {"count_all", "count_filtered"}


def _synthetic(g, protos, count: bool):
    """Lines are noisy prototypes; the question is one prototype. A choice: the one line of
    that prototype (decision index = its position). A count: every line of that prototype is
    counted (decision index n + 3, the count kind)."""
    n = int(torch.randint(2, 6, (1,), generator=g))
    if count:
        kinds = torch.randint(0, 3, (n,), generator=g)
        asked = int(torch.randint(0, 3, (1,), generator=g))
        counted = (kinds == asked).float()
        lines = protos[kinds] + 0.1 * torch.randn(n, H, generator=g)
        return (lines, protos[asked] + protos[5], torch.zeros(H)), n + 3, counted, None
    kinds = torch.randperm(5, generator=g)[:n]
    t = int(torch.randint(0, n, (1,), generator=g))
    lines = protos[kinds] + 0.1 * torch.randn(n, H, generator=g)
    return (lines, protos[kinds[t]].clone(), torch.zeros(H)), t, None, None


def test_head_learns_choices_and_counts_that_depend_on_the_question():
    """Synthetic states: the head must choose the line that matches the question and count the
    lines that match it, far above chance on new examples (fails if the question is ignored)."""
    from chatpose_ros.models.default.offline.train_reader_head import train_head

    g = torch.Generator().manual_seed(1)
    protos = torch.randn(6, H, generator=g)
    train = [_synthetic(g, protos, i % 4 == 0) for i in range(2000)]
    val = [_synthetic(g, protos, i % 4 == 0) for i in range(400)]
    _, fit = train_head(train, val, ReaderSpec(pointer=True, pointer_kind="interact"), H, seed=0, epochs=15,
                        lr=3e-3, max_people=10)
    assert fit["val_acc"] > 0.8, fit  # chance is about 0.3 for a choice
    assert fit["val_count_exact"] > 0.7, fit  # a count of 2-5 people right by chance: well under 0.3


def test_late_head_one_example_equals_its_row_of_a_padded_batch():
    from chatpose_ros.models.default.offline.train_reader_head import _forward, _pad

    torch.manual_seed(0)
    head = LateInteractionHead(H, dim=8, late_dim=8, groups=2).eval()
    feats = []
    for lengths in ((), (3,), (4, 2, 5), (1, 1, 1, 1, 2)):
        line_of = torch.cat([torch.full((t,), k) for k, t in enumerate(lengths)]) if lengths else torch.zeros(0)
        feats.append(((torch.randn(len(line_of), H), line_of.long(), torch.randn(3 + len(lengths), H), torch.randn(H)),
                      0, None, None))
    batch, counted = _forward(head, _pad(feats, 6, token_level=True))
    for b, (inputs, *_) in enumerate(feats):
        n = len(set(inputs[1].tolist()))
        one = head(*inputs)
        assert one.shape == (n + 4,)
        assert torch.allclose(one[:n], batch[b, :n], atol=1e-5) and torch.allclose(one[n:], batch[b, 6:], atol=1e-5)
        assert torch.allclose(head.outputs(*inputs)[1][:, 0], counted[b, :n, 0], atol=1e-5)
        assert torch.isinf(batch[b, n:6]).all()


def _tokens_example(g, vocab, n_words: int = 12):
    """Token states: each person line is `n_words` noise tokens (vocabulary rows 6..) and one
    attribute token (rows 0..5, a different one per line); the question holds three noise tokens
    and the target's attribute token. One attribute among 13 tokens is diluted in a line's mean."""
    n = int(torch.randint(2, 6, (1,), generator=g))
    attrs = torch.randperm(6, generator=g)[:n]
    tokens, line_of = [], []
    for k in range(n):
        words = vocab[6 + torch.randint(0, len(vocab) - 6, (n_words,), generator=g)]
        at = int(torch.randint(0, n_words + 1, (1,), generator=g))
        tokens.append(torch.cat((words[:at], vocab[attrs[k]][None], words[at:])))
        line_of.append(torch.full((n_words + 1,), k))
    t = int(torch.randint(0, n, (1,), generator=g))
    question = torch.cat((vocab[6 + torch.randint(0, len(vocab) - 6, (3,), generator=g)], vocab[attrs[t]][None]))
    return (torch.cat(tokens), torch.cat(line_of), question, torch.zeros(vocab.shape[1])), t, None, None


def test_late_head_finds_one_word_among_many():
    """The token-level head picks the line holding the question's attribute token, where a mean
    over the line's tokens dilutes it (fails if the token-level match does not work)."""
    from chatpose_ros.models.default.offline.train_reader_head import train_head

    g = torch.Generator().manual_seed(3)
    vocab = torch.randn(40, H, generator=g)
    train = [_tokens_example(g, vocab) for _ in range(1500)]
    val = [_tokens_example(g, vocab) for _ in range(300)]
    _, fit = train_head(train, val, ReaderSpec(pointer=True, pointer_kind="late"), H, seed=0, epochs=8, lr=3e-3,
                        max_people=10)
    assert fit["val_acc"] > 0.8, fit  # chance is about 0.3


def test_yes_score_answers_about_the_chosen_person():
    """Synthetic yes/no questions: the question names a line's attribute token (who is asked
    about) and a second token; the answer is yes when that person's line holds the second token
    too. The head's yes score at the target must learn it (chance 0.5; fails if the yes score is
    not trained or does not read the chosen person's line)."""
    from chatpose_ros.models.default.offline.train_reader_head import _forward, _pad, train_head

    g = torch.Generator().manual_seed(5)
    vocab = torch.randn(40, H, generator=g)

    def example():
        (tokens, line_of, question, last), t, _, _ = _tokens_example(g, vocab, n_words=4)
        flag = int(torch.randint(0, 2, (1,), generator=g))
        if flag:  # the asked person's line gets the property token (row 39)
            tokens = torch.cat((tokens, vocab[39][None]))
            line_of = torch.cat((line_of, torch.tensor([t])))
            order = torch.argsort(line_of, stable=True)
            tokens, line_of = tokens[order], line_of[order]
        question = torch.cat((question, vocab[39][None]))
        return (tokens, line_of, question, last), t, None, float(flag)

    train = [example() for _ in range(1500)]
    val = [example() for _ in range(300)]
    spec = ReaderSpec(pointer=True, pointer_kind="late", yes_no=True)
    head, _ = train_head(train, val, spec, H, seed=0, epochs=10, lr=3e-3, max_people=10)
    assert head.yes is not None
    t = _pad(val, 10, token_level=True)
    with torch.no_grad():
        _, per_person = _forward(head, t)
    at = per_person[..., 1].gather(1, t["target"][:, None])[:, 0]
    assert ((at > 0).float() == t["yes"]).float().mean() > 0.8


@pytest.mark.timeout(900)
@pytest.mark.parametrize("kind", ["interact", "late"])
def test_head_training_reproduces_itself(tmp_path, kind):
    """Two runs with the same seed over the shipped reader write byte-identical weights (each run
    loads what it wrote and decides with it to fit the temperature)."""
    from chatpose_ros.models.default.offline import train_reader_head
    from chatpose_ros.models.default.pipeline import DEFAULT_WEIGHTS_DIR

    shas = []
    for run in ("a", "b"):
        rec = train_reader_head.train(DEFAULT_WEIGHTS_DIR, seed=2, examples=8, val=4, epochs=2, out=tmp_path / run,
                                      calibration_samples=4, head=kind)
        shas.append(hashlib.sha256((tmp_path / run / ADAPTER_FILE).read_bytes()).hexdigest())
        assert rec["spec"]["pointer_kind"] == kind and rec["adapter_sha256"] == shas[-1]
        assert json.loads((tmp_path / run / SPEC_FILE).read_text())["head_stage"]["best_epoch"] >= 1
    assert shas[0] == shas[1]


@pytest.mark.parametrize("cls", [InteractionPointerHead, LateInteractionHead])
def test_optional_outputs_leave_the_other_weights_first_draw_alone(cls):
    """count_all's row and the yes score are drawn on a fork of the random state: every other
    weight starts as in the head without them (the head's training depends much on its first
    draw, so a comparison with and without them would otherwise compare two draws)."""
    torch.manual_seed(0)
    plain = cls(64, dim=32).state_dict()
    torch.manual_seed(0)
    full = cls(64, dim=32, count_all=True, yes_no=True).state_dict()
    assert set(full) - set(plain) == {"yes.0.weight", "yes.0.bias", "yes.2.weight", "yes.2.bias",
                                      "count_all.weight", "count_all.bias"}
    for k, v in plain.items():
        assert torch.equal(full[k], v), k


def test_extend_trains_only_the_outputs_the_head_lacks():
    """train_head with `start` (train_reader_head --extend): the trained head's weights stay as
    they were, the yes score it lacked learns (chance 0.5)."""
    from chatpose_ros.models.default.offline.train_reader_head import train_head

    g = torch.Generator().manual_seed(1)
    protos = torch.randn(6, H, generator=g)

    def example():
        (lines, q, last), t, _, _ = _synthetic(g, protos, False)
        yes = float(lines[t] @ protos[5] > 0)  # the yes answer reads the chosen line
        return (lines, q, last), t, None, yes

    train = [example() for _ in range(1500)]
    val = [example() for _ in range(300)]
    base, _ = train_head(train, val, ReaderSpec(pointer=True, pointer_kind="interact"), H, seed=0, epochs=3,
                         lr=3e-3, max_people=10)
    start = {k: v.clone() for k, v in base.state_dict().items()}
    spec = ReaderSpec(pointer=True, pointer_kind="interact", yes_no=True, count_all=True)
    head, _ = train_head(train, val, spec, H, seed=0, epochs=6, lr=3e-3, max_people=10, start=start)
    for k, v in start.items():
        assert torch.equal(head.state_dict()[k], v), k
    from chatpose_ros.models.default.offline.train_reader_head import _forward, _pad

    t = _pad(val, 10)
    with torch.no_grad():
        _, per_person = _forward(head, t)
    at = per_person[..., 1].gather(1, t["target"][:, None])[:, 0]
    assert ((at > 0).float() == t["yes"]).float().mean() > 0.75
