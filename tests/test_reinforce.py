"""Tests for pglib.reinforce: Monte-Carlo returns of complete episodes, the update, learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import pglib
from pglib import REINFORCEConfig
from pglib.rollouts import EpisodeCollector
from tests.scripted import SCRIPTED, SCRIPTED_LIMIT, constant_policy, ten


def episodes(env_id: str, n_envs: int, min_episodes: int) -> pglib.EpisodeBatch:
    collector = EpisodeCollector(pglib.make_vector_env(env_id, n_envs), seed=0)
    return collector.collect(constant_policy(0), min_episodes)


def test_monte_carlo_returns_restart_at_every_episode() -> None:
    batch = episodes(SCRIPTED, n_envs=1, min_episodes=2)
    # Two 3-step episodes with reward 1: G = 1 + 0.5 + 0.25, 1 + 0.5, 1 in each.
    assert pglib.episode_returns(batch, 0.5).tolist() == [1.75, 1.5, 1, 1.75, 1.5, 1]
    # A terminated episode is never bootstrapped, whatever the value function says.
    assert pglib.episode_returns(batch, 0.5, ten).tolist() == [1.75, 1.5, 1, 1.75, 1.5, 1]


def test_a_time_limit_is_the_only_bootstrap() -> None:
    batch = episodes(SCRIPTED_LIMIT, n_envs=1, min_episodes=2)
    # Episodes cut at 2 steps by the time limit: G_1 = 1 + 0.5 V, G_0 = 1 + 0.5 G_1.
    assert pglib.episode_returns(batch, 0.5, ten).tolist() == [4, 6, 4, 6]
    # Without a value function the unseen future counts as 0.
    assert pglib.episode_returns(batch, 0.5).tolist() == [1.5, 1, 1.5, 1]


def test_the_first_update_is_the_monte_carlo_estimator_of_chapter_6() -> None:
    """The trainer's first loss and gradient norm, against the estimator written out by hand:
    ĝ = (1/|D|) Σ_τ Σ_t ∇ log π(a_t|s_t) G_t (Chapter 6), which the trainer scales by
    |D| / n because it averages over the n steps rather than over the |D| episodes."""
    gamma, seed = 0.5, 4
    config = REINFORCEConfig(
        env_id=SCRIPTED,
        num_envs=2,
        episodes_per_update=2,
        seed=seed,
        gamma=gamma,
        value_baseline=False,
        normalize_advantages=False,
        max_grad_norm=None,
        max_steps=6,
        target_return=None,
    )
    history = pglib.train(config, progress=False)
    # The same first batch, from the same seed: the policy is built first, then sampled.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = pglib.MLPCategoricalPolicy(2, 2, config.hidden_sizes)
        collector = EpisodeCollector(pglib.make_vector_env(SCRIPTED, 2), seed=seed)
        batch = collector.collect(policy, 2)
    assert batch.lengths == [3, 3] and history.env_steps == [6]
    estimate = [torch.zeros_like(p) for p in policy.parameters()]
    surrogate = 0.0
    for episode in range(2):
        rewards = batch.rewards[3 * episode : 3 * episode + 3]
        for t in range(3):
            g = sum(gamma**k * r for k, r in enumerate(rewards[t:]))  # reward-to-go, by hand
            step = 3 * episode + t
            obs = torch.as_tensor(batch.observations[step])
            log_prob = policy.distribution(obs).log_prob(torch.tensor(batch.actions[step]))
            grads = torch.autograd.grad(log_prob, list(policy.parameters()))
            for total, grad in zip(estimate, grads, strict=True):
                total += grad * g / 2  # averaged over |D| = 2 episodes
            surrogate -= float(log_prob.detach()) * g / 6
    norm = math.sqrt(sum(float((e * 2 / 6).square().sum()) for e in estimate))
    assert math.isclose(history.loss[0], surrogate, rel_tol=1e-5)
    assert math.isclose(history.grad_norm[0], norm, rel_tol=1e-5)


def test_the_baseline_is_fitted_on_monte_carlo_returns() -> None:
    config = REINFORCEConfig(
        env_id=SCRIPTED,
        num_envs=1,
        episodes_per_update=1,
        gamma=1.0,
        value_lr=0.05,
        value_epochs=50,
        max_steps=600,
        target_return=None,
    )
    history = pglib.train(config, progress=False)
    # Every episode has rewards in {1, 2} over 3 steps; at step t of an episode the Monte-Carlo
    # return lies in [3 - t, 2 (3 - t)], and V(s) should have settled inside that range.
    obs = torch.tensor([[200.0, t] for t in range(3)])
    values = history.value(obs).squeeze(-1).detach()
    for t, v in enumerate(values.tolist()):
        assert 3 - t - 0.5 <= v <= 2 * (3 - t) + 0.5


@pytest.mark.parametrize("value_baseline", [True, False])
def test_reinforce_learns_cartpole(value_baseline: bool) -> None:
    """Seeded learning test: at least 2 of 3 seeds reach a last-20-episode mean of 195 within
    60k env steps."""
    reached = 0
    for seed in range(3):
        config = REINFORCEConfig(
            seed=seed,
            value_baseline=value_baseline,
            max_steps=60_000,
            target_return=195.0,
            stop_at_target=True,
        )
        history = pglib.train(config, progress=False)
        reached += history.steps_to_target is not None
    assert reached >= 2


def test_bad_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="episodes_per_update must be a positive integer"):
        REINFORCEConfig(episodes_per_update=0)
    with pytest.raises(ValueError, match="batch must be an EpisodeBatch"):
        pglib.episode_returns(np.ones(3), 0.9)


def test_the_baseline_is_computed_before_the_value_network_is_refitted() -> None:
    """The first update's weights are G_t − V_init(s_t): a V_φ refitted on the same batch
    would depend on the batch's own actions and stop being a baseline."""
    seed = 3
    config = REINFORCEConfig(
        env_id=SCRIPTED,
        num_envs=2,
        episodes_per_update=2,
        seed=seed,
        gamma=1.0,
        max_steps=6,
        target_return=None,
    )
    history = pglib.train(config, progress=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = pglib.MLPCategoricalPolicy(2, 2, config.hidden_sizes)
        value_net = pglib.mlp([2, *config.hidden_sizes, 1])  # built right after the policy
        batch = EpisodeCollector(pglib.make_vector_env(SCRIPTED, 2), seed=seed).collect(policy, 2)
    obs = torch.as_tensor(batch.observations)
    with torch.no_grad():
        weights = torch.as_tensor(pglib.episode_returns(batch, 1.0)).float()
        weights -= value_net(obs).squeeze(-1)
    loss = pglib.policy_gradient_loss(policy, obs, torch.as_tensor(batch.actions), weights)
    assert math.isclose(history.loss[0], float(loss.detach()), rel_tol=1e-5)
