"""Vectorised Gymnasium rollouts: fixed-length rollouts, complete episodes, and evaluation.

Two ways to collect experience from ``num_envs`` environments stepped side by side, with one
batched policy call per step:

- :class:`RolloutCollector` makes a fixed number of vector steps and cuts the episodes that are
  still running at the end (actor-critic, Chapter 9, bootstraps at those cuts);
- :class:`EpisodeCollector` steps until enough episodes have *finished*, returns only complete
  episodes, and carries the running ones over to the next call (REINFORCE, Chapter 8).

Episode ends follow Gymnasium 1.x. Its vector environments reset a finished sub-environment
*on the next step* (``AutoresetMode.NEXT_STEP``): the step after ``terminated`` or
``truncated`` ignores the action and returns the first observation of the next episode,
with reward 0 and both flags false. Such autoreset steps are not transitions of the MDP:
both collectors mask them, and neither counts them as environment steps.

Introduced in Chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from pglib import _checks
from pglib.policies import DiagonalGaussianPolicy, MLPCategoricalPolicy

__all__ = [
    "Rollout",
    "RolloutCollector",
    "EpisodeBatch",
    "EpisodeCollector",
    "make_vector_env",
    "make_policy",
    "evaluate",
]

#: A policy that can act in a vector environment: categorical for Discrete actions, diagonal
#: Gaussian for Box actions.
Policy = MLPCategoricalPolicy | DiagonalGaussianPolicy

#: Size guards: more environments side by side, or more steps, than any run here needs.
MAX_ENVS = 1_024
MAX_ENV_STEPS = 1_000_000_000


def check_env_id(env_id: object) -> None:
    _checks.instance("env_id", env_id, str, "a Gymnasium environment id (a string)")
    try:
        gym.spec(env_id)
    except gym.error.Error as error:
        raise ValueError(
            f"env_id must be a registered Gymnasium environment id, got {env_id!r} ({error})"
        ) from None


@dataclass(frozen=True, eq=False)
class Rollout:
    """T vector steps of N environments, time axis first.

    - ``observations`` [T, N, obs_dim]: o_t, the observation each action was chosen on.
    - ``actions`` [T, N] integers for a Discrete action space, or [T, N, act_dim] floats for a
      Box one: the actions the policy sampled, before any clipping to the space's bounds.
    - ``rewards`` [T, N] (float64).
    - ``terminated``, ``truncated`` [T, N]: the episode ended after step t.
    - ``next_observations`` [T, N, obs_dim]: o_{t+1}; at a truncated step it is the real last
      observation (Gymnasium's NEXT_STEP autoreset returns it there, and resets one step later).
    - ``valid`` [T, N]: False at autoreset steps, which belong to no episode.
    - ``finished_returns``: the undiscounted returns of the episodes that ended in this rollout,
      in the order they ended.

    Introduced in Chapter 9.
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
        _check_transitions(self, ndim=2)
        _checks.bool_flags("valid", self.valid, tuple(self.rewards.shape))
        for value in self.finished_returns:
            _checks.real("every finished return", value)

    @property
    def n_steps(self) -> int:
        """The number of environment steps, autoreset steps excluded."""
        return int(self.valid.sum())


def _check_transitions(batch: Rollout | EpisodeBatch, ndim: int) -> tuple[int, ...]:
    """Check the fields a :class:`Rollout` ([T, N]) and an :class:`EpisodeBatch` ([n]) share;
    returns the shape of their rewards."""
    rewards = _checks.real_array("rewards", batch.rewards, ndim=ndim, nonempty=True)
    shape = tuple(rewards.shape)
    for name in ("terminated", "truncated"):
        _checks.bool_flags(name, getattr(batch, name), shape)
    if np.ndim(batch.actions) == ndim + 1:  # continuous actions [..., act_dim]
        _checks.real_array("actions", batch.actions)
        action_shape = tuple(np.shape(batch.actions)[:ndim])
    else:
        _checks.index_array("actions", batch.actions, high=np.iinfo(np.int64).max)
        action_shape = tuple(np.shape(batch.actions))
    if action_shape != shape:
        raise ValueError(
            f"actions must have shape {shape} (discrete) or {shape} + (act_dim,) (continuous), "
            f"got {np.shape(batch.actions)}"
        )
    for name in ("observations", "next_observations"):
        obs = _checks.real_array(name, getattr(batch, name))
        if tuple(obs.shape[:ndim]) != shape:
            raise ValueError(f"{name} must have shape {shape} + obs_shape, got {obs.shape}")
    return shape


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` as one vector environment.

    Uses the environment's own batched NumPy implementation when it has one (CartPole does),
    and ``SyncVectorEnv`` otherwise. Introduced in Chapter 8.
    """
    check_env_id(env_id)
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
    step, and masks Gymnasium's autoreset steps. In a Box action space the sampled action is
    clipped to the bounds before the environment sees it, and the rollout keeps the sampled
    action, so that its log-probability is the one the policy gave it. Introduced in Chapter 9.
    """

    def __init__(self, envs: gym.vector.VectorEnv, seed: int) -> None:
        _checks.instance("envs", envs, gym.vector.VectorEnv, "a gymnasium VectorEnv")
        seed = _checks.integer("seed", seed, low=0)
        _check_next_step_autoreset(envs)
        self.envs = envs
        self.obs, _ = envs.reset(seed=seed)
        self.after_end = np.zeros(envs.num_envs, dtype=bool)  # the next step is an autoreset
        self.episode_return = np.zeros(envs.num_envs)

    def collect(self, policy: Policy, n_steps: int) -> Rollout:
        """T = ``n_steps`` vector steps; returns them as a :class:`Rollout`."""
        check_policy_fits(policy, self.envs)
        n_steps = _checks.positive_int("n_steps", n_steps, limit=MAX_ENV_STEPS // MAX_ENVS)
        n_envs = self.envs.num_envs
        obs_shape = self.obs.shape[1:]
        observations = np.empty((n_steps, n_envs, *obs_shape), dtype=np.float32)
        next_observations = np.empty_like(observations)
        space = self.envs.single_action_space
        if isinstance(space, gym.spaces.Box):
            actions = np.empty((n_steps, n_envs, *space.shape), dtype=np.float32)
        else:
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
            self.obs, reward, term, trunc, _ = self.envs.step(_in_bounds(actions[t], space))
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


@dataclass(frozen=True, eq=False)
class EpisodeBatch:
    """Complete episodes, concatenated in the order they ended (time axis first, flat).

    - ``observations`` [n, obs_dim], ``actions`` [n], ``rewards`` [n] (float64).
    - ``terminated``, ``truncated`` [n]: the episode ended after step t; one of them is set at
      the last step of every episode and at no other step.
    - ``next_observations`` [n, obs_dim]: o_{t+1}; at a truncation, the real last observation.
    - ``returns``: the undiscounted return of each episode; ``lengths``: its number of steps.
    - ``env_steps``: the environment steps the collection made, including the steps of
      episodes that were still running when it stopped (they carry over to the next batch).
    - ``carried_steps``: the steps of these episodes that an earlier collection made, so
      under an earlier policy.

    Introduced in Chapter 8.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_observations: np.ndarray
    returns: list[float]
    lengths: list[int]
    env_steps: int
    carried_steps: int

    def __post_init__(self) -> None:
        shape = _check_transitions(self, ndim=1)
        for value in self.returns:
            _checks.real("every episode return", value)
        ends = np.flatnonzero(self.terminated | self.truncated) + 1
        if len(self.lengths) != len(self.returns) or list(np.diff(ends, prepend=0)) != list(
            self.lengths
        ):
            raise ValueError(
                "lengths must give the steps between consecutive episode ends, one per return, "
                f"got lengths {self.lengths} for episode ends after steps {ends.tolist()}"
            )
        _checks.integer("env_steps", self.env_steps, low=0)
        _checks.integer("carried_steps", self.carried_steps, low=0, high=shape[0])

    @property
    def n_steps(self) -> int:
        """The number of steps in the complete episodes."""
        return int(self.rewards.shape[0])


class EpisodeCollector:
    """Steps a vector environment until enough episodes are *complete*; never cuts one.

    ``collect(policy, min_episodes)`` steps all environments, with one batched, gradient-free
    policy call per step, until at least ``min_episodes`` episodes have ended since the last
    call, and returns those complete episodes as an :class:`EpisodeBatch` (more than
    ``min_episodes`` when several end on the same step). Episodes still running stay in the
    collector and continue in the next call, so every step taken ends up in exactly one
    episode of some batch. Autoreset steps are masked.

    A carried-over episode began under an earlier policy: its first steps were sampled before
    the last update. The fewer episodes per call, relative to ``num_envs``, the larger that
    share; REINFORCE's gradient treats those steps as if the current policy had taken them.
    Introduced in Chapter 8.
    """

    def __init__(self, envs: gym.vector.VectorEnv, seed: int) -> None:
        _checks.instance("envs", envs, gym.vector.VectorEnv, "a gymnasium VectorEnv")
        seed = _checks.integer("seed", seed, low=0)
        _check_next_step_autoreset(envs)
        self.envs = envs
        self.obs, _ = envs.reset(seed=seed)
        self.after_end = np.zeros(envs.num_envs, dtype=bool)  # the next step is an autoreset
        # The running episode of each environment: lists of o_t, a_t, r_t, o_{t+1}.
        self.running: list[tuple[list, list, list, list]] = [
            ([], [], [], []) for _ in range(envs.num_envs)
        ]

    def collect(self, policy: MLPCategoricalPolicy, min_episodes: int) -> EpisodeBatch:
        """Step until ``min_episodes`` episodes are complete; returns them all."""
        _checks.instance(
            "policy", policy, MLPCategoricalPolicy, "an MLPCategoricalPolicy (discrete actions)"
        )
        check_policy_fits(policy, self.envs)
        min_episodes = _checks.positive_int("min_episodes", min_episodes, limit=MAX_ENV_STEPS)
        done: list[tuple[list, list, list, list, bool]] = []
        env_steps = carried_steps = 0
        # Steps each environment's running episode had before this call: sampled earlier.
        carried = [len(episode[2]) for episode in self.running]
        while len(done) < min_episodes:
            obs = np.asarray(self.obs, dtype=np.float32)
            with torch.inference_mode():  # one batched call for all N environments
                actions = policy.sample(torch.from_numpy(obs)).cpu().numpy()
            self.obs, rewards, terminated, truncated, _ = self.envs.step(actions)
            for i in np.flatnonzero(~self.after_end):  # autoreset steps belong to no episode
                episode = self.running[i]
                for column, value in zip(
                    episode, (obs[i], actions[i], rewards[i], self.obs[i]), strict=True
                ):
                    column.append(value)
                env_steps += 1
            ended = (terminated | truncated) & ~self.after_end
            for i in np.flatnonzero(ended):
                done.append((*self.running[i], bool(terminated[i])))
                self.running[i] = ([], [], [], [])
                carried_steps += carried[i]
                carried[i] = 0
            self.after_end = ended
        lengths = [len(episode[2]) for episode in done]
        last = np.cumsum(lengths) - 1
        term = np.zeros(sum(lengths), dtype=bool)
        trunc = np.zeros(sum(lengths), dtype=bool)
        term[last] = [episode[4] for episode in done]
        trunc[last] = ~term[last]
        return EpisodeBatch(
            observations=np.stack([o for episode in done for o in episode[0]]),
            actions=np.array([a for episode in done for a in episode[1]], dtype=np.int64),
            rewards=np.array([r for episode in done for r in episode[2]], dtype=np.float64),
            terminated=term,
            truncated=trunc,
            next_observations=np.stack([o for episode in done for o in episode[3]]).astype(
                np.float32
            ),
            returns=[float(np.sum(episode[2])) for episode in done],
            lengths=lengths,
            env_steps=env_steps,
            carried_steps=carried_steps,
        )


def _in_bounds(actions: np.ndarray, space: gym.Space) -> np.ndarray:
    """The actions an environment receives: clipped to a Box space's bounds (a Gaussian policy
    samples on the whole real line), unchanged for a Discrete space."""
    if isinstance(space, gym.spaces.Box):
        return np.clip(actions, space.low, space.high)
    return actions


def _check_next_step_autoreset(envs: gym.vector.VectorEnv) -> None:
    mode = envs.metadata.get("autoreset_mode", gym.vector.AutoresetMode.NEXT_STEP)
    if mode != gym.vector.AutoresetMode.NEXT_STEP:
        raise ValueError(
            f"the vector environment must use Gymnasium's default NEXT_STEP autoreset, got {mode}"
        )


def check_policy_fits(policy: object, envs: gym.vector.VectorEnv) -> None:
    """``policy`` fits the observations and actions of ``envs``: an MLP categorical policy
    for a Discrete action space, a diagonal Gaussian one for a Box."""
    _checks.instance(
        "policy",
        policy,
        (MLPCategoricalPolicy, DiagonalGaussianPolicy),
        "an MLPCategoricalPolicy or a DiagonalGaussianPolicy",
    )
    obs_shape = envs.single_observation_space.shape
    space = envs.single_action_space
    if isinstance(policy, MLPCategoricalPolicy):
        fits = isinstance(space, gym.spaces.Discrete) and int(space.n) == policy.n_actions
        described = f"n_actions={policy.n_actions}"
    else:
        fits = isinstance(space, gym.spaces.Box) and space.shape == (policy.act_dim,)
        described = f"act_dim={policy.act_dim}"
    if obs_shape != (policy.obs_dim,) or not fits:
        raise ValueError(
            f"the policy ({type(policy).__name__}, obs_dim={policy.obs_dim}, {described}) does "
            f"not fit the environment (observations {obs_shape}, actions {space})"
        )


def check_flat_observations(envs: gym.vector.VectorEnv, env_id: str) -> int:
    """The observation size of ``envs``, whose observations must be a flat Box [obs_dim]."""
    obs_space = envs.single_observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(
            f"the environment needs flat Box observations [obs_dim]; {env_id} has {obs_space}"
        )
    return int(obs_space.shape[0])


def make_policy(
    envs: gym.vector.VectorEnv,
    env_id: str,
    hidden_sizes: tuple[int, ...],
    log_std_init: float,
) -> Policy:
    """A fresh policy for ``envs``: an :class:`MLPCategoricalPolicy` for a Discrete action
    space, a :class:`DiagonalGaussianPolicy` with log σ = ``log_std_init`` for a flat Box
    one. Introduced in Chapter 10.
    """
    _checks.instance("envs", envs, gym.vector.VectorEnv, "a gymnasium VectorEnv")
    log_std_init = _checks.real("log_std_init", log_std_init)
    obs_dim = check_flat_observations(envs, env_id)
    space = envs.single_action_space
    if isinstance(space, gym.spaces.Discrete):
        return MLPCategoricalPolicy(obs_dim, int(space.n), hidden_sizes)
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        if not (np.isfinite(space.low).all() and np.isfinite(space.high).all()):
            raise ValueError(
                f"{env_id}'s actions are unbounded ({space}); the trainers clip a Gaussian's "
                "samples to finite bounds"
            )
        return DiagonalGaussianPolicy(obs_dim, space.shape[0], hidden_sizes, log_std_init)
    raise ValueError(
        f"the trainers need a Discrete or a flat Box action space; {env_id} has {space}"
    )


def check_discrete(envs: gym.vector.VectorEnv, env_id: str) -> int:
    """The number of actions of ``envs``, whose action space must be Discrete."""
    space = envs.single_action_space
    if not isinstance(space, gym.spaces.Discrete):
        raise ValueError(
            "REINFORCE here uses a categorical policy, so the environment needs a Discrete "
            f"action space; {env_id} has {space} (A2C and PPO also train Gaussian policies)"
        )
    check_flat_observations(envs, env_id)
    return int(space.n)


def evaluate(
    policy: Policy,
    env_id: str,
    n_episodes: int,
    seed: int,
    greedy: bool = True,
) -> np.ndarray:
    """The undiscounted returns of ``n_episodes`` episodes, [n_episodes].

    Runs the episodes side by side, environment i reset with seed ``seed + i``. ``greedy``
    takes the most probable action (argmax π(·|o), or a Gaussian's mean μ_θ(o)); otherwise
    actions are sampled (from the global torch RNG). Continuous actions are clipped to the
    action space's bounds, as in training. Introduced in Chapter 8.
    """
    _checks.instance(
        "policy",
        policy,
        (MLPCategoricalPolicy, DiagonalGaussianPolicy),
        "an MLPCategoricalPolicy or a DiagonalGaussianPolicy",
    )
    n_episodes = _checks.positive_int("n_episodes", n_episodes, limit=MAX_ENVS)
    seed = _checks.integer("seed", seed, low=0)
    _checks.boolean("greedy", greedy)
    envs = make_vector_env(env_id, n_episodes)
    try:
        check_flat_observations(envs, env_id)
        check_policy_fits(policy, envs)
        device = next(policy.parameters()).device
        obs, _ = envs.reset(seed=seed)
        returns = np.zeros(n_episodes)
        running = np.ones(n_episodes, dtype=bool)
        while running.any():
            with torch.inference_mode():
                dist = policy.distribution(torch.as_tensor(obs, device=device))
                action = dist.mode if greedy else dist.sample()
            action = _in_bounds(action.cpu().numpy(), envs.single_action_space)
            obs, reward, terminated, truncated, _ = envs.step(action)
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
        return returns
    finally:
        envs.close()
