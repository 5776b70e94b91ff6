"""Tests for pglib.rollouts: autoreset masking, complete-episode collection, evaluate."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import pglib
from pglib.rollouts import EpisodeCollector, RolloutCollector
from tests.scripted import SCRIPTED, SCRIPTED_LIMIT, STAGGERED, UNEVEN, constant_policy


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


def test_episodes_continue_across_rollouts() -> None:
    collector = RolloutCollector(pglib.make_vector_env(SCRIPTED, 1), seed=0)
    first = collector.collect(constant_policy(0), 2)
    second = collector.collect(constant_policy(0), 2)
    assert first.valid[:, 0].tolist() == [True, True]
    assert first.finished_returns == []
    assert second.valid[:, 0].tolist() == [True, False]  # step 2 ends episode 0, then autoreset
    assert second.terminated[:, 0].tolist() == [True, False]
    assert second.finished_returns == [3.0]  # the whole episode, across both rollouts


def test_a_time_limit_is_a_truncation_with_the_real_last_observation() -> None:
    rollout = collect(SCRIPTED_LIMIT, n_envs=1, n_steps=3)
    assert rollout.truncated[:, 0].tolist() == [False, True, False]
    assert not rollout.terminated.any()
    assert rollout.next_observations[1, 0].tolist() == [0, 2]


def test_complete_episodes_are_never_cut() -> None:
    # Episode k of each environment lasts 1 + k % 4 steps; two environments side by side.
    collector = EpisodeCollector(pglib.make_vector_env(UNEVEN, 2), seed=0)
    policy = constant_policy(1)  # reward 2 per step
    batches = [collector.collect(policy, 3) for _ in range(4)]
    for batch in batches:
        assert len(batch.returns) >= 3
        ends = np.flatnonzero(batch.terminated | batch.truncated)
        assert ends[-1] == batch.n_steps - 1  # the batch ends with the end of an episode
        # Each episode starts at step 0 and counts up by one: nothing cut, nothing mixed in.
        for start, length in zip(np.r_[0, ends[:-1] + 1], batch.lengths, strict=True):
            steps = batch.observations[start : start + length, 1]
            assert steps.tolist() == list(range(length))
            episode_ids = batch.observations[start : start + length, 0]
            assert len(set(episode_ids.tolist())) == 1
            assert batch.rewards[start : start + length].sum() == 2 * length
        assert batch.returns == [2.0 * n for n in batch.lengths]
        assert batch.terminated[ends].all() and not batch.truncated.any()


def test_every_step_lands_in_exactly_one_batch() -> None:
    collector = EpisodeCollector(pglib.make_vector_env(UNEVEN, 2), seed=0)
    batches = [collector.collect(constant_policy(0), 2) for _ in range(5)]
    taken = sum(b.env_steps for b in batches)
    used = sum(b.n_steps for b in batches)
    running = sum(len(episode[2]) for episode in collector.running)
    assert taken == used + running  # the steps of unfinished episodes wait in the collector
    # A batch's carried steps were taken by earlier calls: what the previous call left running.
    assert batches[0].carried_steps == 0
    left_running = [b.n_steps - b.env_steps for b in batches]  # running after − before
    assert sum(b.carried_steps for b in batches) <= taken
    assert all(b.carried_steps <= b.n_steps for b in batches)
    assert sum(left_running) + running == 0  # net: everything left running is used later
    # Each environment uses its episodes k = 0, 1, 2, ... in order, with lengths 1 + k % 4, so
    # every episode number appears once per environment at most.
    episodes = []
    for batch in batches:
        ends = np.flatnonzero(batch.terminated)
        for start, length in zip(np.r_[0, ends[:-1] + 1], batch.lengths, strict=True):
            episodes.append(int(batch.observations[start, 0]))
            assert length == 1 + episodes[-1] % 4
    assert all(episodes.count(k) <= 2 for k in episodes)
    assert episodes.count(0) == 2


def test_a_carried_over_episode_is_returned_whole() -> None:
    collector = EpisodeCollector(pglib.make_vector_env(SCRIPTED, 2), seed=0)
    first = collector.collect(constant_policy(0), 1)
    assert first.lengths == [3, 3] and first.env_steps == 6  # both end on the same step
    second = collector.collect(constant_policy(0), 2)
    assert second.lengths == [3, 3] and second.env_steps == 6
    assert first.carried_steps == second.carried_steps == 0  # nothing was left running


def test_carried_steps_count_what_an_earlier_call_sampled() -> None:
    # Environment i's episode k lasts 1 + (k + i) % 4 steps: env 0 ends its first episode
    # after 1 step, env 1 after 2.
    collector = EpisodeCollector(pglib.make_vector_env(STAGGERED, 2), seed=0)
    first = collector.collect(constant_policy(0), 1)
    assert first.lengths == [1] and first.carried_steps == 0  # env 1 is 1 step into its own
    second = collector.collect(constant_policy(0), 1)
    # Env 1's 2-step episode ends now; its first step was taken by the first call.
    assert second.lengths == [2] and second.carried_steps == 1
    assert second.env_steps == 1  # env 0 spent the step on its autoreset


def test_time_limits_are_flagged_truncated_in_episode_batches() -> None:
    batch = EpisodeCollector(pglib.make_vector_env(SCRIPTED_LIMIT, 1), seed=0).collect(
        constant_policy(0), 2
    )
    assert batch.lengths == [2, 2]
    assert batch.truncated.tolist() == [False, True, False, True]
    assert not batch.terminated.any()
    assert batch.next_observations[1].tolist() == [0, 2]  # the real last observation


def test_collectors_refuse_same_step_autoreset() -> None:
    for collector in (RolloutCollector, EpisodeCollector):
        same_step = gym.make_vec(
            SCRIPTED,
            1,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP},
        )
        with pytest.raises(ValueError, match="must use Gymnasium's default NEXT_STEP autoreset"):
            collector(same_step, seed=0)


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


def test_bad_arguments_are_rejected() -> None:
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
