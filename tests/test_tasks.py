"""Tests for the digit-sum task (pglib/tasks.py): rewards by hand, the correct completions
counted by hand and by brute force, the prefix enumeration and the pretraining sampler."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given, settings

import pglib
from pglib.tasks import EOS, PAD, TARGET_BASE

TASK = pglib.DigitSumTask()


def _sequence(target: int, *completion: int) -> list[int]:
    padded = [*completion, *[PAD] * (TASK.completion_length - len(completion))]
    return [TARGET_BASE + target - TASK.min_target, *padded]


def test_vocabulary_and_prompts() -> None:
    assert TASK.max_digits == 3 and TASK.targets == tuple(range(5, 21))
    assert TASK.vocab_size == 28 == len(TASK.token_names)
    assert TASK.token_names[:12] == (*"0123456789", "<eos>", "<pad>")
    assert TASK.token_names[-1] == "<t=20>"
    prompts = TASK.prompts()
    assert prompts.shape == (16, 1) and prompts.dtype == torch.long
    assert TASK.decode(prompts)[3] == "<t=8>"
    assert TASK.decode(torch.tensor([_sequence(13, 4, 9, EOS)])) == ["<t=13> 4 9 <eos>"]


@pytest.mark.parametrize(
    ("target", "completion", "expected"),
    [
        (13, (4, 9, EOS), 1.0),
        (5, (5, EOS), 1.0),
        (5, (0, 0, 5, EOS), 1.0),  # leading zeros count as digits: three of them
        (13, (6, 6, EOS), 0.0),  # the wrong sum
        (13, (4, 9, TARGET_BASE), 0.0),  # ends with a token other than EOS
        (13, (4, 9, PAD), 0.0),  # PAD is not an end either
        (5, (EOS,), 0.0),  # no digit
        (5, (1, 1, 1, 2), 0.0),  # cut after max_digits = 3 digits
        (5, (5, EOS, 9, 9), 1.0),  # what follows the end does not matter
    ],
)
def test_reward_by_hand(target: int, completion: tuple[int, ...], expected: float) -> None:
    assert TASK.reward(torch.tensor([_sequence(target, *completion)])).tolist() == [expected]


def test_correct_completions_counted_by_hand_and_by_brute_force() -> None:
    # t = 5: one 1-digit string, 6 of 2 digits (0+5 .. 5+0), C(7, 2) = 21 of 3 digits.
    assert TASK.correct_completions(5).shape == (28, 4)
    # t = 20 needs 3 digits: C(22, 2) − 3 C(12, 2) + 3 C(2, 2) = 231 − 198 + 3 = 36.
    assert TASK.correct_completions(20).shape == (36, 4)
    for target in TASK.targets:
        table = TASK.correct_completions(target)
        prompts = torch.full((len(table), 1), TARGET_BASE + target - TASK.min_target)
        assert TASK.reward(torch.cat([prompts, table], dim=1)).eq(1).all()
        by_brute_force = 0
        for n in range(1, TASK.max_digits + 1):  # every well-formed completion, all targets
            strings = torch.cartesian_prod(*[torch.arange(10)] * n).reshape(-1, n)
            by_brute_force += int((strings.sum(dim=1) == target).sum())
        assert len(table) == by_brute_force == len({tuple(r) for r in table.tolist()})


def test_all_digit_strings_spell_their_row_index() -> None:
    strings = TASK.all_digit_strings()
    assert strings.shape == (1000, 3)
    assert strings[407].tolist() == [4, 0, 7]
    assert (strings @ torch.tensor([100, 10, 1])).equal(torch.arange(1000))


def test_pretraining_batch_shapes_masks_and_mix() -> None:
    generator = torch.Generator().manual_seed(0)
    tokens, mask = TASK.pretraining_batch(4000, generator)
    assert tokens.shape == (4000, 5) and mask.shape == (4000, 4)
    assert mask.equal(tokens[:, 1:] != PAD)
    ends = tokens[:, 1:].gather(1, mask.sum(dim=1, keepdim=True) - 1)
    assert ends.eq(EOS).all()  # every completion is well formed, ending with its EOS
    # 30% valid, plus the random strings that happen to hit the target (about 3%): a
    # binomial standard error of 0.007 at 4,000 rows, so ±0.04 is more than 5 of them.
    assert TASK.reward(tokens).mean().item() == pytest.approx(0.33, abs=0.04)
    all_valid, _ = TASK.pretraining_batch(50, generator, valid_fraction=1.0)
    assert TASK.reward(all_valid).eq(1).all()
    again = TASK.pretraining_batch(4000, torch.Generator().manual_seed(0))
    assert again[0].equal(tokens)


@settings(max_examples=30, deadline=None)
@given(
    target=st.integers(5, 20),
    completion=st.lists(st.integers(0, 27), min_size=4, max_size=4),
    tail=st.lists(st.integers(0, 27), min_size=4, max_size=4),
)
def test_reward_ignores_what_follows_the_end(target, completion, tail) -> None:
    ends = [i for i, token in enumerate(completion) if token >= 10]
    end = ends[0] if ends else len(completion) - 1
    changed = completion[: end + 1] + tail[end + 1 :]
    pair = [_sequence(target, *completion), _sequence(target, *changed)]
    rewards = TASK.reward(torch.tensor(pair))
    assert rewards[0] == rewards[1] and rewards[0] in (0.0, 1.0)


def test_task_fields_are_checked() -> None:
    assert pglib.DigitSumTask(1, 18, 2).vocab_size == 30
    with pytest.raises(ValueError, match="max_target must be at most 9 × max_digits = 18"):
        pglib.DigitSumTask(5, 20, 2)
    with pytest.raises(ValueError, match="max_digits must be at most 6"):
        pglib.DigitSumTask(max_digits=7)
