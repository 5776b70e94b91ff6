"""Tests for pglib.reinforce: autoreset bookkeeping, returns at episode ends, train, evaluate."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
import torch

import pglib
from pglib.reinforce import REINFORCEConfig, RolloutCollector, rollout_returns

SCRIPTED = "pglib-test/Scripted-v0"  # episodes of 3 steps that terminate
SCRIPTED_LIMIT = "pglib-test/ScriptedLimit-v0"  # episodes of 10 steps cut at 2 by a time limit


class ScriptedEnv(gym.Env[np.ndarray, np.int64]):
    """Observation [episode number, step in episode]; reward 1 + action; ends after
    ``episode_length`` steps (terminated)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, episode_length: int = 3) -> None:
        self.episode_length = episode_length
        self.episode = -1
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 1.0 + float(action), self.t >= self.episode_length, False, {}


if SCRIPTED not in gym.registry:
    gym.register(SCRIPTED, entry_point=ScriptedEnv)
    gym.register(
        SCRIPTED_LIMIT,
        entry_point=ScriptedEnv,
        kwargs={"episode_length": 10},
        max_episode_steps=2,
    )


def constant_policy(action: int) -> pglib.MLPCategoricalPolicy:
    """A policy on the scripted env that picks ``action`` with probability 1 - e^-100."""
    policy = pglib.MLPCategoricalPolicy(2, 2, hidden_sizes=(4,))
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        policy.logits_net[-1].bias[action] = 100.0
    return policy


def collect(env_id: str, n_envs: int, n_steps: int) -> pglib.Rollout:
    envs = pglib.make_vector_env(env_id, n_envs)
    return RolloutCollector(envs, seed=0).collect(constant_policy(0), n_steps)


def test_autoreset_steps_are_masked_and_not_counted() -> None:
    rollout = collect(SCRIPTED, n_envs=2, n_steps=8)
    # Steps 0-2 are episode 0 (terminated after step 2); step 3 is Gymnasium's autoreset step,
    # which returns episode 1's first observation; steps 4-6 are episode 1; step 7 resets again.
    expected_valid = [True, True, True, False, True, True, True, False]
    assert rollout.valid[:, 0].tolist() == expected_valid
    assert rollout.valid[:, 1].tolist() == expected_valid
    assert rollout.n_steps == 12
    assert rollout.terminated[:, 0].tolist() == [0, 0, 1, 0, 0, 0, 1, 0]
    assert rollout.rewards[:, 0].tolist() == [1, 1, 1, 0, 1, 1, 1, 0]
    assert rollout.finished_returns == [3.0, 3.0, 3.0, 3.0]
    # The action at step 3 was chosen on episode 0's last observation; step 4 acts on episode 1.
    assert rollout.observations[3, 0].tolist() == [0, 3]
    assert rollout.observations[4, 0].tolist() == [1, 0]


def test_no_step_of_a_new_episode_is_credited_to_the_old_one() -> None:
    returns = rollout_returns(collect(SCRIPTED, n_envs=1, n_steps=8), gamma=1.0)
    # Undiscounted reward-to-go within each 3-step episode; the autoreset steps get 0.
    assert returns[:, 0].tolist() == [3, 2, 1, 0, 3, 2, 1, 0]


def test_episodes_continue_across_rollouts() -> None:
    collector = RolloutCollector(pglib.make_vector_env(SCRIPTED, 1), seed=0)
    first = collector.collect(constant_policy(0), 2)
    second = collector.collect(constant_policy(0), 2)
    assert first.valid[:, 0].tolist() == [True, True]
    assert first.finished_returns == []
    assert second.valid[:, 0].tolist() == [True, False]  # step 2 ends episode 0, then autoreset
    assert second.terminated[:, 0].tolist() == [True, False]
    assert second.finished_returns == [3.0]  # the whole episode, across both rollouts


def ten(obs: torch.Tensor) -> torch.Tensor:
    """A value function V(o) = 10."""
    return torch.full(obs.shape[:-1], 10.0)


def test_time_limit_truncation_is_bootstrapped_with_the_value() -> None:
    rollout = collect(SCRIPTED_LIMIT, n_envs=1, n_steps=3)
    assert rollout.truncated[:, 0].tolist() == [False, True, False]
    assert not rollout.terminated.any()
    assert rollout.next_observations[1, 0].tolist() == [0, 2]  # the real last observation
    # G_1 = 1 + 0.5 * V = 6 and G_0 = 1 + 0.5 * 6 = 4; step 2 is an autoreset step.
    assert rollout_returns(rollout, 0.5, ten)[:, 0].tolist() == [4, 6, 0]
    # Without a value function the future after the cut counts as 0.
    assert rollout_returns(rollout, 0.5)[:, 0].tolist() == [1.5, 1, 0]


def test_the_end_of_a_rollout_is_a_truncation() -> None:
    rollout = collect(SCRIPTED, n_envs=1, n_steps=2)
    assert rollout.valid.all() and not rollout.terminated.any() and not rollout.truncated.any()
    assert rollout_returns(rollout, 0.5, ten)[:, 0].tolist() == [4, 6]
    assert rollout_returns(rollout, 0.5)[:, 0].tolist() == [1.5, 1]


def test_a_terminated_episode_is_not_bootstrapped() -> None:
    rollout = collect(SCRIPTED, n_envs=1, n_steps=3)
    assert rollout_returns(rollout, 0.5, ten)[:, 0].tolist() == [1.75, 1.5, 1]


def test_train_counts_env_steps_without_autoreset_steps() -> None:
    config = REINFORCEConfig(
        env_id=SCRIPTED, num_envs=2, batch_size=8, max_steps=24, target_return=None
    )
    history = pglib.train(config, progress=False)
    # Each update makes 4 vector steps per env: 3 real ones and one autoreset step.
    assert history.env_steps == [6, 12, 18, 24]
    assert history.recent_return[0] > 0
    assert set(history.to_dict()) == {
        "env_steps",
        "wall_seconds",
        "mean_return",
        "recent_return",
        "loss",
        "grad_norm",
        "entropy",
    }


def test_callback_can_stop_training() -> None:
    config = REINFORCEConfig(env_id=SCRIPTED, num_envs=2, batch_size=8, max_steps=600)
    history = pglib.train(config, lambda h: len(h.env_steps) == 2, progress=False)
    assert len(history.env_steps) == 2


def test_train_restores_the_global_torch_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    pglib.train(
        REINFORCEConfig(env_id=SCRIPTED, num_envs=2, batch_size=8, max_steps=8), progress=False
    )
    assert torch.equal(torch.rand(3), expected)


def test_train_is_reproducible_from_the_seed() -> None:
    config = REINFORCEConfig(max_steps=3000)
    first = pglib.train(config, progress=False)
    second = pglib.train(config, progress=False)
    assert first.loss == second.loss
    assert first.recent_return == second.recent_return


def test_reinforce_learns_cartpole_within_60k_steps() -> None:
    """Seeded learning test: the last-20-episode mean reaches 195 within 60k env steps."""
    config = REINFORCEConfig(seed=0, max_steps=60_000, target_return=195.0, stop_at_target=True)
    history = pglib.train(config, progress=False)
    assert history.steps_to_target is not None
    assert history.steps_to_target <= 60_000
    assert history.recent_return[-1] >= 195.0


def test_evaluate_greedy_takes_the_most_probable_action() -> None:
    # Reward 1 + action over 3-step episodes: always action 1 gives 6, always 0 gives 3.
    returns = pglib.evaluate(constant_policy(1), SCRIPTED, n_episodes=4, seed=0)
    assert returns.tolist() == [6, 6, 6, 6]
    assert pglib.evaluate(constant_policy(0), SCRIPTED, 2, seed=0).tolist() == [3, 3]


def test_evaluate_sampled_actions_are_random() -> None:
    policy = pglib.MLPCategoricalPolicy(2, 2, hidden_sizes=(4,))
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()  # π(a|o) = 1/2 for both actions
    torch.manual_seed(0)
    returns = pglib.evaluate(policy, SCRIPTED, n_episodes=200, seed=0, greedy=False)
    # Each return is 3 + Binomial(3, 1/2): mean 4.5, std of the mean 0.87 / sqrt(200) = 0.06.
    assert abs(returns.mean() - 4.5) < 0.25
    assert set(returns.tolist()) <= {3.0, 4.0, 5.0, 6.0}


def test_evaluate_cartpole_returns_are_episode_lengths() -> None:
    policy = pglib.MLPCategoricalPolicy(4, 2, hidden_sizes=(8,))
    returns = pglib.evaluate(policy, "CartPole-v1", n_episodes=5, seed=3)
    assert returns.shape == (5,)
    assert ((returns >= 1) & (returns <= 500)).all()
    assert np.array_equal(returns, pglib.evaluate(policy, "CartPole-v1", 5, seed=3))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env_id": "NoSuchEnv-v0"}, "env_id must be a registered Gymnasium environment id"),
        ({"num_envs": 0}, "num_envs must be a positive integer, got 0"),
        ({"batch_size": 100}, "batch_size must be a multiple of num_envs, got batch_size=100"),
        ({"max_steps": -5}, "max_steps must be a positive integer, got -5"),
        ({"value_epochs": 0}, "value_epochs must be a positive integer, got 0"),
        ({"seed": -1}, "seed must be a non-negative integer, got -1"),
        ({"lr": -0.01}, "lr must be a positive real number, got -0.01"),
        ({"value_lr": 0.0}, "value_lr must be a positive real number, got 0.0"),
        ({"lr_schedule": "cosine"}, r"lr_schedule must be one of \('constant', 'linear'\)"),
        ({"gamma": 1.5}, r"gamma must be a real number in \[0, 1\], got 1.5"),
        ({"hidden_sizes": ()}, "hidden_sizes must be a non-empty tuple of positive integers"),
        ({"entropy_coef": -1.0}, "entropy_coef must be a non-negative real number, got -1.0"),
        ({"max_grad_norm": 0.0}, "max_grad_norm must be a positive real number, got 0.0"),
        ({"target_return": float("nan")}, "target_return must be a finite real number, got nan"),
        ({"device": "toaster"}, "device must name a torch device, got 'toaster'"),
        ({"batch_size": 8}, r"batch_size must be at least 2 x num_envs .* got batch_size=8"),
        ({"value_baseline": "no"}, "value_baseline must be True or False, got 'no'"),
        ({"lr": True}, "lr must be a positive real number, got True"),
    ],
)
def test_bad_config_is_rejected(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(REINFORCEConfig(), **change)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="config must be a REINFORCEConfig, got dict"):
        pglib.train({"env_id": "CartPole-v1"})
    with pytest.raises(ValueError, match="needs a Discrete action space; Pendulum-v1 has Box"):
        pglib.train(REINFORCEConfig(env_id="Pendulum-v1"), progress=False)
    policy = constant_policy(0)
    with pytest.raises(ValueError, match="n_episodes must be a positive integer, got 0"):
        pglib.evaluate(policy, SCRIPTED, 0, seed=0)
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -2"):
        pglib.evaluate(policy, SCRIPTED, 1, seed=-2)
    with pytest.raises(ValueError, match="env_id must be a registered Gymnasium environment id"):
        pglib.evaluate(policy, "NoSuchEnv-v0", 1, seed=0)
    with pytest.raises(ValueError, match="num_envs must be a positive integer, got 0"):
        pglib.make_vector_env(SCRIPTED, 0)
    with pytest.raises(ValueError, match="n_steps must be a positive integer, got 0"):
        RolloutCollector(pglib.make_vector_env(SCRIPTED, 1), seed=0).collect(policy, 0)
    same_step = gym.make_vec(
        SCRIPTED,
        1,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
    )
    with pytest.raises(ValueError, match="must use Gymnasium's default NEXT_STEP autoreset"):
        RolloutCollector(same_step, seed=0)


@pytest.mark.parametrize("processes", [1, 2])
def test_train_many_equals_the_loop_in_order(processes: int) -> None:
    configs = [REINFORCEConfig(seed=seed, max_steps=1_500) for seed in (3, 1, 2)]
    together = pglib.train_many(configs, processes=processes, progress=False)
    one_by_one = [pglib.train(config, progress=False) for config in configs]
    assert [h.config.seed for h in together] == [3, 1, 2]
    for a, b in zip(together, one_by_one, strict=True):
        assert a.env_steps == b.env_steps
        assert a.recent_return == b.recent_return  # seeded: the same run, in any process
        assert a.loss == b.loss


@pytest.mark.parametrize(
    ("configs", "processes", "message"),
    [
        ([], None, "configs must be a non-empty list of REINFORCEConfig"),
        ("CartPole-v1", None, "configs must be a non-empty list of REINFORCEConfig"),
        ([REINFORCEConfig(), "x"], None, r"configs\[1\] must be a REINFORCEConfig"),
        ([REINFORCEConfig()], 0, "processes must be"),
        ([REINFORCEConfig()], True, "processes must be"),
    ],
)
def test_train_many_rejects_bad_arguments(configs: object, processes: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pglib.train_many(configs, processes=processes, progress=False)
