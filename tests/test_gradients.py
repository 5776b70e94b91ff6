"""pglib.gradients: the exact gradient, the theorem form, and the Monte-Carlo estimators."""

import functools
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pglib.gradients import (
    WEIGHTINGS,
    GradientStatistics,
    angle_degrees,
    bias_in_standard_errors,
    discounted_visitation,
    estimator_weights,
    exact_policy_gradient,
    gradient_statistics,
    horizon_for_tolerance,
    optimal_constant_baseline,
    policy_gradient_theorem,
    relative_error,
    relative_error_curve,
    sample_gradient_estimates,
    trajectory_gradients,
    visitation_counts,
)
from pglib.gridworld import GridWorld
from pglib.mdp import TabularMDP, evaluate_policy, sample_trajectories


def random_mdp(seed: int, n_states: int, n_actions: int, gamma: float) -> TabularMDP:
    rng = np.random.default_rng(seed)
    return TabularMDP(
        P=rng.dirichlet(np.ones(n_states), size=(n_states, n_actions)),
        R=rng.normal(size=(n_states, n_actions)),
        gamma=gamma,
        rho0=rng.dirichlet(np.ones(n_states)),
    )


mdp_cases = st.tuples(
    st.integers(0, 10_000), st.integers(1, 5), st.integers(1, 4), st.floats(0.0, 0.95)
)


def softmax(logits: np.ndarray) -> np.ndarray:
    return torch.softmax(torch.as_tensor(logits), -1).numpy()


@settings(max_examples=15, deadline=None)
@given(mdp_cases)
def test_exact_gradient_matches_central_finite_differences(case: tuple) -> None:
    seed, n_states, n_actions, gamma = case
    mdp = random_mdp(seed, n_states, n_actions, gamma)
    logits = np.random.default_rng(seed + 1).normal(size=(n_states, n_actions))
    _, grad = exact_policy_gradient(mdp, logits)
    h, fd = 1e-5, np.zeros_like(logits)
    for index in np.ndindex(*logits.shape):
        step = np.zeros_like(logits)
        step[index] = h
        J_plus, _ = exact_policy_gradient(mdp, logits + step)
        J_minus, _ = exact_policy_gradient(mdp, logits - step)
        fd[index] = (J_plus - J_minus) / (2 * h)
    scale = max(np.linalg.norm(fd), 1e-3)  # with one action the gradient is exactly zero
    assert np.linalg.norm(grad.numpy() - fd) / scale <= 1e-6


@settings(max_examples=25, deadline=None)
@given(mdp_cases)
def test_autograd_and_theorem_forms_agree(case: tuple) -> None:
    seed, n_states, n_actions, gamma = case
    mdp = random_mdp(seed, n_states, n_actions, gamma)
    logits = torch.as_tensor(np.random.default_rng(seed + 2).normal(size=(n_states, n_actions)))
    _, grad = exact_policy_gradient(mdp, logits)
    theorem = policy_gradient_theorem(mdp, logits)
    assert grad.dtype == theorem.dtype == torch.float64
    assert float((grad - theorem).abs().max()) <= 1e-10


def test_one_state_bandit_by_hand() -> None:
    # One state, rewards [1, 0], θ = 0: π = [1/2, 1/2], J = π_0/(1−γ) = 1/(2(1−γ)), and
    # ∂J/∂θ_0 = π_0 π_1/(1−γ) = 1/(4(1−γ)) = −∂J/∂θ_1.
    mdp = TabularMDP(P=np.ones((1, 2, 1)), R=np.array([[1.0, 0.0]]), gamma=0.5, rho0=[1.0])
    J, grad = exact_policy_gradient(mdp, torch.zeros(1, 2, dtype=torch.float64))
    assert J == pytest.approx(1.0)
    torch.testing.assert_close(grad, torch.tensor([[0.5, -0.5]], dtype=torch.float64))


@settings(max_examples=20, deadline=None)
@given(mdp_cases)
def test_visitations_have_the_right_total_mass(case: tuple) -> None:
    seed, n_states, n_actions, gamma = case
    mdp = random_mdp(seed, n_states, n_actions, gamma)
    pi = np.random.default_rng(seed).dirichlet(np.ones(n_actions), size=n_states)
    assert discounted_visitation(mdp, pi).sum() == pytest.approx(1 / (1 - gamma))
    assert visitation_counts(mdp, pi, 7).sum() == pytest.approx(7.0)
    # J = Σ_s d^π(s) r_π(s): the visitation reproduces the value of the start distribution.
    r_pi = (pi * mdp.R).sum(1)
    assert discounted_visitation(mdp, pi) @ r_pi == pytest.approx(
        mdp.rho0 @ evaluate_policy(mdp, pi)
    )


@pytest.mark.parametrize(
    ("gamma", "tol", "expected"), [(0.5, 0.125, 3), (0.5, 0.1, 4), (0.0, 0.5, 1), (0.9, 1e-6, 132)]
)
def test_horizon_for_tolerance(gamma: float, tol: float, expected: int) -> None:
    horizon = horizon_for_tolerance(gamma, tol)
    assert horizon == expected
    assert gamma**horizon <= tol < gamma ** (horizon - 1) or horizon == 1


def test_trajectory_gradients_equal_the_closed_form_score() -> None:
    # For softmax logits, ∇_θ[s] log π(a|s) = e_a − π(·|s): g_n = Σ_t w_t (e_{a_t} − π(·|s_t)).
    mdp = random_mdp(3, 4, 3, 0.8)
    logits = np.random.default_rng(4).normal(size=(4, 3))
    traj = sample_trajectories(mdp, softmax(logits), 6, 5, np.random.default_rng(5))
    weights = torch.as_tensor(np.random.default_rng(6).normal(size=(5, 6)))
    grads = trajectory_gradients(logits, traj, weights)
    pi, expected = softmax(logits), np.zeros((5, 4, 3))
    for n in range(5):
        for t in range(6):
            s, a = traj.states[n, t], traj.actions[n, t]
            expected[n, s] += weights[n, t].item() * (np.eye(3)[a] - pi[s])
    np.testing.assert_allclose(grads.numpy(), expected, atol=1e-12)


GRID = GridWorld.zhao_3x3().to_mdp(0.9)
GRID_LOGITS = np.random.default_rng(0).normal(size=(9, 5)) * 0.5


@functools.cache  # the statistics are shared by several tests below
def _grid_estimates(weighting: str, **kwargs: object) -> GradientStatistics:
    baseline = None
    if weighting == "reward_to_go_baseline":
        baseline = evaluate_policy(GRID, softmax(GRID_LOGITS))
    samples = sample_gradient_estimates(
        GRID, GRID_LOGITS, 3000, weighting=weighting, baseline=baseline, seed=11, **kwargs
    )
    return gradient_statistics(samples)


@pytest.mark.parametrize("weighting", WEIGHTINGS)
def test_each_estimator_is_unbiased_within_four_standard_errors(weighting: str) -> None:
    _, exact = exact_policy_gradient(GRID, GRID_LOGITS)
    stats = _grid_estimates(weighting)
    z = bias_in_standard_errors(stats, exact)
    assert float(z.abs().max()) < 4.0, f"{weighting}: largest |z| = {float(z.abs().max()):.2f}"


def test_variance_ordering_on_the_grid_world() -> None:
    variance = {w: _grid_estimates(w).total_variance for w in WEIGHTINGS}
    assert variance["return"] > variance["reward_to_go"] > variance["reward_to_go_baseline"]
    assert variance["q"] > variance["advantage"]


def test_estimator_without_discount_matches_its_own_expectation() -> None:
    # Without γ^t the estimator weights states by undiscounted visit counts, not by d^π.
    horizon = horizon_for_tolerance(GRID.gamma, 1e-6)
    stats = _grid_estimates("reward_to_go", discount_weights=False)
    counts = visitation_counts(GRID, softmax(GRID_LOGITS), horizon)
    expected = policy_gradient_theorem(GRID, GRID_LOGITS, state_weights=counts)
    assert float(bias_in_standard_errors(stats, expected).abs().max()) < 4.0
    _, exact = exact_policy_gradient(GRID, GRID_LOGITS)
    assert angle_degrees(expected, exact) > 5.0


def test_optimal_constant_baseline_minimises_the_total_variance() -> None:
    b_star = optimal_constant_baseline(GRID, GRID_LOGITS, 1000, seed=3)

    def total_variance(b: float) -> float:
        samples = sample_gradient_estimates(
            GRID,
            GRID_LOGITS,
            1000,
            weighting="reward_to_go_baseline",
            baseline=np.full(9, b),
            seed=3,
        )
        return gradient_statistics(samples).total_variance

    assert total_variance(b_star) < min(total_variance(b_star - 1), total_variance(b_star + 1))
    assert total_variance(b_star) < total_variance(0.0)


def test_return_weights_are_constant_along_a_trajectory() -> None:
    traj = sample_trajectories(GRID, softmax(GRID_LOGITS), 4, 3, np.random.default_rng(0))
    weights = estimator_weights(GRID, GRID_LOGITS, traj, "return")
    rtg = estimator_weights(GRID, GRID_LOGITS, traj, "reward_to_go")
    torch.testing.assert_close(weights, weights[:, :1].expand(3, 4))
    torch.testing.assert_close(weights[:, 0], rtg[:, 0])  # R(τ) = G_0


def test_statistics_by_hand() -> None:
    stats = gradient_statistics(torch.tensor([[1.0, 0.0], [3.0, 0.0]]))
    torch.testing.assert_close(stats.mean, torch.tensor([2.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(stats.standard_error, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert stats.total_variance == pytest.approx(2.0) and stats.n == 2
    z = bias_in_standard_errors(stats, torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(z, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert relative_error(torch.tensor([3.0, 4.0]), torch.tensor([0.0, 5.0])) == pytest.approx(
        math.sqrt(10) / 5
    )
    curve = relative_error_curve(torch.tensor([[2.0], [0.0], [1.0]]), torch.tensor([1.0]), [1, 2])
    np.testing.assert_allclose(curve, [1.0, 0.0])
    assert angle_degrees(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])) == pytest.approx(45)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"logits must have shape \[S, A\] = \(9, 5\)"):
        exact_policy_gradient(GRID, np.zeros((9, 4)))
    with pytest.raises(ValueError, match="n_trajectories must be an integer >= 2"):
        sample_gradient_estimates(GRID, GRID_LOGITS, 1)
    with pytest.raises(ValueError, match="horizon must be a positive integer, got 0"):
        sample_gradient_estimates(GRID, GRID_LOGITS, 10, horizon=0)
    undiscounted = GridWorld.zhao_3x3().to_mdp(1.0)
    with pytest.raises(ValueError, match="gamma = 1 with an unbounded horizon"):
        sample_gradient_estimates(undiscounted, GRID_LOGITS, 10)
    with pytest.raises(ValueError, match="exact_policy_gradient needs gamma < 1"):
        exact_policy_gradient(undiscounted, GRID_LOGITS)
    with pytest.raises(ValueError, match="baseline \\[S\\] must be given exactly when"):
        sample_gradient_estimates(GRID, GRID_LOGITS, 10, weighting="reward_to_go_baseline")
    with pytest.raises(ValueError, match=r"baseline must have shape \[S\] = \(9,\), got \(8,\)"):
        sample_gradient_estimates(
            GRID, GRID_LOGITS, 10, weighting="reward_to_go_baseline", baseline=np.zeros(8)
        )
    with pytest.raises(ValueError, match="discount_weights=False is not defined for 'return'"):
        sample_gradient_estimates(GRID, GRID_LOGITS, 10, discount_weights=False)
    with pytest.raises(ValueError, match="weighting must be one of"):
        sample_gradient_estimates(GRID, GRID_LOGITS, 10, weighting="gae")
    with pytest.raises(ValueError, match=r"samples must have shape \[N, ...\] with N >= 2"):
        gradient_statistics(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="the angle with a zero vector is undefined"):
        angle_degrees(torch.zeros(2), torch.ones(2))
