"""What every trainer shares: the config fields, the history, the update steps, ``train``.

A trainer is a config class (a subclass of :class:`TrainerConfig`) and the loop that it runs:
:class:`pglib.REINFORCEConfig` (Chapter 8) and :class:`pglib.A2CConfig` (Chapter 9).
``train(config)`` runs whichever loop the config belongs to and returns a :class:`History`
with the same fields for every trainer, so that curves, reports and benchmarks treat them
alike. The pieces of an update that do not depend on where the weights come from live here
too: the policy-gradient loss, the value regression and one clipped policy step.

Introduced in Chapter 8.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pglib import _checks
from pglib.policies import (
    MAX_LAYER_WIDTH,
    DiagonalGaussianPolicy,
    MLPCategoricalPolicy,
    TabularSoftmaxPolicy,
    mlp,
)
from pglib.rollouts import MAX_ENV_STEPS, MAX_ENVS, Policy, check_env_id, make_vector_env

__all__ = [
    "TrainerConfig",
    "History",
    "train",
    "train_many",
    "policy_gradient_loss",
]

#: How many finished training episodes "target reached" averages over.
TARGET_WINDOW = 20
#: At most this many worker processes for :func:`train_many`.
MAX_PROCESSES = 256


@dataclass(frozen=True)
class TrainerConfig:
    """The fields every trainer has; seeding happens in one place, from ``seed``.

    Not trained directly: use :class:`pglib.REINFORCEConfig` or :class:`pglib.A2CConfig`.
    Introduced in Chapter 8.
    """

    algo: ClassVar[str] = ""  # the trainer's name, as the command line spells it

    env_id: str = "CartPole-v1"  # a registered Gymnasium id with a Discrete action space
    num_envs: int = 8  # environments stepped side by side, one batched policy call per step
    seed: int = 0  # seeds the network, the action sampling and the environments
    lr: float = 0.02  # Adam step size of the policy
    lr_schedule: str = "linear"  # "constant", or "linear": decays to 0 at max_steps
    gamma: float = 0.99  # discount factor γ in the returns
    hidden_sizes: tuple[int, ...] = (32,)  # hidden layer widths of the policy and value MLPs
    value_baseline: bool = True  # subtract a learned V(s_t) from the weights
    value_lr: float = 0.01  # Adam step size of the value network
    value_epochs: int = 10  # full-batch value-regression steps per update
    normalize_advantages: bool = True  # rescale the weights to mean 0, std 1 in each batch
    entropy_coef: float = 0.0  # weight of the entropy bonus added to the objective
    max_grad_norm: float | None = None  # clip the policy gradient's norm to this (None: off)
    max_steps: int = 150_000  # the budget in environment steps (autoreset steps not counted)
    target_return: float | None = 475.0  # "reached" when the last-20-episode mean is ≥ this
    stop_at_target: bool = False  # stop as soon as the target is reached
    device: str = "cpu"  # torch device for the networks

    def __post_init__(self) -> None:
        if type(self) is TrainerConfig:
            raise ValueError(
                "TrainerConfig holds the shared fields only; train a REINFORCEConfig or an "
                "A2CConfig"
            )
        check_env_id(self.env_id)
        _checks.positive_int("num_envs", self.num_envs, limit=MAX_ENVS)
        _checks.positive_int("max_steps", self.max_steps, limit=MAX_ENV_STEPS)
        _checks.positive_int("value_epochs", self.value_epochs, limit=10_000)
        _checks.integer("seed", self.seed, low=0)
        for name in ("lr", "value_lr"):
            self._set_float(name, _checks.real(name, getattr(self, name), low=0.0, low_open=True))
        _checks.choice("lr_schedule", self.lr_schedule, ("constant", "linear"))
        self._set_float("gamma", _checks.unit_interval("gamma", self.gamma))
        if (
            isinstance(self.hidden_sizes, (str, bytes))
            or not isinstance(self.hidden_sizes, (tuple, list))
            or not self.hidden_sizes
        ):
            raise ValueError(
                "hidden_sizes must be a non-empty tuple of positive integers, "
                f"got {_checks.describe(self.hidden_sizes)}"
            )
        for width in self.hidden_sizes:
            _checks.positive_int("every hidden size", width, limit=MAX_LAYER_WIDTH)
        for name in ("value_baseline", "normalize_advantages", "stop_at_target"):
            _checks.boolean(name, getattr(self, name))
        self._set_float("entropy_coef", _checks.real("entropy_coef", self.entropy_coef, low=0.0))
        if self.max_grad_norm is not None:
            norm = _checks.real("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
            self._set_float("max_grad_norm", norm)
        if self.target_return is not None:
            self._set_float("target_return", _checks.real("target_return", self.target_return))
        _check_device(self.device)

    def _set_float(self, name: str, value: float) -> None:
        """Store a NumPy or torch scalar as a Python float, so that the config stays
        JSON-ready; a Python int or float is kept as given."""
        if not isinstance(getattr(self, name), (int, float)):
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict, with ``"algo"`` first (tuples become
        lists)."""
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return {"algo": self.algo, **data}

    def _run(
        self,
        envs: gym.vector.VectorEnv,
        callback: Callable[[History], bool | None] | None,
        progress: bool,
    ) -> History:
        """The trainer's loop; each subclass runs its own."""
        raise NotImplementedError


def _check_device(device: object) -> None:
    """A torch device name that this machine has, or a one-sentence error with the fix."""
    _checks.instance("device", device, str, "a torch device name such as 'cpu' or 'cuda'")
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"device must name a torch device, got {device!r}") from None
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
    }.get(kind, False)
    if not available:
        raise ValueError(
            f"device {device!r} is not available on this machine (torch finds no {kind} "
            "device); use device 'cpu' (--device cpu)"
        )
    if kind == "cuda" and torch.device(device).index is not None:
        count = torch.cuda.device_count()
        if torch.device(device).index >= count:
            raise ValueError(
                f"device {device!r} does not exist: this machine has {count} CUDA device(s); "
                "use 'cuda' or 'cpu'"
            )


@dataclass
class History:
    """What :func:`train` records, one list entry per update, and the trained networks.

    - ``env_steps``: environment steps so far (autoreset steps not counted).
    - ``wall_seconds``: seconds since training started (set-up excluded).
    - ``mean_return``: mean return of the episodes that finished during the update (for
      REINFORCE, exactly the episodes the update used); NaN if none did.
    - ``recent_return``: mean return of the last 20 finished episodes (NaN before the first).
    - ``episodes``: how many episodes finished during the update (for REINFORCE, the complete
      episodes it used).
    - ``steps_used``: the environment steps in the update's batch.
    - ``carried_steps``: how many of those an earlier policy sampled (REINFORCE's episodes that
      began before the previous update; always 0 for A2C, whose batches are fresh).
    - ``loss``: the policy surrogate loss −mean(log π · weight); minus its gradient is the
      policy-gradient estimate (descending it climbs J), its value is not a performance
      measure.
    - ``grad_norm``: the policy gradient's norm before clipping.
    - ``entropy``: the mean entropy of π(·|s_t) over the batch, in nats.
    - ``steps_to_target``, ``seconds_to_target``: when ``recent_return`` first reached the
      target (``None`` if it never did).

    Introduced in Chapter 8.
    """

    config: TrainerConfig
    policy: Policy
    value: nn.Module | None
    env_steps: list[int] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)
    mean_return: list[float] = field(default_factory=list)
    recent_return: list[float] = field(default_factory=list)
    episodes: list[int] = field(default_factory=list)
    steps_used: list[int] = field(default_factory=list)
    carried_steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    steps_to_target: int | None = None
    seconds_to_target: float | None = None

    def __post_init__(self) -> None:
        _checks.instance(
            "config", self.config, TrainerConfig, "a trainer config (REINFORCEConfig, A2CConfig)"
        )
        _checks.instance(
            "policy",
            self.policy,
            (MLPCategoricalPolicy, DiagonalGaussianPolicy),
            "an MLPCategoricalPolicy or a DiagonalGaussianPolicy",
        )
        if self.value is not None:
            _checks.instance("value", self.value, nn.Module, "a torch.nn.Module or None")

    def to_dict(self) -> dict[str, Any]:
        """The per-update lists as plain JSON-ready Python values (NaN becomes ``None``)."""

        def clean(values: list[float]) -> list[float | None]:
            return [None if math.isnan(v) else v for v in values]

        return {
            "env_steps": list(self.env_steps),
            "wall_seconds": list(self.wall_seconds),
            "mean_return": clean(self.mean_return),
            "recent_return": clean(self.recent_return),
            "episodes": list(self.episodes),
            "steps_used": list(self.steps_used),
            "carried_steps": list(self.carried_steps),
            "loss": list(self.loss),
            "grad_norm": list(self.grad_norm),
            "entropy": list(self.entropy),
        }


def train(
    config: TrainerConfig,
    callback: Callable[[History], bool | None] | None = None,
    *,
    progress: bool = True,
) -> History:
    """Train an MLP categorical policy with the trainer ``config`` belongs to.

    ``REINFORCEConfig`` runs REINFORCE on complete episodes (Chapter 8); ``A2CConfig`` runs
    the n-step advantage actor-critic (Chapter 9). Training runs until ``max_steps``
    environment steps, or until the target is reached when ``stop_at_target``, or until
    ``callback(history)`` returns True after an update. ``progress`` shows a tqdm bar with
    the recent mean return. The global torch RNG and thread count are restored afterwards.
    Introduced in Chapter 8.
    """
    _checks.instance(
        "config", config, TrainerConfig, "a trainer config (REINFORCEConfig, A2CConfig)"
    )
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None, got {type(callback).__name__}")
    _checks.boolean("progress", progress)
    envs = make_vector_env(config.env_id, config.num_envs)
    try:
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            torch.set_num_threads(1)  # small networks: one thread is fastest
            try:
                return config._run(envs, callback, progress)
            finally:
                torch.set_num_threads(threads)
    finally:
        envs.close()


def train_many(
    configs: Sequence[TrainerConfig], *, processes: int | None = None, progress: bool = True
) -> list[History]:
    """``[train(c, progress=False) for c in configs]``, with the runs spread over the CPU cores.

    Each run seeds itself and uses one torch thread, so the histories are the same as those of
    the loop, in the same order, whatever ``processes`` is. ``processes`` defaults to the
    number of cores (at most one per run); with 1 the runs stay in this process. Workers
    start through a fork server (or spawn where there is none), never by forking the caller,
    which is unsafe in a process with threads such as a Jupyter kernel: code patched in the
    caller (``unittest.mock``) does not reach them, so run such experiments with
    :func:`train`; and a script must call it under ``if __name__ == "__main__":``, as
    :mod:`multiprocessing` requires. ``progress`` counts finished runs. Introduced in
    Chapter 8.
    """
    if isinstance(configs, (str, bytes)) or not isinstance(configs, Sequence) or not configs:
        raise ValueError(
            f"configs must be a non-empty list of trainer configs, got {_checks.describe(configs)}"
        )
    for i, config in enumerate(configs):
        _checks.instance(
            f"configs[{i}]", config, TrainerConfig, "a trainer config (REINFORCEConfig, A2CConfig)"
        )
    if processes is None:
        processes = min(len(configs), os.cpu_count() or 1)
    processes = _checks.positive_int("processes", processes, limit=MAX_PROCESSES)
    _checks.boolean("progress", progress)
    bar = tqdm(total=len(configs), desc="runs", unit="run", disable=not progress)
    with bar:
        if processes == 1:
            histories = []
            for config in configs:
                histories.append(train(config, progress=False))
                bar.update()
            return histories
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        with ProcessPoolExecutor(processes, mp_context=context) as pool:
            futures = [pool.submit(train, config, progress=False) for config in configs]
            for _ in as_completed(futures):
                bar.update()
            return [future.result() for future in futures]


def policy_gradient_loss(
    policy: MLPCategoricalPolicy | DiagonalGaussianPolicy | TabularSoftmaxPolicy,
    observations: Tensor,
    actions: Tensor,
    weights: Tensor,
) -> Tensor:
    """The surrogate loss −(1/n) Σ_t log π_θ(a_t | o_t) · w_t, a scalar tensor.

    Minus its gradient is the policy-gradient estimate with weights w_t (reward-to-go, an
    advantage estimate, ...), so a descent step on it is an ascent step on J; the weights must
    carry no gradient, and the loss's value is not a performance measure.
    ``observations`` are [n, obs_dim] floats for an MLP policy, or [n] integer states for a
    :class:`TabularSoftmaxPolicy`; ``weights`` are [n]; ``actions`` are [n] integers, or
    [n, act_dim] floats for a :class:`DiagonalGaussianPolicy`. REINFORCE and A2C call it.
    Introduced in Chapter 8.
    """
    _checks.instance(
        "policy",
        policy,
        (MLPCategoricalPolicy, DiagonalGaussianPolicy, TabularSoftmaxPolicy),
        "an MLPCategoricalPolicy, a DiagonalGaussianPolicy or a TabularSoftmaxPolicy",
    )
    weights = _checks.real_array("weights", weights, ndim=1, nonempty=True)
    n = weights.shape[0]
    if isinstance(policy, DiagonalGaussianPolicy):
        _checks.real_array("actions", actions)
        expected = (n, policy.act_dim)
    else:
        _checks.index_array("actions", actions, high=policy.n_actions)
        expected = (n,)
    if tuple(np.shape(actions)) != expected:
        raise ValueError(
            f"actions must have shape {expected} for this policy, like weights' {n} rows, "
            f"got {np.shape(actions)}"
        )
    if not isinstance(observations, (torch.Tensor, np.ndarray)) or np.shape(observations)[:1] != (
        n,
    ):
        raise ValueError(
            f"observations must be an array with {n} rows like weights, got "
            f"{_checks.describe(observations)}"
        )
    if isinstance(weights, torch.Tensor) and weights.requires_grad:
        raise ValueError(
            "weights must carry no gradient (compute them under torch.no_grad() or call "
            ".detach()): the loss would differentiate through them"
        )
    dist = policy.distribution(observations)
    log_prob = dist.log_prob(torch.as_tensor(actions, device=next(policy.parameters()).device))
    weights = torch.as_tensor(weights, dtype=log_prob.dtype, device=log_prob.device)
    return -(log_prob * weights).mean()


# --- The pieces of a trainer's loop (private: each trainer module assembles them) ----------


@dataclass
class Learner:
    """The networks and optimisers of one run: the policy, and V_φ when there is a baseline."""

    policy: Policy
    value_net: nn.Module | None
    policy_optimizer: torch.optim.Optimizer
    value_optimizer: torch.optim.Optimizer | None

    @classmethod
    def build(cls, config: TrainerConfig, policy: Policy) -> Learner:
        """Optimisers for ``policy`` (built by the trainer), and V_φ when there is a baseline."""
        device = torch.device(config.device)
        policy = policy.to(device)
        obs_dim = policy.obs_dim
        value_net = value_optimizer = None
        if config.value_baseline:
            value_net = mlp([obs_dim, *config.hidden_sizes, 1]).to(device)
            value_optimizer = torch.optim.Adam(
                value_net.parameters(), lr=config.value_lr, fused=True
            )
        policy_optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr, fused=True)
        return cls(policy, value_net, policy_optimizer, value_optimizer)

    def schedule(self, config: TrainerConfig, env_steps: int) -> None:
        """Set the step sizes for an update that starts after ``env_steps`` steps."""
        scale = 1 - env_steps / config.max_steps if config.lr_schedule == "linear" else 1.0
        self.policy_optimizer.param_groups[0]["lr"] = config.lr * scale
        if self.value_optimizer is not None:
            self.value_optimizer.param_groups[0]["lr"] = config.value_lr * scale

    def values(self, obs: np.ndarray) -> np.ndarray:
        """V_φ(o) for observations [..., obs_dim], as float64 [...], without a gradient."""
        assert self.value_net is not None
        with torch.inference_mode():
            device = next(self.value_net.parameters()).device
            v = self.value_net(torch.as_tensor(obs, device=device)).squeeze(-1)
        return v.double().cpu().numpy()

    def fit_value(
        self,
        config: TrainerConfig,
        obs: Tensor,
        targets: Tensor,
        loss: Callable[[Tensor, Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        """``value_epochs`` full-batch Adam steps on the critic's loss: the squared error
        mean((V_φ(o) − target)²), or ``loss(V_φ(o), V_old(o), targets)`` when given, with
        V_old the critic before the first step (PPO's clipped value loss moves from it)."""
        assert self.value_net is not None and self.value_optimizer is not None
        if loss is not None:
            with torch.no_grad():
                old_values = self.value_net(obs).squeeze(-1)
        for _ in range(config.value_epochs):
            values = self.value_net(obs).squeeze(-1)
            if loss is None:
                value_loss = ((values - targets) ** 2).mean()
            else:
                value_loss = loss(values, old_values, targets)
            self.value_optimizer.zero_grad()
            value_loss.backward()
            self.value_optimizer.step()

    def step_policy(
        self, config: TrainerConfig, obs: Tensor, loss: Tensor, entropy: Tensor | None = None
    ) -> tuple[float, float, float]:
        """One Adam step on ``loss`` − entropy_coef · mean entropy, with the gradient's norm
        clipped to ``max_grad_norm``; returns the loss, the norm before clipping and the
        mean entropy. ``entropy`` is the mean entropy of π(·|obs) when the caller has the
        distribution already (it is computed from ``obs`` otherwise)."""
        if entropy is None:
            entropy = self.policy.distribution(obs).entropy().mean()
        self.policy_optimizer.zero_grad()
        (loss - config.entropy_coef * entropy).backward()
        max_norm = config.max_grad_norm if config.max_grad_norm is not None else math.inf
        grad_norm = torch.nn.utils.clip_grad_norm_(self.policy.parameters(), max_norm)
        self.policy_optimizer.step()
        return float(loss.detach()), float(grad_norm), float(entropy.detach())


def normalized(config: TrainerConfig, weights: Tensor) -> Tensor:
    """The weights rescaled to mean 0 and standard deviation 1 when the config asks for it."""
    if config.normalize_advantages and weights.numel() > 1:
        return (weights - weights.mean()) / (weights.std() + 1e-8)
    return weights


class Recorder:
    """Appends one update to a :class:`History`, tracks the target, drives the progress bar."""

    def __init__(self, history: History, progress: bool) -> None:
        self.history = history
        self.config = history.config
        self.recent: deque[float] = deque(maxlen=TARGET_WINDOW)
        self.env_steps = 0
        self.bar = tqdm(total=self.config.max_steps, unit="step", disable=not progress, leave=False)
        self.start = time.perf_counter()

    def record(
        self,
        *,
        new_steps: int,
        finished_returns: list[float],
        steps_used: int,
        carried_steps: int,
        stats: tuple[float, float, float],
        callback: Callable[[History], bool | None] | None,
    ) -> bool:
        """Record one update; returns True when training should stop."""
        history, config = self.history, self.config
        self.env_steps += new_steps
        self.recent.extend(finished_returns)
        seconds = time.perf_counter() - self.start
        recent_mean = float(np.mean(self.recent)) if self.recent else math.nan
        history.env_steps.append(self.env_steps)
        history.wall_seconds.append(seconds)
        history.mean_return.append(
            float(np.mean(finished_returns)) if finished_returns else math.nan
        )
        history.recent_return.append(recent_mean)
        history.episodes.append(len(finished_returns))
        history.steps_used.append(steps_used)
        history.carried_steps.append(carried_steps)
        loss, grad_norm, entropy = stats
        history.loss.append(loss)
        history.grad_norm.append(grad_norm)
        history.entropy.append(entropy)
        reached = (
            config.target_return is not None
            and len(self.recent) == TARGET_WINDOW
            and recent_mean >= config.target_return
        )
        if reached and history.steps_to_target is None:
            history.steps_to_target, history.seconds_to_target = self.env_steps, seconds
        self.bar.update(min(new_steps, config.max_steps - self.bar.n))
        self.bar.set_postfix(recent_return=f"{recent_mean:.1f}", refresh=False)
        stop = (
            self.env_steps >= config.max_steps
            or (reached and config.stop_at_target)
            or bool(callback is not None and callback(history))
        )
        if stop:
            self.bar.close()
        return stop
