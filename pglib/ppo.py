"""PPO: the clipped surrogate, the (optionally clipped) value loss, and the trainer.

PPO (Schulman et al., 2017) reuses each batch for several epochs of minibatch steps. Once θ
has moved away from the θ_old that sampled the batch, the policy-gradient loss of Chapter 8
no longer estimates the gradient; the importance ratio ρ = π_θ(a|s) / π_θ_old(a|s) corrects
for that, and clipping ρ to [1 − ε, 1 + ε] removes the incentive to move further than that in
one batch. :func:`clipped_surrogate` and :func:`value_loss` are tensor-level, so that the
language-model chapters can call the same code on tokens.

The trainer, :class:`PPOConfig`, is Chapter 9's A2C with one part changed: the policy step.
It collects the same rollouts (:class:`pglib.RolloutCollector`), builds the same GAE(λ)
weights and λ-return targets (:func:`pglib.a2c_targets`), and fits the critic the same way
(``value_epochs`` full-batch steps, optionally with a clipped value loss). Instead of one
gradient step on the batch, it takes ``epochs`` passes over it in shuffled minibatches, each
step on the clipped surrogate with the advantages normalised per minibatch, and stops the
passes early when the batch's approximate KL passes 1.5 × ``target_kl`` (as Spinning Up and
Stable-Baselines3 do). The critic is fitted apart from the policy, with its own optimiser,
as in Spinning Up's PPO, rather than through one loss with a value coefficient.

Introduced in Chapter 10.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from pglib import _checks
from pglib.actor_critic import A2CConfig, prepare_batch
from pglib.rollouts import MAX_ENV_STEPS, RolloutCollector, make_policy
from pglib.training import History, Learner, Recorder, normalized

__all__ = [
    "SurrogateStats",
    "clipped_surrogate_terms",
    "clipped_surrogate",
    "value_loss",
    "minibatches",
    "orthogonal_init",
    "PPOConfig",
    "PPOHistory",
    "PPO_PENDULUM",
    "MAX_CLIP",
]

#: Clip ranges above this are almost certainly a mistake (ε = 0.2 is usual).
MAX_CLIP = 10.0


@dataclass(frozen=True)
class SurrogateStats:
    """Diagnostics of one clipped-surrogate evaluation, as Python floats.

    - ``approx_kl``: the k3 estimate of KL(π_old ‖ π_θ) on the sampled actions,
      mean((ρ − 1) − log ρ), which is ≥ 0 for every sample.
    - ``clip_fraction``: the fraction of samples with |ρ − 1| > ε.
    - ``mean_ratio``: the mean of ρ (1 in expectation under π_old).

    Introduced in Chapter 10.
    """

    approx_kl: float
    clip_fraction: float
    mean_ratio: float

    def __post_init__(self) -> None:
        _checks.real("approx_kl", self.approx_kl)
        _checks.unit_interval("clip_fraction", self.clip_fraction)
        _checks.real("mean_ratio", self.mean_ratio, low=0.0)


def clipped_surrogate_terms(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, clip_eps: float
) -> Tensor:
    """PPO's clipped surrogate, one term per sample: −min(ρ A, clip(ρ, 1 − ε, 1 + ε) A).

    ``logp`` = log π_θ(a|s) (with a gradient), ``old_logp`` = log π_θ_old(a|s) and
    ``advantages`` A (both without one) share any shape, and so does the result.
    ρ = exp(logp − old_logp). A term whose ρ has left [1 − ε, 1 + ε] in the direction its
    advantage favours contributes no gradient. :func:`clipped_surrogate` averages these terms;
    :func:`pglib.grpo_loss` aggregates them over the tokens of a batch of sequences.
    Introduced in Chapter 10.
    """
    logp = _checks.float_tensor("logp", logp)
    old_logp = _checks.detached_like("old_logp", old_logp, "logp", logp)
    advantages = _checks.detached_like("advantages", advantages, "logp", logp)
    clip_eps = _checks.real("clip_eps", clip_eps, low=0.0, high=MAX_CLIP, low_open=True)
    ratio = (logp - old_logp).exp()
    return -torch.minimum(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)


def clipped_surrogate(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, clip_eps: float
) -> tuple[Tensor, SurrogateStats]:
    """PPO's clipped surrogate loss, −mean(min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)), and its stats.

    ``logp`` = log π_θ(a|s) (with a gradient), ``old_logp`` = log π_θ_old(a|s) and
    ``advantages`` A (both without one) share any shape, e.g. [n] or [B, T] flattened by the
    caller after masking. ρ = exp(logp − old_logp). At θ = θ_old every ρ is 1 and the
    gradient equals that of :func:`pglib.policy_gradient_loss`; a sample whose ρ has left
    [1 − ε, 1 + ε] in the direction its advantage favours contributes no gradient.
    Introduced in Chapter 10.
    """
    loss = clipped_surrogate_terms(logp, old_logp, advantages, clip_eps).mean()
    with torch.no_grad():  # in float64, where a ratio overflows only past e^709
        old_logp = torch.as_tensor(old_logp, dtype=logp.dtype, device=logp.device)
        log_ratio64 = (logp - old_logp).double()
        ratio64 = log_ratio64.exp()
        stats = SurrogateStats(
            approx_kl=float(((ratio64 - 1) - log_ratio64).mean()),
            clip_fraction=float(((ratio64 - 1).abs() > float(clip_eps)).double().mean()),
            mean_ratio=float(ratio64.mean()),
        )
    return loss, stats


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, clip_eps: float | None = None
) -> Tensor:
    """The critic's squared error, mean((V − R)²), or PPO's clipped version.

    With ``clip_eps`` = ε, the prediction may move at most ε from ``old_values`` (the
    critic's outputs when the batch was collected) before the error stops rewarding the
    move: mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)). ``values`` carries the
    gradient; ``old_values`` and ``returns`` do not; all share one shape. Introduced in
    Chapter 10.
    """
    values = _checks.float_tensor("values", values)
    old_values = _checks.detached_like("old_values", old_values, "values", values)
    returns = _checks.detached_like("returns", returns, "values", values)
    error = (values - returns) ** 2
    if clip_eps is None:
        return error.mean()
    clip_eps = _checks.real("clip_eps", clip_eps, low=0.0, low_open=True)
    moved = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
    return torch.maximum(error, (moved - returns) ** 2).mean()


def minibatches(n: int, size: int, generator: torch.Generator | None = None) -> list[Tensor]:
    """One epoch's minibatches: a random permutation of 0..n−1 split into index tensors of
    ``size`` (the last one holds the remainder), so every sample is used exactly once.
    Draws from ``generator``, or from the global torch RNG. Introduced in Chapter 10.
    """
    n = _checks.positive_int("n", n, limit=MAX_ENV_STEPS)
    size = _checks.positive_int("size", size, limit=MAX_ENV_STEPS)
    if generator is not None:
        _checks.instance("generator", generator, torch.Generator, "a torch.Generator or None")
    return list(torch.randperm(n, generator=generator).split(size))


def orthogonal_init(network: nn.Sequential, output_gain: float) -> None:
    """Orthogonal weights and zero biases for every linear layer of ``network``, in place:
    gain √2 for the hidden layers and ``output_gain`` for the last one (0.01 for a policy's
    output, so that it starts near uniform or near its mean 0; 1 for a critic). The
    initialisation of the PPO implementations of Engstrom et al. (2020) and
    Huang et al. (2022). Introduced in Chapter 10.
    """
    _checks.instance("network", network, nn.Sequential, "a torch.nn.Sequential (pglib.mlp)")
    output_gain = _checks.real("output_gain", output_gain, low=0.0)
    layers = [layer for layer in network if isinstance(layer, nn.Linear)]
    if not layers:
        raise ValueError("network must contain at least one torch.nn.Linear layer")
    with torch.no_grad():
        for layer in layers:
            gain = output_gain if layer is layers[-1] else math.sqrt(2.0)
            nn.init.orthogonal_(layer.weight, gain=gain)
            nn.init.zeros_(layer.bias)


@dataclass(frozen=True)
class PPOConfig(A2CConfig):
    """Everything that defines one PPO run: A2C's fields (:class:`pglib.A2CConfig`), other
    defaults, and the fields of the policy step. Introduced in Chapter 10.

    The defaults are A2C's, plus four epochs of the clipped surrogate on the whole batch (one
    minibatch of 256), the gradient's norm clipped at 0.5, and orthogonal initialisation. On
    CartPole-v1 they were chosen from a sweep of step sizes (0.003-0.03), epochs (2-10),
    minibatch sizes (64-256), γ and λ over 6-8 seeds each (several epochs at a smaller step
    size needed more steps, not fewer), then the epochs changed from 2 to 4 after ten seeds
    no default had been chosen on (200-209): a median of 22,912 env steps to a last-20 mean of
    475, against 25,978 with two epochs (minibatches of 128: 24,432), and 23,778 on the
    held-out seeds 100-109. ``benchmarks/ppo.py`` measures them against Stable-Baselines3.
    :data:`PPO_PENDULUM` holds the settings for Pendulum-v1.
    ``normalize_advantages`` normalises each *minibatch*'s advantages.
    """

    algo = "ppo"

    max_grad_norm: float | None = 0.5
    epochs: int = 4  # passes over each batch
    minibatch_size: int = 256  # samples per gradient step (the last one of an epoch: the rest)
    clip_eps: float = 0.2  # ε of the clipped surrogate
    clip_schedule: str = "constant"  # "constant", or "linear": ε decays to 0 at max_steps
    value_clip: float | None = None  # clip the critic's moves to ±value_clip (None: off)
    target_kl: float | None = None  # stop the epochs when approx-KL > 1.5 × this (None: off)
    orthogonal_init: bool = True  # orthogonal weights, policy output gain 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        _checks.positive_int("epochs", self.epochs, limit=10_000)
        _checks.positive_int("minibatch_size", self.minibatch_size, limit=MAX_ENV_STEPS)
        if self.minibatch_size > self.batch_size:
            raise ValueError(
                f"minibatch_size must be at most batch_size={self.batch_size}, got "
                f"{self.minibatch_size}"
            )
        self._set_float(
            "clip_eps",
            _checks.real("clip_eps", self.clip_eps, low=0.0, high=MAX_CLIP, low_open=True),
        )
        _checks.choice("clip_schedule", self.clip_schedule, ("constant", "linear"))
        for name in ("value_clip", "target_kl"):
            if getattr(self, name) is not None:
                value = _checks.real(name, getattr(self, name), low=0.0, low_open=True)
                self._set_float(name, value)
        _checks.boolean("orthogonal_init", self.orthogonal_init)

    def _run(
        self,
        envs: gym.vector.VectorEnv,
        callback: Callable[[History], bool | None] | None,
        progress: bool,
    ) -> History:
        return _train(self, envs, callback, progress)


#: PPO's settings for Pendulum-v1 (a Gaussian policy), as overrides of :class:`PPOConfig`:
#: ``PPOConfig(**PPO_PENDULUM, seed=s)``. Chosen over 4-6 seeds per setting from a sweep of
#: the batch and minibatch sizes, step sizes, σ's start and the critic's fit; the critic's fit
#: mattered most (50 Adam steps at 0.03 per batch, against 20 at 0.003, roughly halved the
#: steps to a last-20 mean of −200), then the number of policy steps per batch (minibatches of
#: 256 instead of 128 needed more env steps). γ = 0.9 and λ = 0.95 are rl-baselines3-zoo's.
#: The step size decays linearly (PPOConfig's default), not held constant: on seeds 200-209,
#: a median of 42,796 env steps to −200 against 54,004, and a median late low (the lowest
#: last-20 mean over the final 20% of 150k steps) of −234 against −294; on the held-out seeds
#: 100-109, 40,760 steps and every greedy evaluation at 150k above −250.
PPO_PENDULUM: dict[str, Any] = {
    "env_id": "Pendulum-v1",
    "target_return": -200.0,
    "hidden_sizes": (64, 64),
    "gamma": 0.9,
    "gae_lambda": 0.95,
    "batch_size": 1024,
    "minibatch_size": 128,
    "epochs": 10,
    "lr": 1e-3,
    "log_std_init": -0.5,
    "value_lr": 0.03,
    "value_epochs": 50,
}


@dataclass
class PPOHistory(History):
    """A :class:`pglib.History` with PPO's diagnostics, one entry per update:

    - ``approx_kl``: the k3 estimate of KL(π_old ‖ π_new) over the batch, after the update.
    - ``clip_fraction``: the fraction of the batch whose ratio ended outside [1 − ε, 1 + ε].
    - ``explained_variance``: 1 − Var(A)/Var(R) of the critic before its refit, with R the
      λ-return targets and A = R − V the advantages (1: perfect, ≤ 0: no better than a
      constant).
    - ``policy_steps``: the minibatch steps taken (fewer than epochs × minibatches when the
      KL early stop fired).

    ``loss``, ``grad_norm`` and ``entropy`` are means over the update's minibatch steps.
    Introduced in Chapter 10.
    """

    approx_kl: list[float] = field(default_factory=list)
    clip_fraction: list[float] = field(default_factory=list)
    explained_variance: list[float] = field(default_factory=list)
    policy_steps: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The per-update lists, History's and PPO's, as JSON-ready values."""
        return {
            **super().to_dict(),
            "approx_kl": list(self.approx_kl),
            "clip_fraction": list(self.clip_fraction),
            "explained_variance": [None if math.isnan(v) else v for v in self.explained_variance],
            "policy_steps": list(self.policy_steps),
        }


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def _explained_variance(advantages: Tensor, targets: Tensor) -> float:
    variance = float(targets.double().var())
    return 1.0 - float(advantages.double().var()) / variance if variance > 0 else math.nan


def _train(
    config: PPOConfig,
    envs: gym.vector.VectorEnv,
    callback: Callable[[History], bool | None] | None,
    progress: bool,
) -> PPOHistory:
    policy = make_policy(envs, config.env_id, config.hidden_sizes, config.log_std_init)
    learner = Learner.build(config, policy)
    if config.orthogonal_init:
        network = policy.logits_net if hasattr(policy, "logits_net") else policy.mu_net
        orthogonal_init(network, output_gain=0.01)
        if learner.value_net is not None:
            orthogonal_init(learner.value_net, output_gain=1.0)
    history = PPOHistory(config=config, policy=learner.policy, value=learner.value_net)
    collector = RolloutCollector(envs, config.seed)
    recorder = Recorder(history, progress)
    steps_per_env = config.batch_size // config.num_envs
    # Shuffling draws from its own generator, so that the minibatch split leaves the action
    # sampling's random stream as A2C's: with one epoch of one minibatch, PPO is A2C.
    shuffle = torch.Generator().manual_seed(config.seed)
    while True:
        learner.schedule(config, recorder.env_steps)
        clip_eps = config.clip_eps
        if config.clip_schedule == "linear":
            clip_eps *= 1 - recorder.env_steps / config.max_steps
        rollout = collector.collect(learner.policy, steps_per_env)
        batch = prepare_batch(rollout, config, learner)
        obs, act, weights = batch.obs, batch.actions, batch.weights
        explained = math.nan
        if batch.targets is not None:
            explained = _explained_variance(weights, batch.targets)
            value_clip = functools.partial(value_loss, clip_eps=config.value_clip)
            learner.fit_value(config, obs, batch.targets, value_clip)
        with torch.no_grad():
            old_logp = learner.policy.distribution(obs).log_prob(act)
        losses, norms, entropies = [], [], []
        stopped = False
        for _ in range(config.epochs):
            for index in minibatches(len(weights), config.minibatch_size, shuffle):
                dist = learner.policy.distribution(obs[index])
                loss, stats = clipped_surrogate(
                    dist.log_prob(act[index]),
                    old_logp[index],
                    normalized(config, weights[index]),
                    clip_eps,
                )
                if config.target_kl is not None and stats.approx_kl > 1.5 * config.target_kl:
                    stopped = True
                    break
                step = learner.step_policy(config, obs[index], loss, dist.entropy().mean())
                for values, stat in zip((losses, norms, entropies), step, strict=True):
                    values.append(stat)
            if stopped:
                break
        with torch.no_grad():
            _, after = clipped_surrogate(
                learner.policy.distribution(obs).log_prob(act), old_logp, weights, clip_eps
            )
        history.approx_kl.append(after.approx_kl)
        history.clip_fraction.append(after.clip_fraction)
        history.explained_variance.append(explained)
        history.policy_steps.append(len(losses))
        if recorder.record(
            new_steps=rollout.n_steps,
            finished_returns=rollout.finished_returns,
            carried_steps=0,
            steps_used=len(weights),
            stats=(_mean(losses), _mean(norms), _mean(entropies)),
            callback=callback,
        ):
            return history
