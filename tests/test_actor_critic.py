"""Tests for pglib.actor_critic: the n-step and GAE targets by hand, the switches, learning."""

from __future__ import annotations

import pytest

import pglib
from pglib import A2CConfig
from pglib.rollouts import RolloutCollector
from tests.scripted import SCRIPTED, SCRIPTED_LIMIT, constant_policy, ten


def rollout(env_id: str, n_steps: int) -> pglib.Rollout:
    collector = RolloutCollector(pglib.make_vector_env(env_id, 1), seed=0)
    return collector.collect(constant_policy(0), n_steps)


def targets(env_id: str, n_steps: int, value=ten, **change) -> tuple[list, list]:
    config = A2CConfig(gamma=0.5, **change)
    weights, target = pglib.a2c_targets(rollout(env_id, n_steps), config, value)
    return weights[:, 0].tolist(), target[:, 0].tolist()


def test_lambda_one_is_the_return_to_the_cut_minus_v() -> None:
    # Two steps of a 3-step episode, cut by the end of the rollout, V = 10, reward 1:
    # G_1 = 1 + 0.5 * 10 = 6 and G_0 = 1 + 0.5 * 6 = 4: an n-step return with n = T - t.
    assert targets(SCRIPTED, 2) == ([-6, -4], [4, 6])


def test_a_time_limit_is_bootstrapped_and_an_autoreset_step_is_its_own_episode() -> None:
    # Steps 0-1 end with a time-limit truncation; step 2 is Gymnasium's autoreset step.
    assert targets(SCRIPTED_LIMIT, 3) == ([-6, -4, -10], [4, 6, 0])


def test_lambda_zero_gives_the_td_errors() -> None:
    # δ_t = r_t + γ V(s_{t+1}) − V(s_t) = 1 + 5 − 10 = −4; the critic's target is r + γ V = 6.
    assert targets(SCRIPTED_LIMIT, 3, gae_lambda=0.0) == ([-4, -4, -10], [6, 6, 0])


def test_lambda_mixes_the_n_step_returns() -> None:
    # A_0 = δ_0 + γλ δ_1 = −4 + 0.5 * 0.5 * (−4) = −5 with λ = 0.5.
    assert targets(SCRIPTED_LIMIT, 2, gae_lambda=0.5)[0] == [-5, -4]


def test_a_terminated_episode_is_not_bootstrapped() -> None:
    assert targets(SCRIPTED, 3)[1] == [1.75, 1.5, 1]


def test_without_bootstrapping_cuts_count_as_terminations() -> None:
    assert targets(SCRIPTED_LIMIT, 3, bootstrap_cuts=False)[1] == [1.5, 1, 0]
    assert targets(SCRIPTED, 2, bootstrap_cuts=False)[1] == [1.5, 1]


def test_without_a_critic_the_weights_are_the_cut_reward_to_go() -> None:
    assert targets(SCRIPTED, 2, value=None) == ([1.5, 1], [0, 0])


def test_unmasked_autoreset_steps_run_into_the_next_episode() -> None:
    # Steps 0-2: episode 0 (terminated); step 3: the autoreset step (reward 0); step 4: the
    # first step of episode 1, cut there: G_4 = 1 + 0.5 * 10 = 6.
    assert targets(SCRIPTED, 5)[1] == [1.75, 1.5, 1, 0, 6]
    # Unmasked, the autoreset step is treated as a transition into episode 1: G_3 = 0.5 * 6.
    assert targets(SCRIPTED, 5, mask_autoreset=False)[1] == [1.75, 1.5, 1, 3, 6]


def test_unmasked_autoreset_steps_are_trained_on() -> None:
    config = A2CConfig(env_id=SCRIPTED, num_envs=1, batch_size=8, max_steps=12, target_return=None)
    masked = pglib.train(config, progress=False)
    unmasked = pglib.train(A2CConfig(**{**vars(config), "mask_autoreset": False}), progress=False)
    assert masked.steps_used == [6, 6] and unmasked.steps_used == [8, 8]
    assert masked.env_steps == unmasked.env_steps == [6, 12]  # autoreset steps never count


@pytest.mark.parametrize("gae_lambda", [1.0, 0.95])
def test_a2c_learns_cartpole(gae_lambda: float) -> None:
    """Seeded learning test: at least 2 of 3 seeds reach a last-20-episode mean of 195 within
    60k env steps."""
    reached = 0
    for seed in range(3):
        config = A2CConfig(
            seed=seed,
            gae_lambda=gae_lambda,
            max_steps=60_000,
            target_return=195.0,
            stop_at_target=True,
        )
        reached += pglib.train(config, progress=False).steps_to_target is not None
    assert reached >= 2


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="gae_lambda must be a real number in"):
        A2CConfig(gae_lambda=-0.1)
    with pytest.raises(ValueError, match="batch_size must be a multiple of num_envs"):
        A2CConfig(batch_size=100)
    with pytest.raises(ValueError, match="config must be an A2CConfig"):
        pglib.a2c_targets(rollout(SCRIPTED, 2), pglib.REINFORCEConfig())
