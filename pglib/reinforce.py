"""REINFORCE: complete episodes, Monte-Carlo reward-to-go, an optional learned baseline.

The algorithm of Chapters 4–7 put together (Williams, 1992; Sutton & Barto, 2018, §13.3–13.4):

1. Step ``num_envs`` environments side by side until ``episodes_per_update`` episodes are
   complete (:class:`pglib.EpisodeCollector`); episodes still running carry over to the next
   update, they are never cut.
2. Weigh each log-probability by the Monte-Carlo reward-to-go G_t (Chapter 6), minus a learned
   value V_φ(s_t) when ``value_baseline`` is on (Chapter 7). V_φ is regressed on those same
   Monte-Carlo returns.
3. Take one gradient step on :func:`pglib.policy_gradient_loss`.

The only bootstrap is at an environment's time limit (``truncated``, Chapter 1): there the
episode did not end, so its future is estimated as γ V_φ(o_{t+1}) when a value network exists,
and counts as 0 otherwise. Nothing is bootstrapped anywhere else, which is what makes this
REINFORCE rather than actor-critic (Chapter 9).

Introduced in Chapter 8.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from pglib import _checks
from pglib.policies import MLPCategoricalPolicy
from pglib.returns import reward_to_go
from pglib.rollouts import MAX_ENV_STEPS, EpisodeBatch, EpisodeCollector, check_discrete
from pglib.training import (
    History,
    Learner,
    Recorder,
    TrainerConfig,
    normalized,
    policy_gradient_loss,
)

__all__ = ["REINFORCEConfig", "episode_returns"]


@dataclass(frozen=True)
class REINFORCEConfig(TrainerConfig):
    """Everything that defines one REINFORCE run (the shared fields are documented on
    :class:`pglib.TrainerConfig`).

    The defaults are plain REINFORCE with a learned baseline and Adam: a constant step size,
    no advantage normalisation and no gradient clipping. In the CartPole-v1 sweeps that chose
    them (5-10 seeds, 150k steps) none of those three helped, and four complete episodes per
    update (from 8 environments) needed fewer steps than eight; ``benchmarks/ablations.py``
    re-measures each knob. Introduced in Chapter 8.
    """

    algo = "reinforce"

    lr_schedule: str = "constant"
    normalize_advantages: bool = False
    episodes_per_update: int = 4  # complete episodes (at least) in each update's batch

    def __post_init__(self) -> None:
        super().__post_init__()
        _checks.positive_int("episodes_per_update", self.episodes_per_update, limit=MAX_ENV_STEPS)

    def _run(
        self,
        envs: gym.vector.VectorEnv,
        callback: Callable[[History], bool | None] | None,
        progress: bool,
    ) -> History:
        n_actions = check_discrete(envs, self.env_id)
        return _train(self, envs, n_actions, callback, progress)


def episode_returns(
    batch: EpisodeBatch, gamma: float, value: Callable[[np.ndarray], np.ndarray] | None = None
) -> np.ndarray:
    """The Monte-Carlo reward-to-go G_t of every step of complete episodes, [n] (float64).

    G_t = r_t + γ G_{t+1} within each episode, G = r at its last step if it terminated, and
    G = r + γ ``value(o_{t+1})`` at its last step if it was truncated by a time limit and a
    value function is given (otherwise the unseen future counts as 0). Computed by
    :func:`pglib.reward_to_go`. Introduced in Chapter 8.
    """
    _checks.instance("batch", batch, EpisodeBatch, "an EpisodeBatch")
    if value is not None and not callable(value):
        raise ValueError(f"value must be a callable V(obs) or None, got {type(value).__name__}")
    bootstrap = None if value is None else value(batch.next_observations)
    return reward_to_go(
        batch.rewards,
        gamma,
        terminated=batch.terminated,
        truncated=batch.truncated,
        bootstrap=bootstrap,
    )


def _train(
    config: REINFORCEConfig,
    envs: gym.vector.VectorEnv,
    n_actions: int,
    callback: Callable[[History], bool | None] | None,
    progress: bool,
) -> History:
    obs_dim = envs.single_observation_space.shape[0]
    learner = Learner.build(config, MLPCategoricalPolicy(obs_dim, n_actions, config.hidden_sizes))
    history = History(config=config, policy=learner.policy, value=learner.value_net)
    collector = EpisodeCollector(envs, config.seed)
    recorder = Recorder(history, progress)
    device = torch.device(config.device)
    while True:
        learner.schedule(config, recorder.env_steps)
        batch = collector.collect(learner.policy, config.episodes_per_update)
        value = learner.values if learner.value_net is not None else None
        returns = episode_returns(batch, config.gamma, value)
        obs = torch.from_numpy(batch.observations).to(device)
        act = torch.from_numpy(batch.actions).to(device)
        target = torch.as_tensor(returns, dtype=torch.float32, device=device)
        weights = target
        if value is not None:
            # The baseline is computed before V_φ is refitted, and carries no gradient.
            weights = target - torch.as_tensor(value(batch.observations), device=device).float()
            learner.fit_value(config, obs, target)
        loss = policy_gradient_loss(learner.policy, obs, act, normalized(config, weights))
        stats = learner.step_policy(config, obs, loss)
        if recorder.record(
            new_steps=batch.env_steps,
            finished_returns=batch.returns,
            carried_steps=batch.carried_steps,
            steps_used=batch.n_steps,
            stats=stats,
            callback=callback,
        ):
            return history
