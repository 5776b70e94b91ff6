"""Finite MDPs as arrays: policy evaluation, Bellman operators, optimal control, trajectories.

A policy is a row-stochastic matrix ``pi`` of shape ``[S, A]``: ``pi[s, a]`` = π(a | s).
Functions that take a policy accept a NumPy array or a torch tensor and answer in the same
type, so later chapters can differentiate V^π with respect to a policy's parameters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from pglib import _checks

__all__ = [
    "TabularMDP",
    "Trajectory",
    "evaluate_policy",
    "evaluate_policy_iterative",
    "q_values",
    "advantages",
    "greedy_policy",
    "value_iteration",
    "policy_iteration",
    "sample_trajectory",
    "sample_trajectories",
    "trajectory_log_prob",
]

Array = TypeVar("Array", np.ndarray, torch.Tensor)

_TIE_ATOL = 1e-8  # action values closer than this count as a tie (broken toward the lower index)
#: A size guard on sampled trajectories: N x (H + 1) states at most (int64, 400 MB).
MAX_SAMPLED_STATES = 50_000_000


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP (S, A, P, R, γ) with an initial-state distribution ρ0.

    - ``P`` [S, A, S]: P[s, a, s'] = p(s' | s, a); each ``P[s, a]`` sums to 1.
    - ``R`` [S, A]: the expected immediate reward r(s, a).
    - ``gamma``: the discount factor, in [0, 1].
    - ``rho0`` [S]: the distribution of the first state.

    The arrays are stored as read-only float64 copies. Introduced in Chapter 2.
    """

    P: np.ndarray
    R: np.ndarray
    gamma: float
    rho0: np.ndarray

    def __post_init__(self) -> None:
        P = _checks.to_float64(_checks.real_array("P", self.P, ndim=3, sequences=True))
        if P.shape[0] != P.shape[2] or P.shape[0] == 0 or P.shape[1] == 0:
            raise ValueError(f"P must have shape [S, A, S] with S, A >= 1, got {P.shape}")
        n_states, n_actions = P.shape[:2]
        R = _checks.real_array("R", self.R, sequences=True)
        if tuple(R.shape) != (n_states, n_actions):
            raise ValueError(
                f"R must have shape [S, A] = {(n_states, n_actions)}, got {tuple(R.shape)}"
            )
        R = _checks.to_float64(R)
        if np.shape(self.rho0) != (n_states,):
            raise ValueError(f"rho0 must have shape [S] = {(n_states,)}, got {np.shape(self.rho0)}")
        rho0 = _checks.probability_vector("rho0", self.rho0, size=n_states)
        P = _checks.row_stochastic("P", P, rows="P[s, a, :]")
        gamma = _checks.unit_interval("gamma", self.gamma)
        for array in (P, R, rho0):
            array.setflags(write=False)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "rho0", rho0)
        object.__setattr__(self, "gamma", gamma)

    @property
    def n_states(self) -> int:
        """The number of states S."""
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        """The number of actions A."""
        return self.P.shape[1]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """States, actions and rewards of one trajectory, or of ``N`` stacked ones.

    ``states`` [T+1] (the state reached after the last action included), ``actions`` [T],
    ``rewards`` [T]; with a leading batch axis ``[N, ...]`` for :func:`sample_trajectories`.
    ``rewards[t]`` = r(states[t], actions[t]). Introduced in Chapter 2.
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray

    def __post_init__(self) -> None:
        states = _checks.index_array("states", self.states, high=np.iinfo(np.int64).max)
        actions = _checks.index_array("actions", self.actions, high=np.iinfo(np.int64).max)
        rewards = _checks.real_array("rewards", self.rewards, sequences=True)
        if (
            states.ndim < 1
            or states.shape[:-1] != actions.shape[:-1]
            or states.shape[-1] != actions.shape[-1] + 1
            or tuple(rewards.shape) != actions.shape
        ):
            raise ValueError(
                "a trajectory needs states [..., T+1], actions [..., T] and rewards [..., T], "
                f"got shapes {states.shape}, {actions.shape} and {tuple(rewards.shape)}"
            )


def _check_mdp(mdp: object) -> None:
    _checks.instance("mdp", mdp, TabularMDP, "a TabularMDP")


def _check_policy(mdp: TabularMDP, pi: Array) -> None:
    """``pi`` [S, A] is a row-stochastic matrix for ``mdp`` (a float tensor, or a NumPy array)."""
    _check_mdp(mdp)
    pi = _checks.real_array(
        "pi",
        pi,
        shape=(mdp.n_states, mdp.n_actions),
        integers=not isinstance(pi, torch.Tensor),  # an integer tensor would cast P and R
    )
    _checks.row_stochastic("pi", pi, rows="pi[s, :]")


def _array_like(x: np.ndarray, like: Array) -> Array:
    """The MDP array ``x`` in the type, dtype and device of ``like``."""
    if isinstance(like, torch.Tensor):
        return torch.as_tensor(np.array(x), dtype=like.dtype, device=like.device)  # a writable copy
    return x


def _policy_matrices(mdp: TabularMDP, pi: Array) -> tuple[Array, Array]:
    """P_π [S, S] with P_π[s, s'] = Σ_a π(a|s) p(s'|s,a), and r_π [S] = Σ_a π(a|s) r(s,a)."""
    lib = torch if isinstance(pi, torch.Tensor) else np
    P = _array_like(mdp.P, pi)
    R = _array_like(mdp.R, pi)
    return lib.einsum("sa,sat->st", pi, P), (pi * R).sum(1)


def evaluate_policy(mdp: TabularMDP, pi: Array) -> Array:
    """V^π [S] by solving the Bellman expectation equation (I − γ P_π) V = r_π.

    A linear solve, not a matrix inverse. With γ = 1 the equation only has a unique solution
    when every state reaches, with probability 1, an absorbing state whose reward is 0 under
    π; those states get V = 0 and the rest are solved for. Otherwise a ``ValueError`` says
    the system is singular. Introduced in Chapter 3.
    """
    _check_policy(mdp, pi)
    lib = torch if isinstance(pi, torch.Tensor) else np
    P_pi, r_pi = _policy_matrices(mdp, pi)
    n = mdp.n_states
    if mdp.gamma < 1:
        return lib.linalg.solve(_eye(n, P_pi) - mdp.gamma * P_pi, r_pi)
    P_np = P_pi.detach().cpu().numpy() if lib is torch else P_pi
    r_np = r_pi.detach().cpu().numpy() if lib is torch else r_pi
    absorbing = np.isclose(np.diag(P_np), 1.0) & np.isclose(r_np, 0.0)
    rest = np.flatnonzero(~absorbing)
    system = np.eye(rest.size) - P_np[np.ix_(rest, rest)]
    if rest.size and np.linalg.matrix_rank(system) < rest.size:
        raise ValueError(
            "with gamma = 1 the Bellman equation is singular for this policy: some states never "
            "reach an absorbing zero-reward state, so their return is infinite or undefined; "
            "use gamma < 1"
        )
    V = 0.0 * r_pi
    if rest.size:
        index = torch.as_tensor(rest) if lib is torch else rest
        sub = P_pi[index][:, index]
        V_rest = lib.linalg.solve(_eye(rest.size, P_pi) - sub, r_pi[index])
        V = V.index_put((index,), V_rest) if lib is torch else _put(V, rest, V_rest)
    return V


def _eye(n: int, like: Array) -> Array:
    return _array_like(np.eye(n), like)


def _put(V: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = V.copy()
    out[index] = values
    return out


def evaluate_policy_iterative(
    mdp: TabularMDP, pi: np.ndarray, *, tol: float = 1e-12, max_sweeps: int = 100_000
) -> tuple[np.ndarray, int]:
    """V^π [S] by repeated Bellman backups V ← r_π + γ P_π V, from V = 0; and the sweep count.

    Stops when the largest change of a sweep, δ, guarantees ‖V − V^π‖∞ ≤ γδ/(1−γ) ≤ ``tol``
    (for γ = 1: when δ ≤ ``tol``). Raises ``RuntimeError`` after ``max_sweeps`` sweeps.
    Introduced in Chapter 3.
    """
    _check_policy(mdp, pi)
    tol = _checks.real("tol", tol, low=0.0, low_open=True)
    max_sweeps = _checks.positive_int("max_sweeps", max_sweeps)
    P_pi, r_pi = _policy_matrices(mdp, np.asarray(pi, dtype=np.float64))
    gamma = mdp.gamma
    threshold = tol * (1 - gamma) / gamma if 0 < gamma < 1 else tol
    V = np.zeros(mdp.n_states)
    for sweep in range(1, max_sweeps + 1):
        V_new = r_pi + gamma * P_pi @ V
        change = np.abs(V_new - V).max()
        V = V_new
        if change <= threshold:
            return V, sweep
    raise RuntimeError(
        f"policy evaluation did not converge in {max_sweeps} sweeps (last change {change:.3g}); "
        "with gamma = 1 every state must reach an absorbing zero-reward state"
    )


def q_values(mdp: TabularMDP, V: Array) -> Array:
    """Q [S, A] from state values V [S]: Q(s, a) = r(s, a) + γ Σ_s' p(s'|s,a) V(s').

    With V = V^π this is Q^π; with V = V* it is Q*. Introduced in Chapter 3.
    """
    if tuple(V.shape) != (mdp.n_states,):
        raise ValueError(f"V must have shape [S] = ({mdp.n_states},), got {tuple(V.shape)}")
    lib = torch if isinstance(V, torch.Tensor) else np
    return _array_like(mdp.R, V) + mdp.gamma * lib.einsum("sat,t->sa", _array_like(mdp.P, V), V)


def _check_q_values(mdp: TabularMDP, V: Array) -> None:
    _check_mdp(mdp)
    if isinstance(V, (np.ndarray, torch.Tensor)) and tuple(V.shape) != (mdp.n_states,):
        raise ValueError(f"V must have shape [S] = ({mdp.n_states},), got {tuple(V.shape)}")
    # An integer tensor would cast R and P to integers; an integer NumPy array is promoted.
    _checks.real_array("V", V, shape=(mdp.n_states,), integers=not isinstance(V, torch.Tensor))


# Chapter 3 prints q_values's source; its arguments are checked by this wrapper.
q_values = _checks.checked_by(_check_q_values)(q_values)


def advantages(mdp: TabularMDP, pi: Array) -> Array:
    """The advantage A^π [S, A] = Q^π(s, a) − V^π(s). Introduced in Chapter 3."""
    V = evaluate_policy(mdp, pi)
    return q_values(mdp, V) - V[:, None]


def greedy_policy(Q: np.ndarray) -> np.ndarray:
    """A deterministic policy [S, A] (one-hot rows) that picks argmax_a Q[s, a].

    Tie rule: in each state s, every action a with Q[s, a] >= max_b Q[s, b] − 1e-8 (an
    absolute tolerance) counts as best, and the lowest action index among them wins. So
    Q[s] = [1, 1, 0] picks action 0, and so does [1 − 1e-9, 1, 0]. This makes equal values
    computed in different orders (and so differing by rounding) give the same policy.
    ``Q`` is a NumPy array, a torch tensor or a nested list of finite real numbers.
    Introduced in Chapter 3.
    """
    Q = _checks.to_float64(
        _checks.real_array("Q", Q, shape=("S", "A"), nonempty=True, sequences=True)
    )
    best = np.argmax(Q >= Q.max(axis=1, keepdims=True) - _TIE_ATOL, axis=1)
    return np.eye(Q.shape[1])[best]


def value_iteration(
    mdp: TabularMDP, tol: float = 1e-10, *, max_sweeps: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """V* [S] and a greedy optimal policy [S, A], by V ← max_a [r(s,a) + γ Σ p(s'|s,a) V(s')].

    Stops when ‖V − V*‖∞ ≤ ``tol`` is guaranteed (see :func:`evaluate_policy_iterative`).
    Raises ``RuntimeError`` after ``max_sweeps`` sweeps. Introduced in Chapter 3.
    """
    if not (tol > 0 and math.isfinite(tol)):
        raise ValueError(f"tol must be a positive number, got {tol!r}")
    gamma = mdp.gamma
    threshold = tol * (1 - gamma) / gamma if 0 < gamma < 1 else tol
    V = np.zeros(mdp.n_states)
    for _ in range(max_sweeps):
        V_new = q_values(mdp, V).max(axis=1)
        change = np.abs(V_new - V).max()
        V = V_new
        if change <= threshold:
            return V, greedy_policy(q_values(mdp, V))
    raise RuntimeError(
        f"value iteration did not converge in {max_sweeps} sweeps (last change {change:.3g})"
    )


def _check_value_iteration(mdp: TabularMDP, tol: float, max_sweeps: int) -> None:
    _check_mdp(mdp)
    _checks.real("tol", tol, low=0.0, low_open=True)
    _checks.positive_int("max_sweeps", max_sweeps)


# Chapter 3 prints value_iteration's source; its arguments are checked by this wrapper.
value_iteration = _checks.checked_by(_check_value_iteration)(value_iteration)


def policy_iteration(
    mdp: TabularMDP, *, max_iterations: int = 1_000
) -> tuple[np.ndarray, np.ndarray]:
    """V* [S] and an optimal deterministic policy [S, A], by policy iteration.

    Start from the policy greedy for the immediate reward; evaluate it exactly
    (:func:`evaluate_policy`); switch each state to a greedy action unless its current action
    is already within the tie tolerance of the best. Stops when no state switches.
    Introduced in Chapter 3.
    """
    _check_mdp(mdp)
    max_iterations = _checks.positive_int("max_iterations", max_iterations)
    pi = greedy_policy(mdp.R)
    for _ in range(max_iterations):
        V = evaluate_policy(mdp, pi)
        Q = q_values(mdp, V)
        current = (Q * pi).sum(axis=1)
        improvable = current < Q.max(axis=1) - _TIE_ATOL
        if not improvable.any():
            return V, pi
        pi = np.where(improvable[:, None], greedy_policy(Q), pi)
    raise RuntimeError(f"policy iteration did not converge in {max_iterations} iterations")


def _sample_rows(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``probs`` [N, K], by inverting each row's cumulative sum."""
    cumulative = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cumulative[:, -1]
    return np.minimum((cumulative <= u[:, None]).sum(axis=1), probs.shape[1] - 1)


def sample_trajectories(
    mdp: TabularMDP, pi: np.ndarray, horizon: int, n: int, rng: np.random.Generator
) -> Trajectory:
    """``n`` independent trajectories of ``horizon`` steps under π, sampled side by side.

    s_0 ~ ρ0, a_t ~ π(·|s_t), r_t = r(s_t, a_t), s_{t+1} ~ p(·|s_t, a_t). Returns a
    :class:`Trajectory` with ``states`` [n, horizon+1], ``actions`` and ``rewards``
    [n, horizon]. Introduced in Chapter 2.
    """
    _check_policy(mdp, pi)
    pi = _checks.to_float64(pi)
    horizon = _checks.integer("horizon", horizon, low=0)
    n = _checks.positive_int("n", n)
    _checks.positive_int("n * (horizon + 1)", n * (horizon + 1), limit=MAX_SAMPLED_STATES)
    _checks.instance("rng", rng, np.random.Generator, "a numpy.random.Generator")
    states = np.empty((n, horizon + 1), dtype=np.int64)
    actions = np.empty((n, horizon), dtype=np.int64)
    rewards = np.empty((n, horizon))
    states[:, 0] = _sample_rows(np.broadcast_to(mdp.rho0, (n, mdp.n_states)), rng)
    for t in range(horizon):
        s = states[:, t]
        actions[:, t] = _sample_rows(pi[s], rng)
        rewards[:, t] = mdp.R[s, actions[:, t]]
        states[:, t + 1] = _sample_rows(mdp.P[s, actions[:, t]], rng)
    return Trajectory(states=states, actions=actions, rewards=rewards)


def sample_trajectory(
    mdp: TabularMDP, pi: np.ndarray, horizon: int, rng: np.random.Generator
) -> Trajectory:
    """One trajectory of ``horizon`` steps under π: ``states`` [horizon+1], ``actions`` and
    ``rewards`` [horizon]. See :func:`sample_trajectories`. Introduced in Chapter 2."""
    batch = sample_trajectories(mdp, pi, horizon, 1, rng)
    return Trajectory(states=batch.states[0], actions=batch.actions[0], rewards=batch.rewards[0])


def trajectory_log_prob(mdp: TabularMDP, pi: Array, traj: Trajectory) -> Array | float:
    """log p(τ) = log ρ0(s_0) + Σ_t [log π(a_t|s_t) + log p(s_{t+1}|s_t, a_t)].

    ``traj`` holds one trajectory (a float, or a 0-d tensor when ``pi`` is a tensor) or a batch
    [N, ...] (an array [N]). An impossible trajectory has log-probability −inf.
    Introduced in Chapter 2.
    """
    _check_policy(mdp, pi)
    _checks.instance("traj", traj, Trajectory, "a Trajectory")
    states = _checks.index_array("traj.states", traj.states, high=mdp.n_states)
    actions = _checks.index_array("traj.actions", traj.actions, high=mdp.n_actions)
    with np.errstate(divide="ignore"):
        log_dynamics = np.log(mdp.rho0[states[..., 0]]) + np.log(
            mdp.P[states[..., :-1], actions, states[..., 1:]]
        ).sum(axis=-1)
    if isinstance(pi, torch.Tensor):
        log_policy = torch.log(pi[torch.as_tensor(states[..., :-1]), torch.as_tensor(actions)])
        return log_policy.sum(-1) + torch.as_tensor(log_dynamics, dtype=pi.dtype)
    with np.errstate(divide="ignore"):
        total = np.log(pi[states[..., :-1], actions]).sum(axis=-1) + log_dynamics
    return float(total) if total.ndim == 0 else total
