"""Tests for pglib.episodes: one episode of the agent–environment loop."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pglib.episodes import Episode, run_episode


class ScriptedEnv(gym.Env):
    """A tiny environment whose ending is known in advance.

    The observation is [step count]. The reward for step t (0-based) is t + 1 plus the action,
    so rewards reveal both when a step happened and which action was taken. The episode
    terminates after step ``terminate_at`` or truncates after step ``truncate_at`` (1-based
    step counts; ``None`` means never).
    """

    def __init__(self, terminate_at: int | None, truncate_at: int | None) -> None:
        self.observation_space = gym.spaces.Box(0.0, np.inf, shape=(1,), dtype=np.float64)
        self.action_space = gym.spaces.Discrete(2)
        self.terminate_at = terminate_at
        self.truncate_at = truncate_at
        self.steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.steps = 0
        return np.array([0.0]), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        assert self.action_space.contains(action)
        self.steps += 1
        reward = float(self.steps + action)
        terminated = self.steps == self.terminate_at
        truncated = self.steps == self.truncate_at
        return np.array([float(self.steps)]), reward, terminated, truncated, {}


def always(action: int):
    return lambda obs: action


def test_termination_is_reported_as_termination() -> None:
    episode = run_episode(
        ScriptedEnv(terminate_at=3, truncate_at=None), always(0), seed=0, max_steps=100
    )
    assert episode.terminated and not episode.truncated
    assert episode.length == 3
    np.testing.assert_array_equal(episode.rewards, [1.0, 2.0, 3.0])
    assert episode.total_reward == 6.0
    np.testing.assert_array_equal(episode.observations[:, 0], [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(episode.actions, [0, 0, 0])


def test_truncation_is_reported_as_truncation() -> None:
    episode = run_episode(
        ScriptedEnv(terminate_at=None, truncate_at=4), always(1), seed=0, max_steps=100
    )
    assert episode.truncated and not episode.terminated
    np.testing.assert_array_equal(episode.rewards, [2.0, 3.0, 4.0, 5.0])
    assert episode.total_reward == 14.0


def test_both_flags_at_the_same_step_are_both_kept() -> None:
    episode = run_episode(
        ScriptedEnv(terminate_at=2, truncate_at=2), always(0), seed=0, max_steps=100
    )
    assert episode.terminated and episode.truncated
    assert episode.length == 2


def test_max_steps_cuts_the_episode_as_a_truncation() -> None:
    episode = run_episode(
        ScriptedEnv(terminate_at=10, truncate_at=None), always(0), seed=0, max_steps=4
    )
    assert episode.truncated and not episode.terminated
    np.testing.assert_array_equal(episode.rewards, [1.0, 2.0, 3.0, 4.0])


@settings(max_examples=40, deadline=None)
@given(
    terminate_at=st.one_of(st.none(), st.integers(1, 12)),
    truncate_at=st.one_of(st.none(), st.integers(1, 12)),
    max_steps=st.integers(1, 12),
)
def test_the_first_ending_wins(
    terminate_at: int | None, truncate_at: int | None, max_steps: int
) -> None:
    episode = run_episode(
        ScriptedEnv(terminate_at, truncate_at), always(0), seed=0, max_steps=max_steps
    )
    ends = [n for n in (terminate_at, truncate_at, max_steps) if n is not None]
    length = min(ends)
    assert episode.length == length
    assert episode.terminated == (terminate_at == length)
    assert episode.truncated == (truncate_at == length or max_steps == length)
    assert episode.total_reward == length * (length + 1) / 2  # 1 + 2 + ... + T
    assert episode.observations.shape == (length + 1, 1)


def test_torch_actions_from_a_distribution_are_accepted() -> None:
    torch.manual_seed(0)
    dist = torch.distributions.Categorical(logits=torch.tensor([0.0, 50.0]))  # always action 1
    episode = run_episode(
        ScriptedEnv(terminate_at=3, truncate_at=None),
        lambda obs: dist.sample(),
        seed=0,
        max_steps=10,
    )
    np.testing.assert_array_equal(episode.actions, [1, 1, 1])
    np.testing.assert_array_equal(episode.rewards, [2.0, 3.0, 4.0])


def random_cartpole_episode(seed: int) -> Episode:
    env = gym.make("CartPole-v1")
    return run_episode(env, lambda obs: env.action_space.sample(), seed=seed)


def test_cartpole_is_deterministic_given_a_seed() -> None:
    first, second = random_cartpole_episode(7), random_cartpole_episode(7)
    np.testing.assert_array_equal(first.observations, second.observations)
    np.testing.assert_array_equal(first.actions, second.actions)
    np.testing.assert_array_equal(first.rewards, second.rewards)
    other = random_cartpole_episode(8)
    assert not (
        first.length == other.length and np.array_equal(first.observations, other.observations)
    )


def test_a_random_cartpole_episode_ends_because_the_pole_falls_or_the_cart_leaves() -> None:
    episode = random_cartpole_episode(0)
    assert episode.terminated and not episode.truncated
    np.testing.assert_array_equal(episode.rewards, np.ones(episode.length))  # +1 per step
    x, _, theta, _ = episode.observations[-1]
    assert abs(x) > 2.4 or abs(theta) > 12 * 2 * np.pi / 360  # CartPole's thresholds
    x, _, theta, _ = episode.observations[:-1].T
    assert np.all(np.abs(x) <= 2.4) and np.all(np.abs(theta) <= 12 * 2 * np.pi / 360)


def test_cartpole_time_limit_is_a_truncation() -> None:
    env = gym.make("CartPole-v1", max_episode_steps=5)  # too short for the pole to fall
    episode = run_episode(env, lambda obs: env.action_space.sample(), seed=0)
    assert episode.truncated and not episode.terminated
    assert episode.length == 5


def test_continuous_actions_from_a_gaussian_are_accepted() -> None:
    env = gym.make("Pendulum-v1")  # never terminates; its time limit truncates it
    dist = torch.distributions.Normal(torch.zeros(1), torch.ones(1))
    torch.manual_seed(0)
    episode = run_episode(env, lambda obs: dist.sample().clamp(-2.0, 2.0), seed=0)
    assert episode.truncated and not episode.terminated
    assert episode.length == env.spec.max_episode_steps
    assert episode.actions.shape == (episode.length, 1)
    assert episode.observations.shape == (episode.length + 1, 3)
    assert np.all(episode.rewards <= 0)  # Pendulum's reward is a cost, never positive


def test_bad_env_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"env must be a single gymnasium\.Env"):
        run_episode("CartPole-v1", always(0), seed=0)  # type: ignore[arg-type]


def test_bad_policy_is_rejected() -> None:
    with pytest.raises(ValueError, match="policy must be a callable"):
        run_episode(ScriptedEnv(3, None), 0, seed=0, max_steps=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [-1, True, 1.5, None])
def test_bad_seed_is_rejected(seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        run_episode(ScriptedEnv(3, None), always(0), seed=seed, max_steps=5)  # type: ignore[arg-type]


@pytest.mark.parametrize("max_steps", [0, -3, 2.5, False])
def test_bad_max_steps_is_rejected(max_steps: object) -> None:
    with pytest.raises(ValueError, match="max_steps must be a positive integer"):
        run_episode(ScriptedEnv(3, None), always(0), seed=0, max_steps=max_steps)  # type: ignore[arg-type]


def test_an_env_without_a_time_limit_needs_max_steps() -> None:
    with pytest.raises(ValueError, match=r"no time limit.*max_steps must be given"):
        run_episode(ScriptedEnv(3, None), always(0), seed=0)


@pytest.mark.parametrize("action", [2, -1, 0.5, np.array([0, 1])])
def test_an_action_outside_the_action_space_is_rejected(action: object) -> None:
    with pytest.raises(
        ValueError, match=r"must return an action in the action space Discrete\(2\)"
    ):
        run_episode(ScriptedEnv(3, None), lambda obs: action, seed=0, max_steps=5)


def test_episode_checks_its_lengths() -> None:
    with pytest.raises(ValueError, match="T actions and T \\+ 1 observations"):
        Episode(np.zeros((3, 1)), np.zeros(3), np.ones(3), terminated=True, truncated=False)
    with pytest.raises(ValueError, match=r"rewards must not be empty"):
        Episode(np.zeros((1, 1)), np.zeros(0), np.ones(0), terminated=True, truncated=False)


def test_episode_must_say_how_it_ended() -> None:
    with pytest.raises(ValueError, match="must end terminated or truncated"):
        Episode(np.zeros((2, 1)), np.zeros(1), np.ones(1), terminated=False, truncated=False)
