"""One episode of the agent–environment loop, run with Gymnasium's API and kept whole.

An :class:`Episode` stores what one run of the loop produced: the observations the agent saw,
the actions it took, the rewards it got, and *how the episode ended*. Gymnasium reports two
different endings and this module never merges them:

* ``terminated``: the MDP itself ended (CartPole's pole fell). Nothing follows, so the value
  of the last next state is 0.
* ``truncated``: the loop was cut for an outside reason (a time limit). The state after the
  last step still had a future; it just was not observed.

Introduced in Chapter 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from pglib import _checks

__all__ = ["Episode", "run_episode"]


@dataclass(frozen=True, eq=False)
class Episode:
    """The record of one episode of length T.

    - ``observations``: [T + 1, *obs_shape], o_0 … o_T (the last one is the observation
      after the final step; a policy never acts on it).
    - ``actions``: [T, *action_shape], a_0 … a_{T-1}.
    - ``rewards``: [T] float64, r_0 … r_{T-1}, where r_t follows a_t.
    - ``terminated``: the environment ended the episode after its last step.
    - ``truncated``: the episode was cut after its last step (a time limit), so o_T still had
      a future. Both flags can be true at once, as in Gymnasium; then it counts as terminated.

    Introduced in Chapter 1.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: bool
    truncated: bool

    def __post_init__(self) -> None:
        _checks.real_array("rewards", self.rewards, shape=("T",), nonempty=True, sequences=True)
        _checks.boolean("terminated", self.terminated)
        _checks.boolean("truncated", self.truncated)
        n_steps = len(self.rewards)
        if len(self.actions) != n_steps or len(self.observations) != n_steps + 1:
            raise ValueError(
                "an episode of T steps needs T actions and T + 1 observations, got "
                f"T={n_steps}, {len(self.actions)} actions and "
                f"{len(self.observations)} observations"
            )
        if not (self.terminated or self.truncated):
            raise ValueError(
                "an episode must end terminated or truncated (a loop cut early is a "
                "truncation), got terminated=False and truncated=False"
            )

    @property
    def length(self) -> int:
        """T, the number of steps (actions taken). Introduced in Chapter 1."""
        return len(self.rewards)

    @property
    def total_reward(self) -> float:
        """The undiscounted sum of rewards, Σ_t r_t. Introduced in Chapter 1."""
        return float(np.sum(self.rewards))


def _as_env_action(action: Any, space: gym.Space) -> Any:
    """A policy's action as the environment expects it, or a ValueError saying why not."""
    if isinstance(action, torch.Tensor):
        action = action.detach().cpu().numpy()
    is_integer = np.issubdtype(np.asarray(action).dtype, np.integer)
    if isinstance(space, gym.spaces.Discrete) and np.ndim(action) == 0 and is_integer:
        action = int(action)  # Discrete spaces want a plain integer, not a 0-d array
    if not space.contains(action):
        raise ValueError(
            f"the policy must return an action in the action space {space}, got {action!r}"
        )
    return action


def run_episode(
    env: gym.Env,
    policy: Callable[[Any], Any],
    *,
    seed: int,
    max_steps: int | None = None,
) -> Episode:
    """Run ``policy`` in ``env`` from ``env.reset(seed=seed)`` until the episode ends.

    Each step is ``a_t = policy(o_t)``, then
    ``o_{t+1}, r_t, terminated, truncated, info = env.step(a_t)``. The loop stops when the
    environment says ``terminated`` or ``truncated``, or after ``max_steps`` steps, which
    counts as a truncation (like Gymnasium's ``TimeLimit``). ``seed`` also seeds
    ``env.action_space``, so a policy that samples from it is reproducible too.

    ``policy`` maps one observation to one action. It may return a Python number, a NumPy
    array or a torch tensor (for example ``dist.sample()`` of a ``torch.distributions``
    object); the action must lie in ``env.action_space``. An environment without a time limit
    (no ``env.spec.max_episode_steps``) needs ``max_steps``, so the loop cannot run forever.
    Introduced in Chapter 1.
    """
    if not isinstance(env, gym.Env):
        raise ValueError(
            "env must be a single gymnasium.Env (for example gym.make('CartPole-v1')), "
            f"got {type(env).__name__}"
        )
    if not callable(policy):
        raise ValueError(
            "policy must be a callable mapping an observation to an action, "
            f"got {type(policy).__name__}"
        )
    seed = _checks.integer("seed", seed, low=0)
    if max_steps is not None:
        max_steps = _checks.positive_int("max_steps", max_steps)
    time_limit = env.spec.max_episode_steps if env.spec is not None else None
    if max_steps is None and time_limit is None:
        raise ValueError(
            "this environment has no time limit (env.spec.max_episode_steps is None), so "
            "max_steps must be given to make sure the episode ends; got max_steps=None"
        )

    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations, actions, rewards = [obs], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        action = _as_env_action(policy(obs), env.action_space)
        obs, reward, terminated, truncated, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        # A NaN reward would poison every return computed from this episode.
        rewards.append(_checks.real(f"the reward of step {len(rewards)}", reward))
        if max_steps is not None and len(rewards) >= max_steps:
            truncated = True
    return Episode(
        observations=np.stack([np.asarray(o) for o in observations]),
        actions=np.stack([np.asarray(a) for a in actions]),
        rewards=np.asarray(rewards, dtype=np.float64),
        terminated=bool(terminated),
        truncated=bool(truncated),
    )
