"""Scripted Gymnasium environments and policies whose rollouts can be worked out by hand.

Shared by the tests of pglib.rollouts, pglib.training, pglib.reinforce and
pglib.actor_critic.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

import pglib

SCRIPTED = "pglib-test/Scripted-v0"  # episodes of 3 steps that terminate
SCRIPTED_LIMIT = "pglib-test/ScriptedLimit-v0"  # episodes of 10 steps cut at 2 by a time limit
UNEVEN = "pglib-test/Uneven-v0"  # episode k (from 0) lasts 1 + k % 4 steps, then terminates
STAGGERED = "pglib-test/Staggered-v0"  # like UNEVEN, shifted by the reset seed: 1 + (k + s) % 4


class ScriptedEnv(gym.Env[np.ndarray, np.int64]):
    """Observation [episode number, step in episode]; reward 1 + action; ends after
    ``episode_length`` steps (terminated), or after 1 + episode % 4 steps when ``uneven``
    (1 + (episode + s) % 4 when also ``staggered``, s the first reset's seed)."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(
        self, episode_length: int = 3, uneven: bool = False, staggered: bool = False
    ) -> None:
        self.episode_length = episode_length
        self.uneven = uneven
        self.staggered = staggered
        self.shift = 0
        self.episode = -1
        self.t = 0

    def _obs(self) -> np.ndarray:
        return np.array([self.episode, self.t], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None and self.staggered:
            self.shift = seed
        self.episode += 1
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        length = 1 + (self.episode + self.shift) % 4 if self.uneven else self.episode_length
        return self._obs(), 1.0 + float(action), self.t >= length, False, {}


if SCRIPTED not in gym.registry:
    gym.register(SCRIPTED, entry_point=ScriptedEnv)
    gym.register(
        SCRIPTED_LIMIT,
        entry_point=ScriptedEnv,
        kwargs={"episode_length": 10},
        max_episode_steps=2,
    )
    gym.register(UNEVEN, entry_point=ScriptedEnv, kwargs={"uneven": True})
    gym.register(STAGGERED, entry_point=ScriptedEnv, kwargs={"uneven": True, "staggered": True})


def constant_policy(action: int) -> pglib.MLPCategoricalPolicy:
    """A policy on the scripted env that picks ``action`` with probability 1 - e^-100."""
    policy = pglib.MLPCategoricalPolicy(2, 2, hidden_sizes=(4,))
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        policy.logits_net[-1].bias[action] = 100.0
    return policy


def ten(obs: np.ndarray) -> np.ndarray:
    """A value function V(o) = 10, on observations [..., obs_dim]."""
    return np.full(np.shape(obs)[:-1], 10.0)
