"""Tests for pglib.training: the shared config, train, train_many, policy_gradient_loss."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

import pglib
from pglib import A2CConfig, REINFORCEConfig
from tests.scripted import SCRIPTED, constant_policy

HISTORY_KEYS = {
    "env_steps",
    "wall_seconds",
    "mean_return",
    "recent_return",
    "episodes",
    "steps_used",
    "carried_steps",
    "loss",
    "grad_norm",
    "entropy",
}


def test_a2c_counts_env_steps_without_autoreset_steps() -> None:
    config = A2CConfig(env_id=SCRIPTED, num_envs=2, batch_size=8, max_steps=24, target_return=None)
    history = pglib.train(config, progress=False)
    # Each update makes 4 vector steps per env: 3 real ones and one autoreset step.
    assert history.env_steps == [6, 12, 18, 24]
    assert history.steps_used == [6, 6, 6, 6]
    assert history.episodes == [2, 2, 2, 2]
    assert history.carried_steps == [0, 0, 0, 0]
    assert history.recent_return[0] > 0
    assert set(history.to_dict()) == HISTORY_KEYS


def test_reinforce_records_the_episodes_each_update_used() -> None:
    config = REINFORCEConfig(
        env_id=SCRIPTED, num_envs=2, episodes_per_update=4, max_steps=24, target_return=None
    )
    history = pglib.train(config, progress=False)
    # 3-step episodes, two side by side: 4 complete episodes take 6 vector steps.
    assert history.env_steps == [12, 24]
    assert history.steps_used == [12, 12]
    assert history.episodes == [4, 4]
    assert history.carried_steps == [0, 0]  # every episode starts and ends within an update
    assert set(history.to_dict()) == HISTORY_KEYS
    assert history.config.to_dict()["algo"] == "reinforce"
    assert A2CConfig().to_dict()["algo"] == "a2c"


@pytest.mark.parametrize("config_type", [REINFORCEConfig, A2CConfig])
def test_callback_can_stop_training(config_type: type) -> None:
    config = config_type(env_id=SCRIPTED, num_envs=2, max_steps=600)
    history = pglib.train(config, lambda h: len(h.env_steps) == 2, progress=False)
    assert len(history.env_steps) == 2


def test_train_restores_the_global_torch_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    pglib.train(REINFORCEConfig(env_id=SCRIPTED, num_envs=2, max_steps=8), progress=False)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("config_type", [REINFORCEConfig, A2CConfig])
def test_train_is_reproducible_from_the_seed(config_type: type) -> None:
    config = config_type(max_steps=3000)
    first = pglib.train(config, progress=False)
    second = pglib.train(config, progress=False)
    assert first.loss == second.loss
    assert first.recent_return == second.recent_return


@pytest.mark.parametrize("processes", [1, 2])
def test_train_many_equals_the_loop_in_order(processes: int) -> None:
    configs = [
        REINFORCEConfig(seed=3, max_steps=1_500),
        A2CConfig(seed=1, max_steps=1_500),
        REINFORCEConfig(seed=2, max_steps=1_500),
    ]
    together = pglib.train_many(configs, processes=processes, progress=False)
    one_by_one = [pglib.train(config, progress=False) for config in configs]
    assert [h.config for h in together] == configs
    for a, b in zip(together, one_by_one, strict=True):
        assert a.env_steps == b.env_steps
        assert a.recent_return == b.recent_return  # seeded: the same run, in any process
        assert a.loss == b.loss


def test_policy_gradient_loss_by_hand() -> None:
    # A uniform tabular policy over 2 actions: log π = −log 2 everywhere, so the loss is
    # log 2 · mean(w), and its gradient for θ[s, a] is
    # −(1/n) Σ_{t: s_t = s} w_t (1[a_t = a] − 1/2).
    policy = pglib.TabularSoftmaxPolicy(torch.zeros(3, 2, dtype=torch.float64))
    states = torch.tensor([0, 0, 2])
    actions = torch.tensor([1, 0, 1])
    weights = torch.tensor([2.0, 4.0, -1.0], dtype=torch.float64)
    loss = pglib.policy_gradient_loss(policy, states, actions, weights)
    assert math.isclose(float(loss.detach()), math.log(2) * 5 / 3, rel_tol=1e-12)
    loss.backward()
    expected = [[2 * -0.5 + 4 * 0.5, 2 * 0.5 + 4 * -0.5], [0, 0], [0.5, -0.5]]
    expected = -torch.tensor(expected, dtype=torch.float64) / 3
    torch.testing.assert_close(policy.logits.grad, expected, rtol=0, atol=1e-12)


def test_policy_gradient_loss_refuses_weights_with_a_gradient() -> None:
    policy = constant_policy(0)
    obs, actions = torch.zeros(2, 2), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="weights must carry no gradient"):
        pglib.policy_gradient_loss(policy, obs, actions, torch.ones(2, requires_grad=True))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"env_id": "NoSuchEnv-v0"}, "env_id must be a registered Gymnasium environment id"),
        ({"num_envs": 0}, "num_envs must be a positive integer, got 0"),
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
        ({"value_baseline": "no"}, "value_baseline must be True or False, got 'no'"),
        ({"lr": True}, "lr must be a positive real number, got True"),
    ],
)
@pytest.mark.parametrize("config_type", [REINFORCEConfig, A2CConfig])
def test_bad_shared_fields_are_rejected(config_type: type, change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replace(config_type(), **change)


def test_bad_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"config must be a trainer config .*, got dict"):
        pglib.train({"env_id": "CartPole-v1"})
    with pytest.raises(ValueError, match="needs a Discrete action space; Pendulum-v1 has Box"):
        pglib.train(REINFORCEConfig(env_id="Pendulum-v1"), progress=False)
    with pytest.raises(ValueError, match="TrainerConfig holds the shared fields only"):
        pglib.TrainerConfig()


@pytest.mark.parametrize(
    ("configs", "processes", "message"),
    [
        ([], None, "configs must be a non-empty list of trainer configs"),
        ("CartPole-v1", None, "configs must be a non-empty list of trainer configs"),
        ([REINFORCEConfig(), "x"], None, r"configs\[1\] must be a trainer config"),
        ([REINFORCEConfig()], 0, "processes must be"),
        ([REINFORCEConfig()], True, "processes must be"),
    ],
)
def test_train_many_rejects_bad_arguments(configs: object, processes: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pglib.train_many(configs, processes=processes, progress=False)


def test_history_to_dict_turns_nan_into_none() -> None:
    history = pglib.History(config=A2CConfig(), policy=constant_policy(0), value=None)
    history.mean_return.append(np.nan)
    assert history.to_dict()["mean_return"] == [None]
