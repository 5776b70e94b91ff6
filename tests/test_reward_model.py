"""Tests for pglib/reward_model.py: the scalar model on sequences, where a score is read, the
Bradley–Terry reward model (a seeded learning test), and PPO's per-token rewards and GAE."""

from __future__ import annotations

import math

import pytest
import torch

import pglib

TASK = pglib.DigitSumTask()
BASE = pglib.load_pretrained_lm()
#: Two sampled sequences: "<t=5> 4 EOS" (2 tokens, then PAD) and "<t=6> 1 2 3 EOS" (4 tokens).
TOKENS = torch.tensor([[12, 4, 10, 11, 11], [13, 1, 2, 3, 10]])
MASK = torch.tensor([[True, True, False, False], [True, True, True, True]])


def _pairs(n: int, noise: float, seed: int) -> pglib.PreferencePairs:
    generator = torch.Generator().manual_seed(seed)
    return pglib.sample_preference_pairs(BASE, n, label_noise=noise, generator=generator)


# --- the scalar model ---------------------------------------------------------------------------


def test_from_lm_copies_the_trunk_and_starts_every_output_at_zero() -> None:
    model = pglib.ScalarLM.from_lm(BASE)
    lm_state, state = BASE.state_dict(), model.state_dict()
    for name, value in lm_state.items():
        if name == "position_embedding.weight":
            torch.testing.assert_close(state[name][:-1], value, rtol=0, atol=0)
            torch.testing.assert_close(state[name][-1], value[-1], rtol=0, atol=0)
        elif not name.startswith("head."):
            torch.testing.assert_close(state[name], value, rtol=0, atol=0)
    assert state["head.weight"].shape == (1, BASE.d_model)
    assert model.context_length == BASE.context_length + 1  # it reads the ending token too
    assert torch.equal(model(TOKENS), torch.zeros(2, 5))
    # the trunk is a copy: training the scalar model leaves the language model alone
    assert all(p.data_ptr() != q.data_ptr() for p in model.parameters() for q in BASE.parameters())


def test_the_output_is_the_head_applied_to_the_language_models_features() -> None:
    model = pglib.ScalarLM.from_lm(BASE)
    with torch.no_grad():  # the EOS row of the vocabulary head as the scalar head
        model.head.weight.copy_(BASE.head.weight[pglib.EOS][None])
        model.head.bias.copy_(BASE.head.bias[pglib.EOS][None])
        # on the first L − 1 positions the trunks agree, so the output is the EOS logit
        logits = BASE(TOKENS[:, :-1])[..., pglib.EOS]
        torch.testing.assert_close(model(TOKENS)[:, :-1], logits)


def test_a_score_is_the_output_at_the_last_masked_token() -> None:
    torch.manual_seed(0)
    model = pglib.ScalarLM(TASK, d_model=8, n_layers=1, n_heads=2)
    torch.nn.init.normal_(model.head.weight)
    outputs = model(TOKENS)
    scores = pglib.reward_scores(model, TOKENS, MASK)
    # prompt at position 0, completion token j at 1 + j: the ends are positions 2 and 4
    torch.testing.assert_close(scores, torch.stack([outputs[0, 2], outputs[1, 4]]))
    # the padding after the end is never read; the ending token is
    padded = TOKENS.clone()
    padded[0, 3:] = 7
    torch.testing.assert_close(pglib.reward_scores(model, padded, MASK)[0], scores[0])
    ended = TOKENS.clone()
    ended[0, 2] = 13  # ended by a target token instead of EOS: malformed, another score
    assert pglib.reward_scores(model, ended, MASK)[0] != scores[0]


def test_accuracy_is_measured_against_the_true_order() -> None:
    pairs = _pairs(40, 0.5, seed=1)
    assert pairs.flipped.any() and (~pairs.flipped).any()
    assert pglib.preference_accuracy(pglib.ScalarLM.from_lm(BASE), pairs) == 0.5  # all ties
    torch.manual_seed(0)
    model = pglib.ScalarLM(TASK, d_model=8, n_layers=1, n_heads=2)
    torch.nn.init.normal_(model.head.weight)
    accuracy = pglib.preference_accuracy(model, pairs)
    swap = (pairs.rejected, pairs.chosen, pairs.rejected_mask, pairs.chosen_mask)
    # the same true order, told with the labels swapped and the swap recorded: same accuracy
    same = pglib.PreferencePairs(*swap, ~pairs.flipped)
    assert pglib.preference_accuracy(model, same) == accuracy
    # the labels swapped without recording it: the true order is reversed
    reversed_order = pglib.PreferencePairs(*swap, pairs.flipped)
    assert pglib.preference_accuracy(model, reversed_order) == pytest.approx(1 - accuracy)


# --- training -------------------------------------------------------------------------------


def test_bradley_terry_training_learns_the_true_order_on_held_out_pairs() -> None:
    # 2,000 pairs from the committed base, a fifth held out, 5 epochs. Measured on this
    # machine: held-out accuracy (chance: 0.5) 0.86, 0.84, 0.81 on pair seeds 0-2 without
    # label noise, 0.64, 0.72, 0.61 with 40% of the labels swapped; seed 0 with the generic
    # kernels 0.865 and 0.63. Thresholds 0.72 and a drop of 0.08 leave margins of 0.14 and
    # 0.14 on seed 0.
    config = pglib.RewardModelConfig(epochs=5)
    clean = pglib.train_reward_model(_pairs(2_000, 0.0, seed=0), config, progress=False)
    noisy = pglib.train_reward_model(_pairs(2_000, 0.4, seed=0), config, progress=False)
    assert clean.held_out_pairs == 400 and clean.train_pairs == 1_600
    assert len(clean.losses) == 5 * math.ceil(1_600 / 64)
    assert clean.held_out_accuracy >= 0.72, clean.held_out_accuracy
    assert clean.held_out_accuracy - noisy.held_out_accuracy >= 0.08
    assert clean.losses[-1] < clean.losses[0]


def test_training_is_seeded_and_leaves_the_base_and_the_global_rng_alone() -> None:
    pairs = _pairs(100, 0.0, seed=2)
    config = pglib.RewardModelConfig(epochs=1, batch_size=32)
    before = [p.detach().clone() for p in BASE.parameters()]
    state = torch.get_rng_state()
    a = pglib.train_reward_model(pairs, config, base=BASE, progress=False)
    b = pglib.train_reward_model(pairs, config, base=BASE, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    assert a.losses == b.losses and a.held_out_accuracy == b.held_out_accuracy
    assert all(torch.equal(p, q) for p, q in zip(BASE.parameters(), before, strict=True))


# --- PPO's per-token rewards and advantages -------------------------------------------------


def test_token_rewards_put_the_kl_penalty_on_every_token_and_the_score_on_the_last() -> None:
    logp = torch.tensor([[-1.0, -2.0, 0.0, 0.0], [-1.0, -1.0, -1.0, -1.0]])
    ref_logp = torch.tensor([[-2.0, -1.0, 0.0, 0.0], [-1.0, -3.0, -1.0, -0.5]])
    scores = torch.tensor([5.0, 7.0])
    rewards = pglib.token_rewards(logp, ref_logp, scores, MASK, beta=0.5)
    expected = torch.tensor([[-0.5, 0.5 + 5.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.25 + 7.0]])
    torch.testing.assert_close(rewards, expected)


def test_token_advantages_with_lambda_one_are_the_rewards_to_go_minus_the_values() -> None:
    rewards = torch.tensor([[1.0, 2.0, 0.0, 0.0], [0.5, 0.0, -1.0, 3.0]])
    values = torch.tensor([[0.5, 1.0, 9.0, 9.0], [1.0, 2.0, 3.0, 4.0]])  # 9: padding, unread
    advantages, returns = pglib.token_advantages(rewards, values, MASK, lam=1.0)
    to_go = torch.tensor([[3.0, 2.0, 0.0, 0.0], [2.5, 2.0, 2.0, 3.0]])
    torch.testing.assert_close(returns, to_go)
    torch.testing.assert_close(advantages, to_go - values * MASK)
    # λ = 0: the TD error r_t + V(s_{t+1}) − V(s_t), with V = 0 after the last token
    td, _ = pglib.token_advantages(rewards, values, MASK, lam=0.0)
    expected = torch.tensor([[1.0 + 1.0 - 0.5, 2.0 - 1.0, 0, 0], [1.5, 1.0, 0.0, -1.0]])
    torch.testing.assert_close(td, expected)
    _, lambda_returns = pglib.token_advantages(rewards, values, MASK, lam=0.5)
    assert lambda_returns[0, 1] == pytest.approx(2.0)  # the last token: r, whatever λ
