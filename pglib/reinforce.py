"""REINFORCE with reward-to-go weights, vectorised Gymnasium rollouts and an optional baseline.

The trainer is the algorithm of Chapters 4–7 put together (Williams, 1992):

1. Step ``num_envs`` copies of the environment side by side, one batched policy call per step.
2. Weight each log-probability by the reward-to-go G_t (Chapter 6), minus a learned value
   V(s_t) when the baseline is on (Chapter 7).
3. Take one gradient step on ``-(log π(a_t|s_t) · weight_t).mean()``.

Episode ends follow Gymnasium 1.x. Its vector environments reset a finished sub-environment
*on the next step* (``AutoresetMode.NEXT_STEP``): the step after ``terminated`` or
``truncated`` ignores the action and returns the first observation of the next episode,
with reward 0 and both flags false. Such autoreset steps are not transitions of the MDP.
They are masked out of the loss and are not counted as environment steps.

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
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pglib import _checks
from pglib.policies import MAX_LAYER_WIDTH, MLPCategoricalPolicy, mlp
from pglib.returns import reward_to_go

__all__ = [
    "REINFORCEConfig",
    "History",
    "Rollout",
    "RolloutCollector",
    "make_vector_env",
    "rollout_returns",
    "train",
    "train_many",
    "evaluate",
]

#: How many finished training episodes "target reached" averages over.
TARGET_WINDOW = 20
#: Size guards: more environments side by side, or more steps, than any run here needs.
MAX_ENVS = 1_024
MAX_ENV_STEPS = 1_000_000_000
#: At most this many worker processes for :func:`train_many`.
MAX_PROCESSES = 256


@dataclass(frozen=True)
class REINFORCEConfig:
    """Everything that defines one REINFORCE run; seeding happens in one place, from ``seed``.

    Introduced in Chapter 8.
    """

    env_id: str = "CartPole-v1"  # a registered Gymnasium id with a Discrete action space
    num_envs: int = 8  # environments stepped side by side, one batched policy call per step
    seed: int = 0  # seeds the network, the action sampling and the environments
    lr: float = 0.02  # Adam step size of the policy
    lr_schedule: str = "linear"  # "constant", or "linear": decays to 0 at max_steps
    gamma: float = 0.99  # discount factor γ in the reward-to-go
    batch_size: int = 256  # vector steps × num_envs per update (autoreset steps included)
    hidden_sizes: tuple[int, ...] = (32,)  # hidden layer widths of the policy and value MLPs
    value_baseline: bool = True  # subtract a learned V(s_t) and bootstrap cut episodes with it
    value_lr: float = 0.01  # Adam step size of the value network
    value_epochs: int = 10  # full-batch value-regression steps per update
    normalize_advantages: bool = True  # rescale the weights to mean 0, std 1 in each batch
    entropy_coef: float = 0.0  # weight of the entropy bonus added to the objective
    max_grad_norm: float | None = 1.0  # clip the policy gradient's norm to this (None: off)
    max_steps: int = 150_000  # the budget in environment steps (autoreset steps not counted)
    target_return: float | None = 475.0  # "reached" when the last-20-episode mean is ≥ this
    stop_at_target: bool = False  # stop as soon as the target is reached
    device: str = "cpu"  # torch device for the networks

    def __post_init__(self) -> None:
        _check_env_id(self.env_id)
        _checks.positive_int("num_envs", self.num_envs, limit=MAX_ENVS)
        _checks.positive_int("batch_size", self.batch_size, limit=MAX_ENV_STEPS)
        _checks.positive_int("max_steps", self.max_steps, limit=MAX_ENV_STEPS)
        _checks.positive_int("value_epochs", self.value_epochs, limit=10_000)
        _checks.integer("seed", self.seed, low=0)
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
        """The configuration as a JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data


def _check_env_id(env_id: object) -> None:
    _checks.instance("env_id", env_id, str, "a Gymnasium environment id (a string)")
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"env_id must be a registered Gymnasium environment id, got {env_id!r} ({error})"
        ) from None


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
    - ``mean_return``: mean return of the episodes that finished during the update (NaN if
      none did).
    - ``recent_return``: mean return of the last 20 finished episodes (NaN before the first).
    - ``loss``: the policy surrogate loss −mean(log π · weight); its gradient is the policy
      gradient estimate, its value is not a performance measure.
    - ``grad_norm``: the policy gradient's norm before clipping.
    - ``entropy``: the mean entropy of π(·|s_t) over the batch, in nats.
    - ``steps_to_target``, ``seconds_to_target``: when ``recent_return`` first reached the
      target (``None`` if it never did).

    Introduced in Chapter 8.
    """

    config: REINFORCEConfig
    policy: MLPCategoricalPolicy
    value: nn.Module | None
    env_steps: list[int] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)
    mean_return: list[float] = field(default_factory=list)
    recent_return: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    steps_to_target: int | None = None
    seconds_to_target: float | None = None

    def __post_init__(self) -> None:
        _checks.instance("config", self.config, REINFORCEConfig, "a REINFORCEConfig")
        _checks.instance("policy", self.policy, MLPCategoricalPolicy, "an MLPCategoricalPolicy")
        if self.value is not None:
            _checks.instance("value", self.value, nn.Module, "a torch.nn.Module or None")

    def to_dict(self) -> dict[str, Any]:
        """The per-update lists and the target times as plain JSON-ready Python values
        (NaN becomes ``None``)."""

        def clean(values: list[float]) -> list[float | None]:
            return [None if math.isnan(v) else v for v in values]

        return {
            "env_steps": list(self.env_steps),
            "wall_seconds": list(self.wall_seconds),
            "mean_return": clean(self.mean_return),
            "recent_return": clean(self.recent_return),
            "loss": list(self.loss),
            "grad_norm": list(self.grad_norm),
            "entropy": list(self.entropy),
        }


@dataclass(frozen=True, eq=False)
class Rollout:
    """T vector steps of N environments, time axis first.

    - ``observations`` [T, N, obs_dim]: o_t, the observation each action was chosen on.
    - ``actions`` [T, N], ``rewards`` [T, N] (float64).
    - ``terminated``, ``truncated`` [T, N]: the episode ended after step t.
    - ``next_observations`` [T, N, obs_dim]: o_{t+1}; at a truncated step it is the real last
      observation (Gymnasium's NEXT_STEP autoreset returns it there, and resets one step later).
    - ``valid`` [T, N]: False at autoreset steps, which belong to no episode.
    - ``finished_returns``: the undiscounted returns of the episodes that ended in this rollout,
      in the order they ended.

    Introduced in Chapter 8.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_observations: np.ndarray
    valid: np.ndarray
    finished_returns: list[float]

    def __post_init__(self) -> None:
        rewards = _checks.real_array("rewards", self.rewards, ndim=2, nonempty=True)
        shape = tuple(rewards.shape)
        for name in ("terminated", "truncated", "valid"):
            _checks.bool_flags(name, getattr(self, name), shape)
        _checks.index_array("actions", self.actions, high=np.iinfo(np.int64).max)
        if np.shape(self.actions) != shape:
            raise ValueError(f"actions must have shape {shape}, got {np.shape(self.actions)}")
        for name in ("observations", "next_observations"):
            obs = _checks.real_array(name, getattr(self, name))
            if tuple(obs.shape[:2]) != shape:
                raise ValueError(f"{name} must have shape {shape} + obs_shape, got {obs.shape}")
        for value in self.finished_returns:
            _checks.real("every finished return", value)

    @property
    def n_steps(self) -> int:
        """The number of environment steps, autoreset steps excluded."""
        return int(self.valid.sum())


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` as one vector environment.

    Uses the environment's own batched NumPy implementation when it has one (CartPole does),
    and ``SyncVectorEnv`` otherwise. Introduced in Chapter 8.
    """
    _check_env_id(env_id)
    num_envs = _checks.positive_int("num_envs", num_envs, limit=MAX_ENVS)
    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    try:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)
    except gym.error.DependencyNotInstalled as error:
        # Gymnasium's message names the pip command that installs the missing extra.
        raise ValueError(f"{env_id} needs a package that is not installed: {error}") from None


class RolloutCollector:
    """Steps a vector environment with a policy, keeping unfinished episodes across rollouts.

    ``collect(policy, T)`` makes T vector steps with one batched, gradient-free policy call per
    step, and masks Gymnasium's autoreset steps. Introduced in Chapter 8.
    """

    def __init__(self, envs: gym.vector.VectorEnv, seed: int) -> None:
        _checks.instance("envs", envs, gym.vector.VectorEnv, "a gymnasium VectorEnv")
        seed = _checks.integer("seed", seed, low=0)
        if envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP) != (
            gym.vector.AutoresetMode.NEXT_STEP
        ):
            raise ValueError(
                "the vector environment must use Gymnasium's default NEXT_STEP autoreset, "
                f"got {envs.metadata.get('autoreset_mode')}"
            )
        self.envs = envs
        self.obs, _ = envs.reset(seed=seed)
        self.after_end = np.zeros(envs.num_envs, dtype=bool)  # the next step is an autoreset
        self.episode_return = np.zeros(envs.num_envs)

    def collect(self, policy: MLPCategoricalPolicy, n_steps: int) -> Rollout:
        """T = ``n_steps`` vector steps; returns them as a :class:`Rollout`."""
        _check_policy_fits(policy, self.envs)
        n_steps = _checks.positive_int("n_steps", n_steps, limit=MAX_ENV_STEPS // MAX_ENVS)
        n_envs = self.envs.num_envs
        obs_shape = self.obs.shape[1:]
        observations = np.empty((n_steps, n_envs, *obs_shape), dtype=np.float32)
        next_observations = np.empty_like(observations)
        actions = np.empty((n_steps, n_envs), dtype=np.int64)
        rewards = np.empty((n_steps, n_envs))
        terminated = np.empty((n_steps, n_envs), dtype=bool)
        truncated = np.empty((n_steps, n_envs), dtype=bool)
        valid = np.empty((n_steps, n_envs), dtype=bool)
        finished: list[float] = []
        for t in range(n_steps):
            observations[t] = self.obs
            with torch.inference_mode():  # one batched call for all N environments
                action = policy.sample(torch.from_numpy(observations[t]))
            actions[t] = action.cpu().numpy()
            self.obs, reward, term, trunc, _ = self.envs.step(actions[t])
            next_observations[t] = self.obs
            valid[t] = ~self.after_end  # an autoreset step: the action was ignored
            rewards[t] = np.where(valid[t], reward, 0.0)
            terminated[t] = term & valid[t]
            truncated[t] = trunc & valid[t]
            self.episode_return += rewards[t]
            ended = terminated[t] | truncated[t]
            finished.extend(self.episode_return[ended].tolist())
            self.episode_return[ended] = 0.0
            self.after_end = ended
        return Rollout(
            observations,
            actions,
            rewards,
            terminated,
            truncated,
            next_observations,
            valid,
            finished,
        )


def rollout_returns(
    rollout: Rollout, gamma: float, value: Callable[[Tensor], Tensor] | None = None
) -> np.ndarray:
    """The reward-to-go G_t of every step of a rollout, [T, N] (0 at autoreset steps).

    Episodes end where Gymnasium said so. An episode still running at the end of the rollout
    is cut there, which is a truncation. At every truncation (a time limit or the cut) the
    future is bootstrapped with ``value(o_{t+1})`` when ``value`` is given:
    G_t = r_t + γ V(o_{t+1}). Without a value function the unseen future counts as 0, so
    the returns near a cut are biased low; a terminated episode needs no bootstrap.
    Computed by :func:`pglib.reward_to_go`. Introduced in Chapter 8.
    """
    _checks.instance("rollout", rollout, Rollout, "a Rollout")
    if value is not None and not callable(value):
        raise ValueError(f"value must be a callable V(obs) or None, got {type(value).__name__}")
    terminated = rollout.terminated | ~rollout.valid  # an autoreset step is its own 0-episode
    truncated = rollout.truncated.copy()
    truncated[-1] |= ~(terminated[-1] | truncated[-1])  # the rollout cut mid-episode
    bootstrap = None
    if value is not None:
        with torch.inference_mode():
            next_obs = torch.from_numpy(rollout.next_observations)
            bootstrap = value(next_obs).reshape(rollout.rewards.shape).double().cpu().numpy()
    return reward_to_go(
        rollout.rewards, gamma, terminated=terminated, truncated=truncated, bootstrap=bootstrap
    )


def _value_fn(net: nn.Module, device: torch.device) -> Callable[[Tensor], Tensor]:
    """V(o) for observations [..., obs_dim] -> [...]."""
    return lambda obs: net(obs.to(device)).squeeze(-1)


def _check_policy_fits(policy: object, envs: gym.vector.VectorEnv) -> None:
    """``policy`` is an MLP categorical policy for the observations and actions of ``envs``."""
    _checks.instance("policy", policy, MLPCategoricalPolicy, "an MLPCategoricalPolicy")
    obs_shape = envs.single_observation_space.shape
    n_actions = getattr(envs.single_action_space, "n", None)
    if obs_shape != (policy.obs_dim,) or n_actions != policy.n_actions:
        raise ValueError(
            f"the policy (obs_dim={policy.obs_dim}, n_actions={policy.n_actions}) does not fit "
            f"the environment (observations {obs_shape}, actions {envs.single_action_space})"
        )


def _check_discrete(envs: gym.vector.VectorEnv, env_id: str) -> int:
    space = envs.single_action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(
            "REINFORCE here uses a categorical policy, so the environment needs a Discrete "
            f"action space; {env_id} has {space}"
        )
    obs_space = envs.single_observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(
            f"the environment needs flat Box observations [obs_dim]; {env_id} has {obs_space}"
        )
    return int(space.n)


def train(
    config: REINFORCEConfig,
    callback: Callable[[History], bool | None] | None = None,
    *,
    progress: bool = True,
) -> History:
    """Train an MLP categorical policy with REINFORCE; returns the :class:`History`.

    Each update collects ``batch_size // num_envs`` vector steps, computes reward-to-go
    weights (minus V(s_t), bootstrapped at truncations, when ``value_baseline``), and takes
    one Adam step on the policy (and one on the value network, fitting V to G). Training runs
    until ``max_steps`` environment steps, or until the target is reached when
    ``stop_at_target``, or until ``callback(history)`` returns True. ``progress`` shows a tqdm
    bar with the recent mean return. The global torch RNG and thread count are restored
    afterwards. Introduced in Chapter 8.
    """
    _checks.instance("config", config, REINFORCEConfig, "a REINFORCEConfig")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None, got {type(callback).__name__}")
    _checks.boolean("progress", progress)
    envs = make_vector_env(config.env_id, config.num_envs)
    try:
        n_actions = _check_discrete(envs, config.env_id)
        threads = torch.get_num_threads()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            torch.set_num_threads(1)  # small networks: one thread is fastest
            try:
                return _train(config, envs, n_actions, callback, progress)
            finally:
                torch.set_num_threads(threads)
    finally:
        envs.close()


def train_many(
    configs: Sequence[REINFORCEConfig], *, processes: int | None = None, progress: bool = True
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
        raise ValueError(f"configs must be a non-empty list of REINFORCEConfig, got {configs!r}")
    for i, config in enumerate(configs):
        _checks.instance(f"configs[{i}]", config, REINFORCEConfig, "a REINFORCEConfig")
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


def _train(
    config: REINFORCEConfig,
    envs: gym.vector.VectorEnv,
    n_actions: int,
    callback: Callable[[History], bool | None] | None,
    progress: bool,
) -> History:
    device = torch.device(config.device)
    obs_dim = envs.single_observation_space.shape[0]
    policy = MLPCategoricalPolicy(obs_dim, n_actions, config.hidden_sizes).to(device)
    value_net, value = None, None
    if config.value_baseline:
        value_net = mlp([obs_dim, *config.hidden_sizes, 1]).to(device)
        value = _value_fn(value_net, device)
    optimizers = [torch.optim.Adam(policy.parameters(), lr=config.lr, fused=True)]
    if value_net is not None:
        optimizers.append(torch.optim.Adam(value_net.parameters(), lr=config.value_lr, fused=True))
    collector = RolloutCollector(envs, config.seed)
    history = History(config=config, policy=policy, value=value_net)
    recent: deque[float] = deque(maxlen=TARGET_WINDOW)
    steps_per_env = config.batch_size // config.num_envs
    env_steps = 0
    bar = tqdm(total=config.max_steps, unit="step", disable=not progress, leave=False)
    start = time.perf_counter()
    while env_steps < config.max_steps:
        if config.lr_schedule == "linear":
            for optimizer, lr in zip(optimizers, (config.lr, config.value_lr), strict=False):
                optimizer.param_groups[0]["lr"] = lr * (1 - env_steps / config.max_steps)
        rollout = collector.collect(policy, steps_per_env)
        returns = rollout_returns(rollout, config.gamma, value)
        mask = torch.from_numpy(rollout.valid).to(device)
        obs = torch.from_numpy(rollout.observations).to(device)[mask]
        act = torch.from_numpy(rollout.actions).to(device)[mask]
        target = torch.as_tensor(returns, dtype=torch.float32, device=device)[mask]
        loss, grad_norm, entropy = _update(config, policy, value_net, optimizers, obs, act, target)

        env_steps += rollout.n_steps
        recent.extend(rollout.finished_returns)
        seconds = time.perf_counter() - start
        recent_mean = float(np.mean(recent)) if recent else math.nan
        history.env_steps.append(env_steps)
        history.wall_seconds.append(seconds)
        history.mean_return.append(
            float(np.mean(rollout.finished_returns)) if rollout.finished_returns else math.nan
        )
        history.recent_return.append(recent_mean)
        history.loss.append(loss)
        history.grad_norm.append(grad_norm)
        history.entropy.append(entropy)
        reached = (
            config.target_return is not None
            and len(recent) == TARGET_WINDOW
            and recent_mean >= config.target_return
        )
        if reached and history.steps_to_target is None:
            history.steps_to_target, history.seconds_to_target = env_steps, seconds
        bar.update(min(rollout.n_steps, config.max_steps - bar.n))
        bar.set_postfix(recent_return=f"{recent_mean:.1f}", refresh=False)
        if (reached and config.stop_at_target) or (callback is not None and callback(history)):
            break
    bar.close()
    return history


def _update(
    config: REINFORCEConfig,
    policy: MLPCategoricalPolicy,
    value_net: nn.Module | None,
    optimizers: list[torch.optim.Optimizer],
    obs: Tensor,
    act: Tensor,
    returns: Tensor,
) -> tuple[float, float, float]:
    """One gradient step on the policy (and the value net); returns loss, grad norm, entropy."""
    weights = returns
    if value_net is not None:
        with torch.no_grad():
            weights = returns - value_net(obs).squeeze(-1)  # the baseline gets no policy gradient
        for _ in range(config.value_epochs):
            value_loss = ((value_net(obs).squeeze(-1) - returns) ** 2).mean()
            optimizers[1].zero_grad()
            value_loss.backward()
            optimizers[1].step()
    if config.normalize_advantages and weights.numel() > 1:
        weights = (weights - weights.mean()) / (weights.std() + 1e-8)
    dist = policy.distribution(obs)
    entropy = dist.entropy().mean()
    # Its gradient is the policy-gradient estimate; its value is not a performance measure.
    loss = -(dist.log_prob(act) * weights).mean() - config.entropy_coef * entropy
    optimizers[0].zero_grad()
    loss.backward()
    max_norm = config.max_grad_norm if config.max_grad_norm is not None else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm)
    optimizers[0].step()
    return float(loss.detach()), float(grad_norm), float(entropy.detach())


def evaluate(
    policy: MLPCategoricalPolicy,
    env_id: str,
    n_episodes: int,
    seed: int,
    greedy: bool = True,
) -> np.ndarray:
    """The undiscounted returns of ``n_episodes`` episodes, [n_episodes].

    Runs the episodes side by side, environment i reset with seed ``seed + i``. ``greedy``
    takes the most probable action, a = argmax π(·|o); otherwise actions are sampled (from
    the global torch RNG). Introduced in Chapter 8.
    """
    _checks.instance("policy", policy, MLPCategoricalPolicy, "an MLPCategoricalPolicy")
    n_episodes = _checks.positive_int("n_episodes", n_episodes, limit=MAX_ENVS)
    seed = _checks.integer("seed", seed, low=0)
    _checks.boolean("greedy", greedy)
    envs = make_vector_env(env_id, n_episodes)
    try:
        _check_discrete(envs, env_id)
        _check_policy_fits(policy, envs)
        device = next(policy.parameters()).device
        obs, _ = envs.reset(seed=seed)
        returns = np.zeros(n_episodes)
        running = np.ones(n_episodes, dtype=bool)
        while running.any():
            with torch.inference_mode():
                dist = policy.distribution(torch.as_tensor(obs, device=device))
                action = dist.mode if greedy else dist.sample()
            obs, reward, terminated, truncated, _ = envs.step(action.cpu().numpy())
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
        return returns
    finally:
        envs.close()
