"""Tests for pglib/preferences.py: preference pairs and labelled completions sampled from a model
and labelled by the task's true reward, with label noise."""

from __future__ import annotations

import math

import pytest
import torch

import pglib

TASK = pglib.DigitSumTask()
BASE = pglib.load_pretrained_lm()


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pairs(n: int, noise: float = 0.0, seed: int = 0) -> pglib.PreferencePairs:
    return pglib.sample_preference_pairs(BASE, n, label_noise=noise, generator=_generator(seed))


def _labelled(n: int, noise: float = 0.0, seed: int = 0) -> pglib.LabelledCompletions:
    return pglib.sample_labelled_completions(BASE, n, label_noise=noise, generator=_generator(seed))


def _within_binomial(hits: int, n: int, p: float, sds: float = 4.0) -> bool:
    """|hits/n − p| within ``sds`` binomial standard deviations (4 sd: a false alarm about
    once in 16,000 runs, while an off-by-0.05 rate at n = 2,000 sits 5.6 sd away)."""
    return abs(hits / n - p) <= sds * math.sqrt(p * (1 - p) / n)


# --- layout ---------------------------------------------------------------------------------


def _assert_generate_layout(tokens: torch.Tensor, mask: torch.Tensor) -> None:
    """What generate returns: the prompt, digits until the first non-digit token, PAD after
    it; the mask True up to and including that token."""
    length = TASK.completion_length
    assert tokens.dtype == torch.long and tokens.shape[1] == 1 + length
    assert mask.dtype == torch.bool and mask.shape == (tokens.shape[0], length)
    assert (tokens[:, 0] >= 12).all()
    completion = tokens[:, 1:]
    before = torch.cat([torch.ones(len(tokens), 1, dtype=torch.bool), completion[:, :-1] < 10], 1)
    assert torch.equal(mask, before.cumprod(dim=1).bool())  # up to the first non-digit
    assert (completion[~mask] == pglib.PAD).all() and (completion[mask] != pglib.PAD).all()


def test_pairs_have_generates_layout_and_share_their_prompt() -> None:
    pairs = _pairs(64)
    assert len(pairs) == 64
    _assert_generate_layout(pairs.chosen, pairs.chosen_mask)
    _assert_generate_layout(pairs.rejected, pairs.rejected_mask)
    assert torch.equal(pairs.chosen[:, 0], pairs.rejected[:, 0])
    assert pairs.flipped.dtype == torch.bool and pairs.flipped.shape == (64,)


def test_labelled_completions_have_generates_layout() -> None:
    data = _labelled(64)
    assert len(data) == 64
    _assert_generate_layout(data.tokens, data.mask)
    assert data.desirable.shape == data.flipped.shape == (64,)


# --- labels ---------------------------------------------------------------------------------


def test_without_noise_the_chosen_completion_is_right_and_the_rejected_wrong() -> None:
    pairs = _pairs(256)
    assert not pairs.flipped.any()
    assert (TASK.reward(pairs.chosen) == 1).all() and (TASK.reward(pairs.rejected) == 0).all()


def test_with_noise_exactly_the_flipped_pairs_are_reversed_at_the_noise_rate() -> None:
    n, noise = 2_000, 0.2
    pairs = _pairs(n, noise)
    flipped = pairs.flipped
    assert torch.equal(TASK.reward(pairs.chosen), (~flipped).float())
    assert torch.equal(TASK.reward(pairs.rejected), flipped.float())
    assert _within_binomial(int(flipped.sum()), n, noise), flipped.float().mean()


def test_labelled_completions_are_desirable_exactly_when_right_unless_flipped() -> None:
    n, noise = 2_000, 0.2
    data = _labelled(n, noise)
    assert torch.equal(data.desirable ^ data.flipped, TASK.reward(data.tokens) > 0)
    assert _within_binomial(int(data.flipped.sum()), n, noise), data.flipped.float().mean()
    clean = _labelled(n)
    assert not clean.flipped.any()
    assert torch.equal(clean.desirable, TASK.reward(clean.tokens) > 0)
    # the base model's exact success is 0.145: that share of completions is desirable
    success = pglib.exact_success(BASE).mean().item()
    assert _within_binomial(int(clean.desirable.sum()), n, success)


def test_prompts_are_uniform_over_the_tasks_prompts() -> None:
    # Each of the 16 prompts gets 1/16 of 4,000 draws; a chi-square with 15 degrees of freedom
    # exceeds 40 with probability 4e-4.
    prompts = _labelled(4_000).tokens[:, 0] - 12
    counts = torch.bincount(prompts, minlength=16).double()
    assert ((counts - 250) ** 2 / 250).sum() < 40, counts


# --- seeding and indexing -----------------------------------------------------------------


def test_the_generator_alone_seeds_the_draws() -> None:
    torch.manual_seed(1)
    a = _pairs(32, 0.3, seed=5)
    torch.manual_seed(2)  # the global RNG plays no part
    b, c = _pairs(32, 0.3, seed=5), _pairs(32, 0.3, seed=6)
    for name in ("chosen", "rejected", "chosen_mask", "rejected_mask", "flipped"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.chosen, c.chosen)
    assert torch.equal(_labelled(32, 0.3, 5).tokens, _labelled(32, 0.3, 5).tokens)


def test_indexing_by_rows_returns_the_same_kind_restricted_to_those_rows() -> None:
    pairs, data = _pairs(8, 0.5), _labelled(8, 0.5)
    rows = torch.tensor([5, 0, 5])
    sub = pairs[rows]
    assert isinstance(sub, pglib.PreferencePairs) and len(sub) == 3
    for name in ("chosen", "rejected", "chosen_mask", "rejected_mask", "flipped"):
        assert torch.equal(getattr(sub, name), getattr(pairs, name)[rows]), name
    part = data[rows]
    assert isinstance(part, pglib.LabelledCompletions) and len(part) == 3
    for name in ("tokens", "mask", "desirable", "flipped"):
        assert torch.equal(getattr(part, name), getattr(data, name)[rows]), name


def test_indexing_refuses_anything_but_a_long_tensor_of_rows() -> None:
    pairs = _pairs(4)
    with pytest.raises(ValueError, match=r"rows must be a torch.long tensor \[K\]"):
        pairs[torch.tensor([True, False, True, False])]
    with pytest.raises(ValueError, match=r"rows must lie in \[0, 4\), got values 1..4"):
        pairs[torch.tensor([1, 4])]
    with pytest.raises(ValueError, match=r"rows must be a torch\.long tensor"):
        _labelled(4)[0]


def test_a_model_that_is_never_right_gives_up_with_a_message() -> None:
    never = pglib.TinyLM(TASK)
    with torch.no_grad():
        never.head.bias.fill_(-50.0)
        never.head.bias[pglib.PAD] = 50.0  # always ends at once with PAD: reward 0
    with pytest.raises(ValueError, match="model must give right-vs-wrong pairs"):
        pglib.sample_preference_pairs(never, 1, generator=_generator())
