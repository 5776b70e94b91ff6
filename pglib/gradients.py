"""The policy gradient of a tabular softmax policy: exact, by the theorem, and sampled.

For a finite MDP and π_θ(a|s) = softmax(θ[s])_a with θ of shape [S, A], the objective is
J(θ) = Σ_s ρ0(s) V^π(s). This module computes ∇J three ways:

- :func:`exact_policy_gradient`: autograd through the Bellman linear solve for V^π;
- :func:`policy_gradient_theorem`: Σ_s d^π(s) Σ_a ∇π(a|s) Q^π(s, a), with d^π exact;
- :func:`sample_gradient_estimates`: one Monte-Carlo estimate per sampled trajectory,
  g(τ) = Σ_{t<H} ∇ log π(a_t|s_t) w_t, with the per-step weights w_t of :data:`Weighting`;

and measures the estimates (mean, standard errors, total variance, relative error).
Every result is float64. Gradients are torch tensors of the shape of θ, [S, A].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Categorical

from pglib import _checks
from pglib.mdp import (
    TabularMDP,
    Trajectory,
    _check_mdp,
    _check_policy,
    evaluate_policy,
    q_values,
    sample_trajectories,
)
from pglib.policies import TabularSoftmaxPolicy
from pglib.returns import reward_to_go

__all__ = [
    "Weighting",
    "WEIGHTINGS",
    "exact_policy_gradient",
    "discounted_visitation",
    "visitation_counts",
    "policy_gradient_theorem",
    "horizon_for_tolerance",
    "estimator_weights",
    "trajectory_gradients",
    "sample_gradient_estimates",
    "optimal_constant_baseline",
    "GradientStatistics",
    "gradient_statistics",
    "relative_error",
    "relative_error_curve",
    "bias_in_standard_errors",
    "angle_degrees",
]

#: The per-step weight Φ_t that multiplies ∇ log π(a_t|s_t) in a Monte-Carlo estimator.
Weighting = Literal["return", "reward_to_go", "reward_to_go_baseline", "q", "advantage"]
#: Every :data:`Weighting`, in the order the book introduces them.
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
#: A size guard on horizons: a loop of more steps would run for minutes.
MAX_HORIZON = 1_000_000
#: A size guard on the number of sampled trajectories (each keeps an [S, A] gradient).
MAX_TRAJECTORIES = 1_000_000


def _checked_logits(mdp: TabularMDP, logits: Tensor | np.ndarray) -> Tensor:
    """``logits`` as a detached float64 tensor of shape [S, A] for ``mdp``, or a ValueError."""
    _check_mdp(mdp)
    expected = (mdp.n_states, mdp.n_actions)
    if isinstance(logits, (Tensor, np.ndarray)) and tuple(logits.shape) != expected:
        raise ValueError(
            f"logits must have shape [S, A] = {expected} for this MDP, got {tuple(logits.shape)}"
        )
    logits = _checks.real_array("logits", logits, shape=expected)
    return torch.as_tensor(logits, dtype=torch.float64).detach()


def _check_discounted(mdp: TabularMDP, what: str) -> None:
    _check_mdp(mdp)
    if mdp.gamma >= 1:
        raise ValueError(
            f"{what} needs gamma < 1 (an infinite horizon with gamma = 1 has no finite J), "
            f"got gamma = {mdp.gamma}"
        )


def _softmax_np(logits: Tensor) -> np.ndarray:
    return torch.softmax(logits, dim=-1).numpy()


def exact_policy_gradient(mdp: TabularMDP, logits: Tensor | np.ndarray) -> tuple[float, Tensor]:
    """(J(θ), ∇J(θ)) for the tabular softmax policy with ``logits`` θ [S, A]; float64.

    J(θ) = ρ0ᵀ V^π with V^π = (I − γ P_π)⁻¹ r_π from :func:`pglib.mdp.evaluate_policy`
    (a linear solve); the gradient [S, A] is autograd through that solve. Needs γ < 1.
    Introduced in Chapter 4.
    """
    _check_discounted(mdp, "exact_policy_gradient")
    policy = TabularSoftmaxPolicy(_checked_logits(mdp, logits))
    V = evaluate_policy(mdp, policy.probs())
    J = torch.tensor(mdp.rho0) @ V  # a copy: the MDP arrays are read-only
    (grad,) = torch.autograd.grad(J, policy.logits)
    return float(J.detach()), grad


def _state_transitions(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """P_π [S, S] with P_π[s, s'] = Σ_a π(a|s) p(s'|s, a), after checking ``pi``."""
    pi = np.asarray(pi) if isinstance(pi, (list, tuple)) else pi
    _check_policy(mdp, pi)
    return np.einsum("sa,sat->st", _checks.to_float64(pi), mdp.P)


def discounted_visitation(mdp: TabularMDP, pi: np.ndarray) -> np.ndarray:
    """d^π [S] with d^π(s) = Σ_t γ^t Pr(s_t = s | s_0 ~ ρ0, π); it sums to 1/(1 − γ).

    Solves (I − γ P_π)ᵀ d = ρ0. Needs γ < 1. Introduced in Chapter 4.
    """
    _check_discounted(mdp, "discounted_visitation")
    P_pi = _state_transitions(mdp, pi)
    return np.linalg.solve((np.eye(mdp.n_states) - mdp.gamma * P_pi).T, mdp.rho0)


def visitation_counts(mdp: TabularMDP, pi: np.ndarray, horizon: int) -> np.ndarray:
    """c_H [S] with c_H(s) = Σ_{t<H} Pr(s_t = s): undiscounted, it sums to H.

    The state weighting of an estimator that leaves out γ^t. Introduced in Chapter 4.
    """
    _check_mdp(mdp)
    horizon = _check_horizon(horizon)
    P_pi = _state_transitions(mdp, pi)
    p_t, counts = mdp.rho0.copy(), np.zeros(mdp.n_states)
    for _ in range(horizon):
        counts += p_t
        p_t = p_t @ P_pi
    return counts


def policy_gradient_theorem(
    mdp: TabularMDP, logits: Tensor | np.ndarray, *, state_weights: np.ndarray | None = None
) -> Tensor:
    """Σ_s d(s) Σ_a ∇_θ π(a|s) Q^π(s, a) for the tabular softmax policy; [S, A], float64.

    With ``state_weights`` = None, d = d^π (:func:`discounted_visitation`) and the result is
    ∇J (the policy gradient theorem). Another weighting [S], such as
    :func:`visitation_counts`, gives the expectation of an estimator that weights states
    differently. For softmax logits, ∂π(a|s)/∂θ[s, b] = π(a|s)(1[a = b] − π(b|s)).
    Needs γ < 1. Introduced in Chapter 4.
    """
    _check_discounted(mdp, "policy_gradient_theorem")
    logits = _checked_logits(mdp, logits)
    pi = _softmax_np(logits)
    Q = q_values(mdp, evaluate_policy(mdp, pi))
    if state_weights is None:
        d = discounted_visitation(mdp, pi)
    else:
        d = _checks.to_float64(
            _checks.real_array(
                "state_weights", state_weights, shape=(mdp.n_states,), sequences=True
            )
        )
    jacobian = np.einsum("sa,ab->sab", pi, np.eye(mdp.n_actions)) - np.einsum(
        "sa,sb->sab", pi, pi
    )  # [s, a, b] = ∂π(a|s)/∂θ[s, b]
    return torch.as_tensor(d[:, None] * np.einsum("sab,sa->sb", jacobian, Q))


def _check_horizon(horizon: object) -> int:
    return _checks.positive_int("horizon", horizon, limit=MAX_HORIZON)


def horizon_for_tolerance(gamma: float, tol: float) -> int:
    """The smallest H >= 1 with γ^H <= ``tol``: where a discounted sum may be cut.

    Terms from step H on carry weight at most γ^H/(1 − γ) in total. Raises ValueError for
    γ = 1, whose horizon is unbounded. Introduced in Chapter 4.
    """
    tol = _checks.real("tol", tol, low=0.0, high=1.0, low_open=True, high_open=True)
    gamma = _checks.unit_interval("gamma", gamma)
    if gamma == 1:
        raise ValueError(
            "gamma = 1 with an unbounded horizon: γ^H never becomes small, so pass an explicit "
            "horizon (a finite-horizon problem) or use gamma < 1"
        )
    if gamma == 0:
        return 1
    return max(1, math.ceil(math.log(tol) / math.log(gamma) - 1e-12))


def estimator_weights(
    mdp: TabularMDP,
    logits: Tensor | np.ndarray,
    traj: Trajectory,
    weighting: Weighting,
    *,
    baseline: np.ndarray | None = None,
    discount_weights: bool = True,
) -> Tensor:
    """The weights w [N, H] that multiply ∇ log π(a_t|s_t) in g(τ) = Σ_t ∇ log π(a_t|s_t) w_t.

    ``traj`` is a batch from :func:`pglib.mdp.sample_trajectories` (``states`` [N, H+1]).
    The rollout's end is a truncation, bootstrapped with the exact V^π(s_H), so that every
    reward-to-go G_t (:func:`pglib.returns.reward_to_go`) has expectation Q^π(s_t, a_t).

    - ``"return"``: w_t = R(τ) = G_0 for every t (no γ^t: it is ∇ log p(τ) R(τ)).
    - ``"reward_to_go"``: w_t = γ^t G_t.
    - ``"reward_to_go_baseline"``: w_t = γ^t (G_t − b(s_t)), with ``baseline`` b [S].
    - ``"q"``: w_t = γ^t Q^π(s_t, a_t);  ``"advantage"``: w_t = γ^t A^π(s_t, a_t).

    ``discount_weights=False`` drops the γ^t (what most code does); it is not defined for
    ``"return"``. Introduced in Chapter 4 (the weights of Chapters 6 and 7 come later).
    """
    baseline = _check_estimator_options(mdp, weighting, baseline, discount_weights)
    logits = _checked_logits(mdp, logits)
    _check_batch(mdp, traj)
    pi = _softmax_np(logits)
    states, actions, rewards = traj.states[:, :-1], traj.actions, traj.rewards
    V = evaluate_policy(mdp, pi)
    if weighting in ("q", "advantage"):
        Q = q_values(mdp, V)
        phi = Q[states, actions] - (V[states] if weighting == "advantage" else 0.0)
    else:
        truncated = np.zeros(rewards.shape, dtype=bool)
        truncated[:, -1] = True
        G = reward_to_go(
            rewards.T,
            mdp.gamma,
            truncated=truncated.T,
            bootstrap=np.broadcast_to(V[traj.states[:, 1:]], rewards.shape).T,
        ).T
        if weighting == "return":
            return torch.as_tensor(np.broadcast_to(G[:, :1], G.shape).copy())
        phi = G if baseline is None else G - baseline[states]
    discount = mdp.gamma ** np.arange(rewards.shape[1]) if discount_weights else 1.0
    return torch.as_tensor(discount * phi)


def _check_estimator_options(
    mdp: TabularMDP, weighting: object, baseline: object, discount_weights: object
) -> np.ndarray | None:
    """The options of :func:`estimator_weights`; returns the baseline as float64 (or None)."""
    _check_mdp(mdp)
    _checks.choice("weighting", weighting, WEIGHTINGS)
    _checks.boolean("discount_weights", discount_weights)
    if (baseline is not None) != (weighting == "reward_to_go_baseline"):
        raise ValueError(
            "baseline [S] must be given exactly when weighting is 'reward_to_go_baseline', "
            f"got weighting={weighting!r}, baseline {'given' if baseline is not None else 'None'}"
        )
    if weighting == "return" and not discount_weights:
        raise ValueError("discount_weights=False is not defined for 'return': R(τ) has no γ^t")
    if baseline is None:
        return None
    if isinstance(baseline, (np.ndarray, Tensor)) and tuple(baseline.shape) != (mdp.n_states,):
        raise ValueError(
            f"baseline must have shape [S] = ({mdp.n_states},), got {tuple(baseline.shape)}"
        )
    checked = _checks.real_array("baseline", baseline, shape=(mdp.n_states,), sequences=True)
    return _checks.to_float64(checked)


def _check_batch(mdp: TabularMDP, traj: object) -> None:
    """``traj`` is a batch of trajectories [N, H+1] whose states and actions fit ``mdp``."""
    _checks.instance("traj", traj, Trajectory, "a Trajectory (a batch from sample_trajectories)")
    if np.ndim(traj.states) != 2 or np.shape(traj.states)[1] < 2:
        raise ValueError(
            "traj must be a batch of trajectories with states [N, H+1], H >= 1, "
            f"got states of shape {np.shape(traj.states)}"
        )
    _checks.index_array("traj.states", traj.states, high=mdp.n_states)
    _checks.index_array("traj.actions", traj.actions, high=mdp.n_actions)


def trajectory_gradients(logits: Tensor | np.ndarray, traj: Trajectory, weights: Tensor) -> Tensor:
    """Per-trajectory estimates g_n = ∇_θ Σ_t log π_θ(a_t|s_t) w_t, shape [N, S, A].

    Autograd of the surrogate Σ_t log π w_t, once per trajectory: each trajectory gets its
    own copy of θ, so a single backward pass returns all N gradients. ``weights`` [N, H]
    are constants (see :func:`estimator_weights`). Introduced in Chapter 4.
    """
    logits = torch.as_tensor(logits, dtype=torch.float64).detach()
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape [S, A], got {tuple(logits.shape)}")
    states = torch.as_tensor(traj.states[:, :-1])
    actions = torch.as_tensor(traj.actions)
    weights = torch.as_tensor(weights, dtype=torch.float64)
    if tuple(weights.shape) != tuple(actions.shape):
        raise ValueError(
            f"weights must have the shape of traj.actions {tuple(actions.shape)}, "
            f"got {tuple(weights.shape)}"
        )
    n = actions.shape[0]
    theta = logits.expand(n, *logits.shape).clone().requires_grad_(True)  # one θ per trajectory
    log_pi = Categorical(logits=theta[torch.arange(n)[:, None], states]).log_prob(actions)
    (grads,) = torch.autograd.grad((log_pi * weights.detach()).sum(), theta)
    return grads


def _check_trajectory_gradients(logits: object, traj: object, weights: object) -> None:
    logits = _checks.real_array("logits", logits, ndim=2, nonempty=True, sequences=True)
    n_states, n_actions = logits.shape
    _checks.instance("traj", traj, Trajectory, "a Trajectory (a batch from sample_trajectories)")
    if np.ndim(traj.states) != 2:
        raise ValueError(
            f"traj must be a batch with states [N, H+1], got shape {np.shape(traj.states)}"
        )
    _checks.index_array("traj.states", traj.states, high=n_states)
    _checks.index_array("traj.actions", traj.actions, high=n_actions)
    if isinstance(weights, (np.ndarray, Tensor)) and tuple(weights.shape) != np.shape(traj.actions):
        raise ValueError(
            f"weights must have the shape of traj.actions {np.shape(traj.actions)}, "
            f"got {tuple(weights.shape)}"
        )
    _checks.real_array("weights", weights, shape=np.shape(traj.actions), sequences=True)


# Chapter 4 prints trajectory_gradients's source; its arguments are checked by this wrapper.
trajectory_gradients = _checks.checked_by(_check_trajectory_gradients)(trajectory_gradients)


def _rollouts(
    mdp: TabularMDP,
    logits: Tensor,
    n_trajectories: int,
    horizon: int | None,
    tol: float,
    seed: int,
) -> Trajectory:
    # Standard errors need two samples.
    n_trajectories = _checks.integer("n_trajectories", n_trajectories, low=2)
    _checks.positive_int("n_trajectories", n_trajectories, limit=MAX_TRAJECTORIES)
    seed = _checks.integer("seed", seed, low=0)
    if horizon is None:
        horizon = horizon_for_tolerance(mdp.gamma, tol)
    horizon = _check_horizon(horizon)
    rng = np.random.default_rng(seed)
    return sample_trajectories(mdp, _softmax_np(logits), horizon, n_trajectories, rng)


def sample_gradient_estimates(
    mdp: TabularMDP,
    logits: Tensor | np.ndarray,
    n_trajectories: int,
    *,
    weighting: Weighting = "return",
    baseline: np.ndarray | None = None,
    discount_weights: bool = True,
    horizon: int | None = None,
    tol: float = 1e-6,
    seed: int = 0,
) -> Tensor:
    """N independent Monte-Carlo estimates of ∇J, one per sampled trajectory: [N, S, A].

    Samples N trajectories side by side (seeded by ``seed``), forms the weights of
    :func:`estimator_weights` and returns :func:`trajectory_gradients`. Their mean estimates
    ∇J. The horizon defaults to :func:`horizon_for_tolerance` (γ^H <= ``tol``), so leaving
    out the steps t >= H changes the expectation by about γ^H/(1 − γ)·max|A^π|.
    Introduced in Chapter 4.
    """
    logits = _checked_logits(mdp, logits)
    _check_estimator_options(mdp, weighting, baseline, discount_weights)  # before sampling
    traj = _rollouts(mdp, logits, n_trajectories, horizon, tol, seed)
    weights = estimator_weights(
        mdp, logits, traj, weighting, baseline=baseline, discount_weights=discount_weights
    )
    return trajectory_gradients(logits, traj, weights)


def optimal_constant_baseline(
    mdp: TabularMDP,
    logits: Tensor | np.ndarray,
    n_trajectories: int,
    *,
    horizon: int | None = None,
    tol: float = 1e-6,
    seed: int = 0,
) -> float:
    """The constant b* that minimises the total variance of the reward-to-go estimator.

    With X = Σ_t γ^t ∇ log π_t G_t and Y = Σ_t γ^t ∇ log π_t (so that the estimator with
    baseline b is X − bY, and E[Y] = 0), tr Cov(X − bY) = E‖X − bY‖² − ‖E X‖² is least at
    b* = E[X·Y] / E[‖Y‖²], estimated here from N sampled trajectories. Introduced in Chapter 7.
    """
    logits = _checked_logits(mdp, logits)
    traj = _rollouts(mdp, logits, n_trajectories, horizon, tol, seed)
    X = trajectory_gradients(logits, traj, estimator_weights(mdp, logits, traj, "reward_to_go"))
    discount = torch.as_tensor(mdp.gamma ** np.arange(traj.actions.shape[1]))
    Y = trajectory_gradients(logits, traj, discount.expand(traj.actions.shape))
    X, Y = X.flatten(1), Y.flatten(1)
    return float((X * Y).sum(1).mean() / (Y * Y).sum(1).mean())


@dataclass(frozen=True)
class GradientStatistics:
    """Summary of N gradient estimates: ``mean`` and ``standard_error`` (both the shape of one
    estimate), ``total_variance`` = tr Cov(g) of a single estimate, and ``n`` = N.
    Introduced in Chapter 4."""

    mean: Tensor
    standard_error: Tensor
    total_variance: float
    n: int

    def __post_init__(self) -> None:
        _checks.instance("mean", self.mean, Tensor, "a torch tensor")
        _checks.real_array("mean", self.mean)
        _checks.real_array("standard_error", self.standard_error, shape=tuple(self.mean.shape))
        if bool((self.standard_error < 0).any()):
            raise ValueError("standard_error must be >= 0 everywhere, got a negative entry")
        _checks.real("total_variance", self.total_variance, low=0.0)
        _checks.integer("n", self.n, low=2)


def _check_samples(samples: Tensor) -> Tensor:
    samples = torch.as_tensor(
        _checks.real_array("samples", samples, sequences=True), dtype=torch.float64
    )
    if samples.ndim < 1 or samples.shape[0] < 2:
        raise ValueError(
            f"samples must have shape [N, ...] with N >= 2, got {tuple(samples.shape)}"
        )
    return samples


def gradient_statistics(samples: Tensor) -> GradientStatistics:
    """Mean, per-component standard error s/√N, and total variance Σ_i s_i² of ``samples``.

    ``samples`` [N, ...] are independent estimates; s_i is the sample standard deviation
    (N − 1 in the denominator) of component i. Introduced in Chapter 4.
    """
    samples = _check_samples(samples)
    n = samples.shape[0]
    variance = samples.var(dim=0, correction=1)
    return GradientStatistics(
        mean=samples.mean(0),
        standard_error=(variance / n).sqrt(),
        total_variance=float(variance.sum()),
        n=n,
    )


def relative_error(estimate: Tensor, exact: Tensor) -> float:
    """‖estimate − exact‖ / ‖exact‖ (Frobenius norms). Introduced in Chapter 4."""
    estimate = _float64_tensor("estimate", estimate)
    exact = _float64_tensor("exact", exact)
    if estimate.shape != exact.shape:
        raise ValueError(
            f"estimate and exact must have the same shape, got {tuple(estimate.shape)} "
            f"and {tuple(exact.shape)}"
        )
    if not bool((exact != 0).any()):
        raise ValueError("exact is the zero vector, so a relative error is undefined")
    error = float(torch.linalg.vector_norm(estimate - exact))
    norm = float(torch.linalg.vector_norm(exact))
    if math.isfinite(error) and math.isfinite(norm) and norm > 0:
        return error / norm
    # Squares of entries near 1e±200 overflow or underflow: the ratio is scale-free, so
    # measure each vector relative to its largest entry.
    scale = float(torch.maximum(estimate.abs().max(), exact.abs().max()))
    diff_top, diff_norm = _norm_parts(estimate / scale - exact / scale)
    exact_top, exact_norm = _norm_parts(exact)
    return (scale / exact_top) * diff_top * diff_norm / exact_norm


def _norm_parts(x: Tensor) -> tuple[float, float]:
    """(m, ‖x / m‖) with m the largest |x_i|, so that ‖x‖ = m·‖x / m‖ without overflow."""
    top = float(x.abs().max())
    return top, float(torch.linalg.vector_norm(x / top)) if top > 0 else 0.0


def _float64_tensor(name: str, x: object) -> Tensor:
    """A checked array, tensor or list of finite reals as a detached float64 tensor."""
    return torch.as_tensor(
        _checks.real_array(name, x, sequences=True), dtype=torch.float64
    ).detach()


def relative_error_curve(samples: Tensor, exact: Tensor, ns: np.ndarray) -> np.ndarray:
    """For each n in ``ns``, the relative error of the mean of the first n samples: [len(ns)].

    ``samples`` [N, ...]; every n must lie in [1, N]. Introduced in Chapter 4.
    """
    samples = _check_samples(samples)
    ns = np.asarray(ns)
    if ns.dtype.kind not in "iu":
        raise ValueError(f"ns must hold integer sample counts, got dtype {ns.dtype}")
    if ns.ndim != 1 or ns.size == 0 or ns.min() < 1 or ns.max() > samples.shape[0]:
        raise ValueError(
            f"ns must be a non-empty list of sample counts in [1, {samples.shape[0]}], got {ns}"
        )
    running = samples.cumsum(0)
    return np.array([relative_error(running[n - 1] / n, exact) for n in ns])


def bias_in_standard_errors(stats: GradientStatistics, exact: Tensor) -> Tensor:
    """z_i = (mean_i − exact_i) / standard_error_i per component, the shape of one estimate.

    A component with a zero standard error gets z = 0 if its mean equals the exact value
    (within 1e-12) and ±inf otherwise. For an unbiased estimator most |z_i| are below 2.
    Introduced in Chapter 4.
    """
    _checks.instance("stats", stats, GradientStatistics, "a GradientStatistics")
    exact = _float64_tensor("exact", exact)
    if exact.shape != stats.mean.shape:
        raise ValueError(
            f"exact must have the shape of the mean {tuple(stats.mean.shape)}, "
            f"got {tuple(exact.shape)}"
        )
    diff = stats.mean - exact
    diff = torch.where(diff.abs() <= 1e-12, torch.zeros_like(diff), diff)
    z = diff / stats.standard_error
    return torch.where(diff == 0, torch.zeros_like(z), z)


def angle_degrees(u: Tensor, v: Tensor) -> float:
    """The angle between two vectors (flattened), in degrees. Introduced in Chapter 4."""
    u = _float64_tensor("u", u).flatten()
    v = _float64_tensor("v", v).flatten()
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same size, got {u.numel()} and {v.numel()}")
    if not (bool((u != 0).any()) and bool((v != 0).any())):
        raise ValueError("the angle with a zero vector is undefined")
    norms = float(torch.linalg.vector_norm(u) * torch.linalg.vector_norm(v))
    dot = float(u @ v)
    if not (math.isfinite(norms) and math.isfinite(dot) and norms > 0):
        # Entries near 1e±200 overflow or underflow when squared; the angle is scale-free.
        u, v = u / u.abs().max(), v / v.abs().max()
        norms = float(torch.linalg.vector_norm(u) * torch.linalg.vector_norm(v))
        dot = float(u @ v)
    cosine = max(-1.0, min(1.0, dot / norms))  # rounding can step just outside [-1, 1]
    return math.degrees(math.acos(cosine))
