"""A2C: the synchronous advantage actor-critic, with n-step returns or GAE(λ).

Each update (Mnih et al., 2016; Sutton & Barto, 2018, §13.5):

1. Steps ``num_envs`` environments side by side for T = ``batch_size // num_envs`` steps
   (:class:`pglib.RolloutCollector`); episodes still running at the end are *cut* there.
2. Weighs each log-probability by the advantage estimate GAE(λ) (:func:`pglib.gae`) built on
   the critic V_φ. With λ = 1 that is the return over the rest of the rollout, bootstrapped
   with γ V_φ at the cut, minus V_φ(s_t): an n-step return with n = T − t, as in A2C. With
   λ < 1 it mixes shorter returns, each bootstrapped sooner.
3. Refits the critic on this batch, then takes one gradient step on
   :func:`pglib.policy_gradient_loss` (the weights use V_φ from before the refit).

The critic's target is the λ-return, advantage + V_φ(s_t): a target built from V_φ itself
(a semi-gradient, bootstrapped target), not a Monte-Carlo return. That bootstrap, at every
cut and inside every GAE mix, is what makes this actor-critic rather than REINFORCE.

Three switches exist so that Chapter 9 can measure what each part does:
``bootstrap_cuts=False`` treats every cut and time limit as a termination (the future counts
as 0), ``mask_autoreset=False`` trains on Gymnasium's autoreset steps as if they were
transitions, and ``value_baseline=False`` drops the critic (the weights are then the cut
reward-to-go, with nothing to bootstrap with).

Introduced in Chapter 9.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from pglib import _checks
from pglib.returns import gae, reward_to_go
from pglib.rollouts import MAX_ENV_STEPS, Rollout, RolloutCollector, make_policy
from pglib.training import (
    History,
    Learner,
    Recorder,
    TrainerConfig,
    normalized,
    policy_gradient_loss,
)

__all__ = ["A2CConfig", "a2c_targets"]


@dataclass(frozen=True)
class A2CConfig(TrainerConfig):
    """Everything that defines one A2C run (the shared fields are documented on
    :class:`pglib.TrainerConfig`). Introduced in Chapter 9."""

    algo = "a2c"

    batch_size: int = 256  # vector steps × num_envs per update (autoreset steps included)
    gae_lambda: float = 1.0  # λ of GAE; 1: returns to the end of the rollout, 0: TD errors
    bootstrap_cuts: bool = True  # bootstrap with V_φ at rollout cuts and time limits
    mask_autoreset: bool = True  # leave Gymnasium's autoreset steps out of the update
    log_std_init: float = -0.5  # initial log σ of a Gaussian policy (Box action spaces only)

    def __post_init__(self) -> None:
        super().__post_init__()
        _checks.positive_int("batch_size", self.batch_size, limit=MAX_ENV_STEPS)
        if self.batch_size % self.num_envs:
            raise ValueError(
                f"batch_size must be a multiple of num_envs, got batch_size={self.batch_size} "
                f"and num_envs={self.num_envs}"
            )
        if self.batch_size < 2 * self.num_envs:
            # With one step per environment an update can hold only autoreset steps.
            raise ValueError(
                "batch_size must be at least 2 x num_envs (two steps per environment and "
                f"update), got batch_size={self.batch_size} and num_envs={self.num_envs}"
            )
        self._set_float("gae_lambda", _checks.unit_interval("gae_lambda", self.gae_lambda))
        for name in ("bootstrap_cuts", "mask_autoreset"):
            _checks.boolean(name, getattr(self, name))
        self._set_float("log_std_init", _checks.real("log_std_init", self.log_std_init))

    def _run(
        self,
        envs: gym.vector.VectorEnv,
        callback: Callable[[History], bool | None] | None,
        progress: bool,
    ) -> History:
        return _train(self, envs, callback, progress)


def a2c_targets(
    rollout: Rollout,
    config: A2CConfig,
    value: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The policy weights and the critic's targets of every step of a rollout, both [T, N].

    With a critic ``value`` (V_φ on observations [..., obs_dim]): the weights are GAE(λ)
    with λ = ``config.gae_lambda``, and the targets are weights + V_φ(o_t), the λ-return.
    The rollout's last step is cut, and bootstrapped like a time-limit truncation when
    ``config.bootstrap_cuts``; otherwise cuts and time limits count as terminations. Without
    a critic, the weights are the reward-to-go cut at the end of the rollout (the future
    counts as 0), and there are no targets to fit (returned as zeros). With
    ``config.mask_autoreset`` Gymnasium's autoreset steps are their own one-step episodes
    with reward 0 (they are left out of the update); otherwise they continue into the next
    episode as if they were transitions. Introduced in Chapter 9.
    """
    _checks.instance("rollout", rollout, Rollout, "a Rollout")
    _checks.instance("config", config, A2CConfig, "an A2CConfig")
    if value is not None and not callable(value):
        raise ValueError(f"value must be a callable V(obs) or None, got {type(value).__name__}")
    terminated = rollout.terminated.copy()
    if config.mask_autoreset:
        terminated |= ~rollout.valid  # an autoreset step: its own 0-reward episode
    truncated = rollout.truncated.copy()
    truncated[-1] |= ~(terminated[-1] | truncated[-1])  # the rollout cut mid-episode
    if value is None:
        weights = reward_to_go(rollout.rewards, config.gamma, terminated=terminated | truncated)
        return weights, np.zeros_like(weights)
    if not config.bootstrap_cuts:
        terminated, truncated = terminated | truncated, np.zeros_like(truncated)
    v = value(rollout.observations)
    v_next = value(rollout.next_observations)
    advantages = gae(
        rollout.rewards,
        v,
        v_next,
        config.gamma,
        config.gae_lambda,
        terminated=terminated,
        truncated=truncated,
    )
    return advantages, advantages + v


@dataclass(frozen=True)
class Batch:
    """One rollout ready for an update: the steps it keeps, as tensors on the config's device.

    ``weights`` are the policy weights of :func:`a2c_targets` (float32); ``targets`` are the
    critic's λ-return targets, or None without a critic. Autoreset steps are left out when
    ``config.mask_autoreset``. Introduced in Chapter 9; PPO (Chapter 10) uses it too.
    """

    obs: torch.Tensor
    actions: torch.Tensor
    weights: torch.Tensor
    targets: torch.Tensor | None


def prepare_batch(rollout: Rollout, config: A2CConfig, learner: Learner) -> Batch:
    """The :class:`Batch` of a rollout, with the weights and targets from the current critic."""
    value = learner.values if learner.value_net is not None else None
    weights, targets = a2c_targets(rollout, config, value)
    keep = rollout.valid if config.mask_autoreset else np.ones_like(rollout.valid)
    device = torch.device(config.device)
    mask = torch.from_numpy(keep).to(device)

    def kept(x: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
        return torch.as_tensor(x, dtype=dtype, device=device)[mask]

    return Batch(
        obs=kept(rollout.observations),
        actions=kept(rollout.actions),
        weights=kept(weights, torch.float32),
        targets=kept(targets, torch.float32) if value is not None else None,
    )


def _train(
    config: A2CConfig,
    envs: gym.vector.VectorEnv,
    callback: Callable[[History], bool | None] | None,
    progress: bool,
) -> History:
    policy = make_policy(envs, config.env_id, config.hidden_sizes, config.log_std_init)
    learner = Learner.build(config, policy)
    history = History(config=config, policy=learner.policy, value=learner.value_net)
    collector = RolloutCollector(envs, config.seed)
    recorder = Recorder(history, progress)
    steps_per_env = config.batch_size // config.num_envs
    while True:
        learner.schedule(config, recorder.env_steps)
        rollout = collector.collect(learner.policy, steps_per_env)
        batch = prepare_batch(rollout, config, learner)
        if batch.targets is not None:
            learner.fit_value(config, batch.obs, batch.targets)
        weights = normalized(config, batch.weights)
        loss = policy_gradient_loss(learner.policy, batch.obs, batch.actions, weights)
        stats = learner.step_policy(config, batch.obs, loss)
        if recorder.record(
            new_steps=rollout.n_steps,
            finished_returns=rollout.finished_returns,
            carried_steps=0,
            steps_used=len(batch.weights),
            stats=stats,
            callback=callback,
        ):
            return history
