"""The verifiable token task of the language-model chapters: "digit sum".

A prompt is one token naming a target t (5..20 by default). A completion is 1 to
``max_digits`` digit tokens, then EOS. The reward is 1 when the completion is well formed and
its digits sum to t, else 0: for "<t=13>", "4 9 <eos>" earns 1; "6 6 <eos>", "4 9" followed
by a target token, and "4 9 0 0" (cut after three digits) earn 0.

**Every completion ends at its first non-digit token.** A model samples from its whole
vocabulary (a mask used while sampling but not in the log-probs would break the importance
ratio), so it may end with EOS (well formed after at least one digit) or with any other token
(malformed, reward 0). After ``max_digits`` digits the next token ends the completion whatever
it is: EOS is well formed, a digit is a completion cut for length (reward 0). So a completion
has at most ``max_digits + 1`` tokens, and the PAD token fills the positions after its end.

**Why three digits.** The chapters compute a model's success probability and its sequence KL
to a reference *exactly*, by visiting every node of the prefix tree: the digit prefixes of
length 0..D = ``max_digits``, (10^(D+1) − 1)/9 of them a prompt. The model is causal, so one
forward pass over the 10^D maximal prefixes of a prompt gives every node's next-token
distribution. Measured for :func:`pglib.exact_success` on the 104k-parameter
:class:`pglib.TinyLM` and 16 prompts, on one thread of a shared 2-core machine: D = 3 (1,111
nodes a prompt) 0.26 s; D = 4 (11,111 nodes) 5.2 s; D = 5 140 s (:func:`pglib.exact_kl`
needs two models, twice that). Only D = 3 keeps an exact evaluation cheap enough to run
inside a training loop. Every target up to 20 stays reachable in many ways (36 three-digit
strings sum to 20), and correct completions still have 1, 2 or 3 digits, so the length-bias
experiment of Chapter 12 has lengths to compare.

Token ids: the digits 0..9 are their own ids, then EOS, PAD, and one token per target.
Introduced in Chapter 11.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import Tensor

from pglib import _checks

__all__ = ["EOS", "PAD", "DigitSumTask"]

#: The end-of-sequence token: the only well-formed end of a completion.
EOS = 10
#: The padding token after a completion's end (never a training target, always masked out).
PAD = 11
#: The id of the first target token; the target t has id TARGET_BASE + t − min_target.
TARGET_BASE = 12
#: A size guard on max_digits: the prefix tree has (10^(D+1) − 1)/9 nodes a prompt.
MAX_DIGITS = 6


@dataclass(frozen=True)
class DigitSumTask:
    """The digit-sum task: targets ``min_target``..``max_target``, completions of 1 to
    ``max_digits`` digits then EOS.

    Sequences are token tensors [B, 1 + L]: the prompt token, then L completion tokens
    (L = ``completion_length`` = max_digits + 1 for sampled completions). Introduced in
    Chapter 11.
    """

    min_target: int = 5  # the smallest target a prompt names
    max_target: int = 20  # the largest (at most 9 × max_digits, so every target is reachable)
    max_digits: int = 3  # the longest well-formed completion, in digits (see the module notes)

    def __post_init__(self) -> None:
        _checks.integer("max_digits", self.max_digits, low=1, high=MAX_DIGITS, guard=True)
        _checks.integer("min_target", self.min_target, low=1)
        high = 9 * self.max_digits
        _checks.integer("max_target", self.max_target, low=self.min_target)
        if self.max_target > high:
            raise ValueError(
                f"max_target must be at most 9 × max_digits = {high} (a larger sum cannot be "
                f"written with {self.max_digits} digits), got {self.max_target}"
            )

    @property
    def targets(self) -> tuple[int, ...]:
        """The targets, in prompt order: (min_target, ..., max_target)."""
        return tuple(range(self.min_target, self.max_target + 1))

    @property
    def vocab_size(self) -> int:
        """V = 10 digits + EOS + PAD + one token per target."""
        return TARGET_BASE + len(self.targets)

    @property
    def completion_length(self) -> int:
        """The most tokens a completion can have: max_digits digits and the ending token."""
        return self.max_digits + 1

    @property
    def token_names(self) -> tuple[str, ...]:
        """The name of each token id: "0".."9", "<eos>", "<pad>", "<t=5>", ..."""
        return (
            *(str(d) for d in range(10)),
            "<eos>",
            "<pad>",
            *(f"<t={t}>" for t in self.targets),
        )

    def prompts(self) -> Tensor:
        """One prompt per target, in target order: a long tensor [n_targets, 1]."""
        return (TARGET_BASE + torch.arange(len(self.targets))).unsqueeze(1)

    def decode(self, tokens: Tensor) -> list[str]:
        """Readable strings for sequences [B, L], PAD left out: ["<t=13> 4 9 <eos>", ...]."""
        tokens = self._tokens("tokens", tokens)
        names = self.token_names
        return [" ".join(names[i] for i in row.tolist() if i != PAD) for row in tokens]

    def reward(self, tokens: Tensor) -> Tensor:
        """Rewards [B] (float32, 0 or 1) of sequences ``tokens`` [B, 1 + L]: the
        prompt token, then the completion.

        A completion earns 1 when its first non-digit token is EOS, after 1 to
        max_digits digits that sum to the prompt's target. Introduced in Chapter 11.
        """
        target = self._targets_of(tokens)
        completion = tokens[:, 1:]
        is_digit = completion < 10
        leading = is_digit.long().cumprod(dim=1).bool()  # digits before any non-digit
        n_digits = leading.sum(dim=1)
        total = torch.where(leading, completion, 0).sum(dim=1)
        last = completion.shape[1] - 1
        end = completion.gather(1, n_digits.clamp(max=last)[:, None])[:, 0]
        ends_well = (n_digits <= last) & (end == EOS)
        well_formed = ends_well & (n_digits >= 1) & (n_digits <= self.max_digits)
        return (well_formed & (total == target)).float()

    def correct_completions(self, target: int) -> Tensor:
        """Every correct completion of ``target``: long [K, completion_length], each row digits,
        EOS, then PAD; shorter first, lexicographic within a length. K is the number of strings
        of 1..max_digits digits summing to ``target``."""
        _checks.integer("target", target, low=self.min_target, high=self.max_target)
        return _correct_completions(self.max_digits, int(target)).clone()

    def all_digit_strings(self) -> Tensor:
        """All 10^D digit strings of length D = max_digits, long [10^D, D], in lexicographic
        order: row r spells r in base 10.

        They are the maximal paths of the prefix tree. The prefix of row r's first k digits is
        shared by the 10^(D−k) rows with the same r // 10^(D−k), so rows 0, 10^(D−k),
        2·10^(D−k), ... hold each k-digit prefix once, in lexicographic order.
        """
        return _digit_strings(self.max_digits).clone()

    def pretraining_batch(
        self, batch_size: int, generator: torch.Generator, *, valid_fraction: float = 0.3
    ) -> tuple[Tensor, Tensor]:
        """Pretraining data: ``(tokens [B, 1 + L], mask [B, L])`` with L = completion_length.

        Each row gets a uniform random target. With probability ``valid_fraction`` the
        completion is a uniform random correct one; otherwise it is 1..max_digits uniform
        random digits (uniform length) then EOS, which teaches the format but not the sum.
        ``mask`` marks the completion tokens up to and including EOS. Introduced in Chapter 11.
        """
        batch_size = _checks.positive_int("batch_size", batch_size, limit=1_000_000)
        _checks.instance("generator", generator, torch.Generator, "a torch.Generator")
        valid_fraction = _checks.unit_interval("valid_fraction", valid_fraction)
        n_targets, length = len(self.targets), self.completion_length

        def uniform(high: int, size: int) -> Tensor:
            return torch.randint(high, (size,), generator=generator)

        which = uniform(n_targets, batch_size)
        valid = torch.rand(batch_size, generator=generator) < valid_fraction
        n_digits = 1 + uniform(self.max_digits, batch_size)
        positions = torch.arange(length)
        digits = torch.randint(10, (batch_size, length), generator=generator)
        completion = torch.where(positions < n_digits[:, None], digits, PAD)
        completion[torch.arange(batch_size), n_digits] = EOS
        for index, target in enumerate(self.targets):  # replace the valid rows' completions
            rows = torch.nonzero(valid & (which == index))[:, 0]
            table = self.correct_completions(target)
            completion[rows] = table[uniform(table.shape[0], rows.numel())]
        tokens = torch.cat([TARGET_BASE + which[:, None], completion], dim=1)
        return tokens, completion != PAD

    # --- checks ---------------------------------------------------------------------------

    def _tokens(self, name: str, tokens: object) -> Tensor:
        """``tokens`` as a checked long tensor [B, L] of ids in [0, vocab_size)."""
        _checks.instance(name, tokens, Tensor, "a torch tensor of token ids")
        if tokens.dtype != torch.long or tokens.ndim != 2 or tokens.shape[1] < 1:
            raise ValueError(
                f"{name} must be a torch.long tensor [B, L] with L >= 1, got "
                f"{_checks.describe(tokens)}"
            )
        _checks.index_array(name, tokens, high=self.vocab_size)
        return tokens

    def _targets_of(self, tokens: object) -> Tensor:
        """The target [B] each sequence's prompt token names, after checking ``tokens``."""
        tokens = self._tokens("tokens", tokens)
        if tokens.shape[1] < 2:
            raise ValueError(
                f"tokens must hold a prompt token and at least one completion token, got "
                f"shape {tuple(tokens.shape)}"
            )
        prompt = tokens[:, 0]
        if bool((prompt < TARGET_BASE).any()):
            bad = int(prompt[prompt < TARGET_BASE][0])
            raise ValueError(
                f"tokens[:, 0] must be prompt tokens (ids {TARGET_BASE}..{self.vocab_size - 1}),"
                f" got {bad}"
            )
        return prompt - TARGET_BASE + self.min_target


@functools.cache
def _digit_strings(length: int) -> Tensor:
    """All digit strings of ``length`` as a long tensor [10^length, length], lexicographic."""
    grids = torch.meshgrid(*[torch.arange(10)] * length, indexing="ij")
    return torch.stack([g.reshape(-1) for g in grids], dim=1)


@functools.cache
def _correct_completions(max_digits: int, target: int) -> Tensor:
    rows = []
    for n in range(1, max_digits + 1):
        strings = _digit_strings(n)
        hits = strings[strings.sum(dim=1) == target]
        tail = torch.full((hits.shape[0], max_digits + 1 - n), PAD)
        tail[:, 0] = EOS
        rows.append(torch.cat([hits, tail], dim=1))
    return torch.cat(rows)
