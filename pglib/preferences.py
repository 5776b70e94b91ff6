"""Preference data labelled by the task's true reward: pairs for a reward model and DPO,
unpaired labelled completions for KTO.

Both kinds are sampled from a model with :func:`pglib.generate` at prompts drawn uniformly
from the task's prompts, and keep ``generate``'s layout: tokens long [N, 1 + T] (the prompt
token, then the completion, PAD after its end) and a bool mask [N, T] marking the completion's
tokens up to and including the one that ends it, with T = ``task.completion_length``.

The digit-sum reward is 0 or 1, so a pair carries a preference only when one completion is
right and the other wrong; pairs of equal reward are discarded. A labeller that errs with
probability ``label_noise`` swaps a pair's order (or flips a completion's label); the
``flipped`` flags record where, so that a reader can measure against the true order.

Introduced in Chapter 13 (pairs) and Chapter 15 (labelled completions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import TypeVar

import torch
from torch import Tensor

from pglib import _checks
from pglib.lm import TinyLM, generate

__all__ = [
    "PreferencePairs",
    "sample_preference_pairs",
    "LabelledCompletions",
    "sample_labelled_completions",
]

#: A size guard on the number of pairs or completions drawn.
MAX_SAMPLES = 1_000_000
#: The most label noise a labeller may have: at 0.5 the labels say nothing.
MAX_LABEL_NOISE = 0.5
#: Prompts drawn per pair kept, at most, before sampling gives up: a model that is (almost)
#: always right or always wrong yields (almost) no right-vs-wrong pairs.
MAX_DRAWS_PER_PAIR = 1_000
#: The most prompts one round of sampling draws (two completions each).
MAX_ROUND = 1 << 14

Data = TypeVar("Data", "PreferencePairs", "LabelledCompletions")


def _rows(data: Data, rows: object) -> Data:
    """``data`` restricted to ``rows``, a long tensor [K] of indices in [0, N)."""
    rows = _checks.long_tensor("rows", rows, shape=("K",))
    _checks.index_array("rows", rows, high=len(data))
    return replace(data, **{f.name: getattr(data, f.name)[rows] for f in fields(data)})


def _check_sequences(tokens_name: str, tokens: object, mask_name: str, mask: object) -> int:
    """Check tokens long [N, 1 + T] and mask bool [N, T], T >= 1, as :func:`pglib.generate`
    returns them; return N."""
    tokens = _checks.long_tensor(tokens_name, tokens, shape=("N", "1 + T"))
    if tokens.shape[1] < 2:
        raise ValueError(
            f"{tokens_name} must hold a prompt token and at least one completion token, got "
            f"shape {tuple(tokens.shape)}"
        )
    _checks.instance(mask_name, mask, Tensor, "a bool torch tensor")
    _checks.bool_flags(mask_name, mask, (tokens.shape[0], tokens.shape[1] - 1))
    return tokens.shape[0]


@dataclass(frozen=True)
class PreferencePairs:
    """N preference pairs: for pair i, ``chosen[i]`` was preferred to ``rejected[i]``.

    ``chosen``, ``rejected``: long [N, 1 + T], the same prompt token then a completion, as
    :func:`pglib.generate` lays them out; ``chosen_mask``, ``rejected_mask``: bool [N, T], as
    ``generate``'s mask; ``flipped``: bool [N], True where label noise swapped the true order
    (the chosen completion is then the wrong one). ``len(pairs)`` is N, and ``pairs[rows]``
    with a long tensor of row indices is a PreferencePairs of those rows. Introduced in
    Chapter 13.
    """

    chosen: Tensor
    rejected: Tensor
    chosen_mask: Tensor
    rejected_mask: Tensor
    flipped: Tensor

    def __post_init__(self) -> None:
        n = _check_sequences("chosen", self.chosen, "chosen_mask", self.chosen_mask)
        _checks.long_tensor("rejected", self.rejected, shape=tuple(self.chosen.shape))
        _check_sequences("rejected", self.rejected, "rejected_mask", self.rejected_mask)
        if not torch.equal(self.chosen[:, 0], self.rejected[:, 0]):
            raise ValueError("chosen and rejected must share each pair's prompt token (column 0)")
        _checks.instance("flipped", self.flipped, Tensor, "a bool torch tensor")
        _checks.bool_flags("flipped", self.flipped, (n,))

    def __len__(self) -> int:
        return self.chosen.shape[0]

    def __getitem__(self, rows: Tensor) -> PreferencePairs:
        return _rows(self, rows)


@dataclass(frozen=True)
class LabelledCompletions:
    """N completions, each labelled desirable or undesirable: KTO's unpaired data.

    ``tokens``: long [N, 1 + T] and ``mask``: bool [N, T], as :func:`pglib.generate` returns
    them; ``desirable``: bool [N], the label after noise; ``flipped``: bool [N], True where
    label noise flipped the true label (true reward 1 is ``desirable ^ flipped``).
    ``len(data)`` is N, and ``data[rows]`` with a long tensor of row indices is a
    LabelledCompletions of those rows. Introduced in Chapter 15.
    """

    tokens: Tensor
    mask: Tensor
    desirable: Tensor
    flipped: Tensor

    def __post_init__(self) -> None:
        n = _check_sequences("tokens", self.tokens, "mask", self.mask)
        for name in ("desirable", "flipped"):
            _checks.instance(name, getattr(self, name), Tensor, "a bool torch tensor")
            _checks.bool_flags(name, getattr(self, name), (n,))

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, rows: Tensor) -> LabelledCompletions:
        return _rows(self, rows)


def _check_sampling(
    model: object, n: object, n_name: str, label_noise: object, generator: object
) -> tuple[int, float]:
    _checks.instance("model", model, TinyLM, "a TinyLM")
    n = _checks.positive_int(n_name, n, limit=MAX_SAMPLES)
    noise = _checks.real("label_noise", label_noise, low=0.0, high=MAX_LABEL_NOISE)
    _checks.instance("generator", generator, torch.Generator, "a torch.Generator")
    return n, noise


def _sample(
    model: TinyLM, n: int, per_prompt: int, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """``per_prompt`` completions (adjacent) at each of n uniform prompts: (tokens
    [n · per_prompt, 1 + T], mask [n · per_prompt, T], true rewards [n · per_prompt])."""
    task = model.task
    prompts = task.prompts()[torch.randint(len(task.targets), (n,), generator=generator)]
    prompts = prompts.repeat_interleave(per_prompt, dim=0)
    tokens, _, mask = generate(model, prompts, task.completion_length, generator=generator)
    return tokens, mask, task.reward(tokens)


def sample_preference_pairs(
    model: TinyLM, n_pairs: int, *, label_noise: float = 0.0, generator: torch.Generator
) -> PreferencePairs:
    """``n_pairs`` preference pairs sampled from ``model`` and labelled by the true reward.

    Each round draws prompts uniformly from the task's prompts and samples two completions of
    each (:func:`pglib.generate`, temperature 1). A pair whose two rewards are equal carries
    no preference and is discarded; rounds go on until ``n_pairs`` pairs are kept (in the
    order drawn). The right completion is chosen, except that with probability
    ``label_noise`` (in [0, 0.5]) the two are swapped, recorded in ``flipped``. A round draws
    enough prompts for the pairs still missing at the share kept so far. Raises a ValueError
    when more than 1,000 prompts per pair were drawn (a model almost always right, or
    always wrong). Seeded by ``generator`` only. Introduced in Chapter 13.
    """
    n_pairs, noise = _check_sampling(model, n_pairs, "n_pairs", label_noise, generator)
    return _sample_pairs(model, n_pairs, noise, generator)[0]


def _sample_pairs(
    model: TinyLM,
    n_pairs: int,
    noise: float,
    generator: torch.Generator,
    max_prompts: int | None = None,
) -> tuple[PreferencePairs, int]:
    """:func:`sample_preference_pairs` on checked arguments, and the number of completions
    sampled, discarded pairs included (the data cost :func:`pglib.align` records). With
    ``max_prompts``, drawing stops after that many prompts, with fewer pairs (maybe none)
    when they ran out, instead of the ValueError."""
    budget = MAX_DRAWS_PER_PAIR * n_pairs if max_prompts is None else max_prompts
    kept: list[tuple[Tensor, ...]] = []
    n_kept = drawn = 0
    while n_kept < n_pairs and drawn < budget:
        share = max(n_kept, 1) / max(drawn, 4)  # the share kept so far; 1/4 at first
        wanted = math.ceil(1.2 * (n_pairs - n_kept) / share) + 16
        size = min(MAX_ROUND, wanted, budget - drawn)
        tokens, mask, reward = _sample(model, size, 2, generator)
        tokens, mask, reward = tokens.view(size, 2, -1), mask.view(size, 2, -1), reward.view(-1, 2)
        flip = torch.rand(size, generator=generator) < noise
        keep = reward[:, 0] != reward[:, 1]
        # index 0 or 1 of the completion that is chosen: the right one, unless flipped
        first = (reward[:, 1] > reward[:, 0]).long() ^ flip.long()
        rows = torch.arange(size)
        kept.append(
            tuple(
                x[keep]
                for x in (
                    tokens[rows, first],
                    tokens[rows, 1 - first],
                    mask[rows, first],
                    mask[rows, 1 - first],
                    flip,
                )
            )
        )
        n_kept += int(keep.sum())
        drawn += size
    if n_kept < n_pairs and max_prompts is None:
        raise ValueError(
            f"model must give right-vs-wrong pairs (one completion of reward 1, one of 0), "
            f"got {n_kept} of {n_pairs} in {drawn:,} prompts"
        )
    columns = [torch.cat(parts)[:n_pairs] for parts in zip(*kept, strict=True)]
    return PreferencePairs(*columns), 2 * drawn


def sample_labelled_completions(
    model: TinyLM, n: int, *, label_noise: float = 0.0, generator: torch.Generator
) -> LabelledCompletions:
    """``n`` completions sampled from ``model`` at uniform prompts, each labelled desirable
    when its true reward is 1; with probability ``label_noise`` (in [0, 0.5]) a label is
    flipped, recorded in ``flipped``. KTO's unpaired data: at the committed base model about
    14.5 % are desirable, so the imbalance KTO's weights address comes with the task.
    Seeded by ``generator`` only. Introduced in Chapter 15.
    """
    n, noise = _check_sampling(model, n, "n", label_noise, generator)
    tokens, mask, reward = _sample(model, n, 1, generator)
    flipped = torch.rand(n, generator=generator) < noise
    return LabelledCompletions(tokens, mask, (reward > 0) ^ flipped, flipped)
