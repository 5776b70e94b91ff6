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
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pglib.policies import MLPCategoricalPolicy, mlp
from pglib.returns import reward_to_go

__all__ = [
    "REINFORCEConfig",
    "History",
    "Rollout",
    "RolloutCollector",
    "make_vector_env",
    "rollout_returns",
    "train",
    "evaluate",
    "save_policy",
    "load_policy",
]

#: How many finished training episodes "target reached" averages over.
TARGET_WINDOW = 20


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
        if not isinstance(self.env_id, str):
            raise ValueError(f"env_id must be a string, got {self.env_id!r}")
        try:
            gym.spec(self.env_id)
        except gym.error.Error as error:
            raise ValueError(
                f"env_id must be a registered Gymnasium environment id, got {self.env_id!r} "
                f"({error})"
            ) from None
        for name in ("num_envs", "batch_size", "max_steps", "value_epochs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.batch_size % self.num_envs:
            raise ValueError(
                f"batch_size must be a multiple of num_envs, got batch_size={self.batch_size} "
                f"and num_envs={self.num_envs}"
            )
        for name in ("lr", "value_lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise ValueError(f"{name} must be a positive number, got {getattr(self, name)!r}")
        if self.lr_schedule not in ("constant", "linear"):
            raise ValueError(
                f"lr_schedule must be 'constant' or 'linear', got {self.lr_schedule!r}"
            )
        if not (math.isfinite(self.gamma) and 0 <= self.gamma <= 1):
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma!r}")
        if not self.hidden_sizes or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in self.hidden_sizes
        ):
            raise ValueError(
                f"hidden_sizes must be a non-empty tuple of positive integers, "
                f"got {self.hidden_sizes!r}"
            )
        if not (math.isfinite(self.entropy_coef) and self.entropy_coef >= 0):
            raise ValueError(f"entropy_coef must be a number >= 0, got {self.entropy_coef!r}")
        if self.max_grad_norm is not None and not (
            math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0
        ):
            raise ValueError(
                f"max_grad_norm must be a positive number or None, got {self.max_grad_norm!r}"
            )
        if self.target_return is not None and not math.isfinite(self.target_return):
            raise ValueError(
                f"target_return must be a finite number or None, got {self.target_return!r}"
            )
        try:
            torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"device must name a torch device, got {self.device!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data


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

    @property
    def n_steps(self) -> int:
        """The number of environment steps, autoreset steps excluded."""
        return int(self.valid.sum())


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` as one vector environment.

    Uses the environment's own batched NumPy implementation when it has one (CartPole does),
    and ``SyncVectorEnv`` otherwise. Introduced in Chapter 8.
    """
    if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    spec = gym.spec(env_id)
    mode = "vector_entry_point" if spec.vector_entry_point is not None else "sync"
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode)


class RolloutCollector:
    """Steps a vector environment with a policy, keeping unfinished episodes across rollouts.

    ``collect(policy, T)`` makes T vector steps with one batched, gradient-free policy call per
    step, and masks Gymnasium's autoreset steps. Introduced in Chapter 8.
    """

    def __init__(self, envs: gym.vector.VectorEnv, seed: int) -> None:
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
        if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
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
    if not isinstance(config, REINFORCEConfig):
        raise ValueError(f"config must be a REINFORCEConfig, got {type(config).__name__}")
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
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, int) or n_episodes < 1:
        raise ValueError(f"n_episodes must be a positive integer, got {n_episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    try:
        gym.spec(env_id)
    except gym.error.Error:
        raise ValueError(
            f"env_id must be a registered Gymnasium environment id, got {env_id!r}"
        ) from None
    envs = make_vector_env(env_id, n_episodes)
    try:
        _check_discrete(envs, env_id)
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


def save_policy(policy: MLPCategoricalPolicy, path: str | Path) -> None:
    """Save an MLP categorical policy with ``torch.save``: its state dict and its sizes.

    Read it back with :func:`load_policy`. Introduced in Chapter 8.
    """
    if not isinstance(policy, MLPCategoricalPolicy):
        raise ValueError(f"policy must be an MLPCategoricalPolicy, got {type(policy).__name__}")
    linears = [m for m in policy.logits_net if isinstance(m, nn.Linear)]
    activations = {type(m).__name__ for m in policy.logits_net if not isinstance(m, nn.Linear)}
    torch.save(
        {
            "obs_dim": policy.obs_dim,
            "n_actions": policy.n_actions,
            "hidden_sizes": [m.out_features for m in linears[:-1]],
            "activation": activations.pop() if activations else "Tanh",
            "state_dict": policy.state_dict(),
        },
        path,
    )


def load_policy(path: str | Path) -> MLPCategoricalPolicy:
    """The policy saved by :func:`save_policy`, loaded with ``torch.load(weights_only=True)``
    (no pickled code runs). Introduced in Chapter 8."""
    data = torch.load(path, weights_only=True)
    policy = MLPCategoricalPolicy(
        data["obs_dim"],
        data["n_actions"],
        tuple(data["hidden_sizes"]),
        getattr(nn, data["activation"]),
    )
    policy.load_state_dict(data["state_dict"])
    return policy
