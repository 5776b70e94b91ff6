"""Tests for pglib.ppo: the clipped surrogate and the value loss against hand values, and the
trainer: minibatch bookkeeping, Gaussian actions, the step from A2C, learning."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import pglib
from pglib.rollouts import RolloutCollector

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


# --- The trainer's pieces ---------------------------------------------------------------------


@pytest.mark.parametrize(("n", "size"), [(256, 64), (250, 64), (7, 7), (5, 1)])
def test_every_sample_is_used_exactly_once_per_epoch(n: int, size: int) -> None:
    generator = torch.Generator().manual_seed(0)
    epochs = [pglib.minibatches(n, size, generator) for _ in range(3)]
    for batches in epochs:
        assert all(len(index) == size for index in batches[:-1])
        assert 0 < len(batches[-1]) <= size
        assert sorted(torch.cat(batches).tolist()) == list(range(n))
    # Each epoch shuffles anew.
    if n > 5:
        assert torch.cat(epochs[0]).tolist() != torch.cat(epochs[1]).tolist()


def test_orthogonal_init_gains() -> None:
    torch.manual_seed(0)
    network = pglib.mlp([4, 32, 32, 2])
    pglib.orthogonal_init(network, output_gain=0.01)
    hidden, _, middle, _, output = network
    # A (rows ≥ columns) orthogonal matrix with gain g has W^T W = g² I; a wide one, W W^T.
    torch.testing.assert_close(hidden.weight.T @ hidden.weight, 2 * torch.eye(4))
    torch.testing.assert_close(middle.weight @ middle.weight.T, 2 * torch.eye(32))
    torch.testing.assert_close(output.weight @ output.weight.T, 1e-4 * torch.eye(2))
    assert all(not layer.bias.detach().any() for layer in (hidden, middle, output))


def test_the_gaussian_sampler_draws_from_the_distribution() -> None:
    torch.manual_seed(0)
    policy = pglib.DiagonalGaussianPolicy(3, 2, hidden_sizes=(8,), log_std_init=-1.0)
    obs = torch.randn(3).expand(40_000, 3)
    with torch.no_grad():
        actions = policy.sample(obs)
        mu = policy(obs[0])
    assert actions.shape == (40_000, 2)
    # Standard errors: σ/√n = e^-1/200 ≈ 0.0018 for the mean; the std's is about σ/√(2n).
    torch.testing.assert_close(actions.mean(0), mu, rtol=0, atol=0.01)
    torch.testing.assert_close(actions.std(0), torch.full((2,), math.exp(-1.0)), rtol=0.02, atol=0)


class _RecordActions(gym.ActionWrapper):
    """Pendulum, remembering the actions it receives."""

    def __init__(self) -> None:
        super().__init__(gym.make("Pendulum-v1"))
        self.received: list[np.ndarray] = []

    def action(self, action: np.ndarray) -> np.ndarray:
        self.received.append(np.array(action))
        return action


def test_continuous_actions_are_clipped_for_the_env_and_kept_for_the_update() -> None:
    env = _RecordActions()
    envs = gym.vector.SyncVectorEnv([lambda: env])
    torch.manual_seed(0)
    policy = pglib.DiagonalGaussianPolicy(3, 1, hidden_sizes=(4,), log_std_init=2.0)  # σ ≈ 7.4
    rollout = RolloutCollector(envs, seed=0).collect(policy, 50)
    sampled = rollout.actions[:, 0, 0]
    received = np.array(env.received)[:, 0]
    assert rollout.actions.dtype == np.float32 and rollout.actions.shape == (50, 1, 1)
    assert np.abs(sampled).max() > 2.0  # the rollout keeps what the policy sampled
    np.testing.assert_array_equal(received, np.clip(sampled, -2.0, 2.0))


def test_evaluate_acts_with_the_gaussian_mean() -> None:
    policy = pglib.DiagonalGaussianPolicy(3, 1, hidden_sizes=(4,))
    first = pglib.evaluate(policy, "Pendulum-v1", 2, seed=0)
    again = pglib.evaluate(policy, "Pendulum-v1", 2, seed=0)
    np.testing.assert_array_equal(first, again)  # greedy: no sampling, the same episodes
    assert first.shape == (2,) and (first < 0).all()


def test_one_epoch_of_one_minibatch_is_a2c() -> None:
    """At θ = θ_old the clipped surrogate's gradient is the policy gradient, so one step per
    batch on the whole batch is A2C's update."""
    shared = dict(
        seed=3, lr=0.01, gamma=0.99, gae_lambda=0.95, lr_schedule="constant", max_steps=512
    )
    a2c = pglib.train(pglib.A2CConfig(**shared), progress=False)
    ppo = pglib.train(
        pglib.PPOConfig(
            **shared, epochs=1, minibatch_size=256, orthogonal_init=False, max_grad_norm=None
        ),
        progress=False,
    )
    assert ppo.env_steps == a2c.env_steps and ppo.policy_steps == [1] * len(a2c.env_steps)
    for ours, theirs in zip(ppo.policy.parameters(), a2c.policy.parameters(), strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)
    assert ppo.approx_kl[0] > 0  # the step moved the policy away from the batch's


def test_the_kl_early_stop_cuts_the_epochs() -> None:
    base = dict(seed=0, max_steps=2048, epochs=4, minibatch_size=64)
    free = pglib.train(pglib.PPOConfig(**base), progress=False)
    stopped = pglib.train(pglib.PPOConfig(**base, target_kl=1e-4), progress=False)
    # Every epoch splits the batch's steps into ⌈steps_used / 64⌉ minibatches.
    assert free.policy_steps == [4 * math.ceil(n / 64) for n in free.steps_used]
    assert all(
        taken <= 4 * math.ceil(n / 64)
        for taken, n in zip(stopped.policy_steps, stopped.steps_used, strict=True)
    )
    assert min(stopped.policy_steps) < 4 * 3
    assert all(0 <= kl for kl in stopped.approx_kl)


def test_ppo_history_reports_its_diagnostics() -> None:
    history = pglib.train(pglib.PPOConfig(seed=0, max_steps=1024), progress=False)
    report = history.to_dict()
    for key in ("approx_kl", "clip_fraction", "explained_variance", "policy_steps"):
        assert len(report[key]) == len(report["env_steps"]) >= 4
    assert all(0.0 <= f <= 1.0 for f in history.clip_fraction)
    assert all(v <= 1.0 for v in history.explained_variance)


def test_ppo_learns_cartpole() -> None:
    """Seeded learning test: at least 2 of 3 seeds reach a last-20-episode mean of 475 within
    60k env steps."""
    configs = [
        pglib.PPOConfig(seed=seed, max_steps=60_000, stop_at_target=True) for seed in range(3)
    ]
    histories = pglib.train_many(configs, progress=False)
    assert sum(h.steps_to_target is not None for h in histories) >= 2


def test_ppo_learns_pendulum() -> None:
    """Seeded learning test: at least 2 of 3 seeds reach a last-20-episode mean of −300 within
    80k env steps with a Gaussian policy (a random policy scores about −1200; the benchmark's
    target is −200 within 150k)."""
    settings = {**pglib.PPO_PENDULUM, "max_steps": 80_000, "target_return": -300.0}
    configs = [pglib.PPOConfig(**settings, seed=seed, stop_at_target=True) for seed in range(3)]
    histories = pglib.train_many(configs, progress=False)
    assert isinstance(histories[0].policy, pglib.DiagonalGaussianPolicy)
    assert sum(h.steps_to_target is not None for h in histories) >= 2
