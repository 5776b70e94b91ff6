"""Tests for pglib.ppo: the clipped surrogate and the value loss against hand values."""

from __future__ import annotations

import math

import pytest
import torch

import pglib

EPS = 0.2


def surrogate(ratios: list[float], advantages: list[float]):
    """The loss, its gradient with respect to logp, and the stats, for given ratios."""
    old = torch.log(torch.tensor([0.5] * len(ratios), dtype=torch.float64))
    logp = (old + torch.log(torch.tensor(ratios, dtype=torch.float64))).requires_grad_(True)
    loss, stats = pglib.clipped_surrogate(
        logp, old, torch.tensor(advantages, dtype=torch.float64), EPS
    )
    loss.backward()
    return float(loss.detach()), logp.grad.tolist(), stats


def test_at_ratio_one_the_surrogate_is_minus_the_mean_advantage() -> None:
    loss, grad, stats = surrogate([1.0, 1.0], [2.0, -1.0])
    assert math.isclose(loss, -0.5, rel_tol=1e-12)
    # d(−mean(ρ A))/d logp = −ρ A / n with ρ = 1.
    assert grad == pytest.approx([-1.0, 0.5], rel=1e-12)
    assert stats == pglib.SurrogateStats(approx_kl=0.0, clip_fraction=0.0, mean_ratio=1.0)


@pytest.mark.parametrize(
    ("ratio", "advantage", "term", "gradient_flows"),
    [
        (1.5, 1.0, 1.2, False),  # A > 0, ρ above 1 + ε: clipped at (1 + ε) A, no gradient
        (1.5, -1.0, -1.5, True),  # A < 0, ρ above: the unclipped ρ A is smaller, kept
        (0.5, 1.0, 0.5, True),  # A > 0, ρ below 1 − ε: the unclipped ρ A is smaller, kept
        (0.5, -1.0, -0.8, False),  # A < 0, ρ below: clipped at (1 − ε) A, no gradient
        (1.1, 1.0, 1.1, True),  # inside the range: nothing is clipped
    ],
)
def test_clipping_zeroes_exactly_the_terms_it_should(
    ratio: float, advantage: float, term: float, gradient_flows: bool
) -> None:
    loss, grad, stats = surrogate([ratio], [advantage])
    assert math.isclose(loss, -term, rel_tol=1e-12)
    expected = -ratio * advantage if gradient_flows else 0.0
    assert grad[0] == pytest.approx(expected, rel=1e-12, abs=0)
    assert stats.clip_fraction == (1.0 if abs(ratio - 1) > EPS else 0.0)
    assert math.isclose(stats.mean_ratio, ratio, rel_tol=1e-12)
    assert math.isclose(stats.approx_kl, (ratio - 1) - math.log(ratio), rel_tol=1e-9)


def test_the_gradient_at_ratio_one_is_the_policy_gradient() -> None:
    torch.manual_seed(0)
    policy = pglib.MLPCategoricalPolicy(4, 3, hidden_sizes=(8,))
    obs, actions = torch.randn(16, 4), torch.randint(0, 3, (16,))
    advantages = torch.randn(16)
    logp = policy.distribution(obs).log_prob(actions)
    loss, _ = pglib.clipped_surrogate(logp, logp.detach(), advantages, 0.2)
    ppo_grad = torch.autograd.grad(loss, list(policy.parameters()))
    pg_loss = pglib.policy_gradient_loss(policy, obs, actions, advantages)
    pg_grad = torch.autograd.grad(pg_loss, list(policy.parameters()))
    for a, b in zip(ppo_grad, pg_grad, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_value_loss_by_hand() -> None:
    values = torch.tensor([1.0, 3.0, 0.0], dtype=torch.float64, requires_grad=True)
    old = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)
    returns = torch.tensor([2.0, 3.0, -1.0], dtype=torch.float64)
    assert float(pglib.value_loss(values, old, returns).detach()) == pytest.approx(2 / 3)
    # ε = 0.5: V moves at most 0.5 from V_old, giving 0.5, 0.5, 0; the clipped errors are
    # 2.25, 6.25, 1; the larger of each pair is kept: 2.25, 6.25, 1.
    clipped = pglib.value_loss(values, old, returns, clip_eps=0.5)
    assert float(clipped.detach()) == pytest.approx((2.25 + 6.25 + 1) / 3)


def test_bad_arguments_are_rejected() -> None:
    logp = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="old_logp must carry no gradient"):
        pglib.clipped_surrogate(logp, torch.zeros(3, requires_grad=True), torch.ones(3), 0.2)
    with pytest.raises(ValueError, match=r"advantages must have the shape of logp, \(3,\)"):
        pglib.clipped_surrogate(logp, torch.zeros(3), torch.ones(4), 0.2)
    with pytest.raises(ValueError, match=r"clip_eps must be a real number in \(0, 10\]"):
        pglib.clipped_surrogate(logp, torch.zeros(3), torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="logp must be a floating-point torch tensor"):
        integer_logp = torch.zeros(3, dtype=torch.long)
        pglib.clipped_surrogate(integer_logp, torch.zeros(3), torch.ones(3), 0.2)
