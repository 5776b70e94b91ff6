"""pglib.mdp: validation, policy evaluation, Bellman equations, optimal control, trajectories."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pglib import (
    GridWorld,
    TabularMDP,
    Trajectory,
    advantages,
    evaluate_policy,
    evaluate_policy_iterative,
    greedy_policy,
    policy_iteration,
    q_values,
    sample_trajectories,
    sample_trajectory,
    trajectory_log_prob,
    value_iteration,
)

STAY = 4


def random_mdp(seed: int, n_states: int, n_actions: int, gamma: float) -> TabularMDP:
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(n_states) * 0.5, size=(n_states, n_actions))
    R = rng.normal(size=(n_states, n_actions))
    return TabularMDP(P=P, R=R, gamma=gamma, rho0=rng.dirichlet(np.ones(n_states)))


def random_policy(seed: int, n_states: int, n_actions: int) -> np.ndarray:
    return np.random.default_rng(seed + 1).dirichlet(np.ones(n_actions), size=n_states)


mdp_args = st.tuples(
    st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 4), st.floats(0.0, 0.95)
)


@settings(max_examples=40, deadline=None)
@given(mdp_args)
def test_closed_form_and_iteration_agree_and_solve_the_bellman_equation(args: tuple) -> None:
    seed, n_states, n_actions, gamma = args
    mdp = random_mdp(seed, n_states, n_actions, gamma)
    pi = random_policy(seed, n_states, n_actions)
    V = evaluate_policy(mdp, pi)
    V_iter, sweeps = evaluate_policy_iterative(mdp, pi, tol=1e-11)
    assert sweeps >= 1
    np.testing.assert_allclose(V_iter, V, atol=1e-10)
    # Bellman expectation equation: V(s) = Σ_a π(a|s) [r(s,a) + γ Σ_s' p(s'|s,a) V(s')].
    residual = (pi * q_values(mdp, V)).sum(axis=1) - V
    assert np.abs(residual).max() < 1e-10
    # The advantage averages to zero under the policy itself.
    assert np.abs((pi * advantages(mdp, pi)).sum(axis=1)).max() < 1e-10


@settings(max_examples=30, deadline=None)
@given(mdp_args)
def test_value_iteration_and_policy_iteration_agree(args: tuple) -> None:
    seed, n_states, n_actions, gamma = args
    mdp = random_mdp(seed, n_states, n_actions, gamma)
    V_vi, pi_vi = value_iteration(mdp, tol=1e-10)
    V_pi, pi_pi = policy_iteration(mdp)
    np.testing.assert_allclose(V_vi, V_pi, atol=1e-9)
    # Each returned policy is optimal: its value is V*, and no action improves on it.
    np.testing.assert_allclose(evaluate_policy(mdp, pi_vi), V_pi, atol=1e-8)
    assert (q_values(mdp, V_pi).max(axis=1) <= V_pi + 1e-9).all()
    assert set(pi_pi.sum(axis=1)) == {1.0} and set(np.unique(pi_pi)) <= {0.0, 1.0}


def test_staying_at_the_target_is_worth_one_over_one_minus_gamma() -> None:
    gamma = 0.9
    mdp = GridWorld.zhao_3x3().to_mdp(gamma)
    stay = np.zeros((9, 5))
    stay[:, STAY] = 1.0
    V = evaluate_policy(mdp, stay)
    assert V[8] == pytest.approx(1 / (1 - gamma), abs=1e-12)
    assert V[5] == pytest.approx(-1 / (1 - gamma), abs=1e-12)  # s6 is forbidden
    assert V[0] == 0.0
    Q = q_values(mdp, V)
    assert Q[7, 1] == pytest.approx(1 + gamma * 10)  # s8 → right → s9, then stay


def test_optimal_policy_of_the_3x3_world() -> None:
    mdp = GridWorld.zhao_3x3().to_mdp(0.9)
    V, pi = value_iteration(mdp)
    # From s1 the shortest safe path has four steps; the first reward, +1, comes on the fourth.
    assert V[0] == pytest.approx(0.9**3 / (1 - 0.9), abs=1e-9)
    assert pi[8, STAY] == 1.0
    _, pi_pi = policy_iteration(mdp)
    np.testing.assert_array_equal(pi, pi_pi)


def test_gamma_one_with_an_absorbing_end_and_without() -> None:
    # Two states: state 0 moves to state 1 with reward 2; state 1 is absorbing with reward 0.
    P = np.array([[[0.0, 1.0]], [[0.0, 1.0]]])
    mdp = TabularMDP(P=P, R=np.array([[2.0], [0.0]]), gamma=1.0, rho0=np.array([1.0, 0.0]))
    np.testing.assert_allclose(evaluate_policy(mdp, np.ones((2, 1))), [2.0, 0.0])
    V_iter, _ = evaluate_policy_iterative(mdp, np.ones((2, 1)))
    np.testing.assert_allclose(V_iter, [2.0, 0.0])
    looping = TabularMDP(P=P, R=np.array([[2.0], [1.0]]), gamma=1.0, rho0=np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="with gamma = 1 the Bellman equation is singular"):
        evaluate_policy(looping, np.ones((2, 1)))
    with pytest.raises(RuntimeError, match="policy evaluation did not converge in 10 sweeps"):
        evaluate_policy_iterative(looping, np.ones((2, 1)), max_sweeps=10)
    with pytest.raises(RuntimeError, match="value iteration did not converge in 10 sweeps"):
        value_iteration(looping, max_sweeps=10)


def test_torch_policies_give_differentiable_values() -> None:
    mdp = GridWorld.zhao_3x3().to_mdp(0.9)
    logits = torch.zeros(9, 5, dtype=torch.float64, requires_grad=True)
    pi = torch.softmax(logits, dim=1)
    V = evaluate_policy(mdp, pi)
    assert isinstance(V, torch.Tensor)
    np.testing.assert_allclose(V.detach().numpy(), evaluate_policy(mdp, pi.detach().numpy()))
    np.testing.assert_allclose(
        advantages(mdp, pi).detach().numpy(), advantages(mdp, pi.detach().numpy()), atol=1e-12
    )
    V[0].backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_greedy_policy_breaks_near_ties_toward_the_lower_index() -> None:
    Q = np.array([[1.0, 1.0 + 1e-12, 0.0], [0.0, 2.0, 3.0]])
    np.testing.assert_array_equal(greedy_policy(Q), [[1, 0, 0], [0, 0, 1]])


def test_trajectory_log_prob_by_hand() -> None:
    mdp = GridWorld.zhao_3x3().to_mdp(0.9)
    uniform = np.full((9, 5), 0.2)
    # s1 -right-> s2 -down-> s5: deterministic moves, so only the policy contributes.
    traj = Trajectory(states=np.array([0, 1, 4]), actions=np.array([1, 2]), rewards=np.zeros(2))
    assert trajectory_log_prob(mdp, uniform, traj) == pytest.approx(2 * np.log(0.2))
    impossible = Trajectory(states=np.array([0, 8]), actions=np.array([1]), rewards=np.zeros(1))
    assert trajectory_log_prob(mdp, uniform, impossible) == -np.inf
    as_tensor = trajectory_log_prob(mdp, torch.tensor(uniform), traj)
    assert isinstance(as_tensor, torch.Tensor)
    assert float(as_tensor) == pytest.approx(2 * np.log(0.2))


def test_sampled_trajectories_follow_the_mdp() -> None:
    world = GridWorld.zhao_3x3().with_rewards(slip=0.2)
    mdp = world.to_mdp(0.9)
    uniform = np.full((9, 5), 0.2)
    batch = sample_trajectories(mdp, uniform, 6, 500, np.random.default_rng(0))
    assert batch.states.shape == (500, 7) and batch.actions.shape == batch.rewards.shape == (500, 6)
    assert (batch.states[:, 0] == 0).all()
    np.testing.assert_array_equal(batch.rewards, mdp.R[batch.states[:, :-1], batch.actions])
    assert np.isfinite(trajectory_log_prob(mdp, uniform, batch)).all()
    one = sample_trajectory(mdp, uniform, 4, np.random.default_rng(1))
    assert one.states.shape == (5,) and isinstance(trajectory_log_prob(mdp, uniform, one), float)


def test_validation_errors() -> None:
    P = np.full((2, 1, 2), 0.5)
    R = np.zeros((2, 1))
    rho0 = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match=r"P must have 3 dimension"):
        TabularMDP(P=np.ones((2, 2)), R=R, gamma=0.9, rho0=rho0)
    with pytest.raises(ValueError, match=r"R must have shape \[S, A\] = \(2, 1\), got \(2,\)"):
        TabularMDP(P=P, R=np.zeros(2), gamma=0.9, rho0=rho0)
    with pytest.raises(ValueError, match=r"rho0 must have shape \[S\] = \(2,\), got \(3,\)"):
        TabularMDP(P=P, R=R, gamma=0.9, rho0=np.ones(3) / 3)
    with pytest.raises(ValueError, match="R must contain only finite numbers, got NaN or inf"):
        TabularMDP(P=P, R=np.array([[np.nan], [0.0]]), gamma=0.9, rho0=rho0)
    with pytest.raises(
        ValueError, match=r"every row P\[s, a, :\] must be a probability distribution"
    ):
        TabularMDP(P=np.full((2, 1, 2), 0.6), R=R, gamma=0.9, rho0=rho0)
    with pytest.raises(ValueError, match="rho0 must be a probability distribution"):
        TabularMDP(P=P, R=R, gamma=0.9, rho0=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match=r"gamma must be a real number in \[0, 1\], got 1.5"):
        TabularMDP(P=P, R=R, gamma=1.5, rho0=rho0)
    mdp = TabularMDP(P=P, R=R, gamma=0.9, rho0=rho0)
    assert (mdp.n_states, mdp.n_actions) == (2, 1)
    with pytest.raises(ValueError, match=r"pi must have shape \(2, 1\), got shape \(2, 2\)"):
        evaluate_policy(mdp, np.full((2, 2), 0.5))
    with pytest.raises(
        ValueError, match=r"every row pi\[s, :\] must be a probability distribution"
    ):
        evaluate_policy(mdp, np.full((2, 1), 0.5))
    with pytest.raises(ValueError, match="pi must contain only finite numbers, got NaN or inf"):
        evaluate_policy(mdp, np.array([[np.nan], [1.0]]))
    with pytest.raises(
        ValueError, match="pi must be a NumPy array or a torch tensor of real numbers, got list"
    ):
        evaluate_policy(mdp, [[1.0], [1.0]])
    with pytest.raises(ValueError, match=r"V must have shape \[S\] = \(2,\), got \(3,\)"):
        q_values(mdp, np.zeros(3))
    with pytest.raises(ValueError, match=r"tol must be a positive real number, got 0"):
        value_iteration(mdp, tol=0)
    with pytest.raises(ValueError, match=r"tol must be a positive real number, got -1"):
        evaluate_policy_iterative(mdp, np.ones((2, 1)), tol=-1)
    with pytest.raises(ValueError, match=r"Q must have shape \[S, A\], got shape \(3,\)"):
        greedy_policy(np.zeros(3))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="horizon must be a non-negative integer, got -1"):
        sample_trajectory(mdp, np.ones((2, 1)), -1, rng)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        sample_trajectories(mdp, np.ones((2, 1)), 3, 0, rng)
    with pytest.raises(ValueError, match=r"rng must be a numpy\.random\.Generator, got int"):
        sample_trajectory(mdp, np.ones((2, 1)), 3, 0)
    with pytest.raises(ValueError, match=r"a trajectory needs states \[..., T\+1\], actions"):
        Trajectory(states=np.array([0, 1]), actions=np.array([0, 0]), rewards=np.zeros(2))
    with pytest.raises(ValueError, match=r"traj.states must lie in \[0, 2\), got values 0..5"):
        trajectory_log_prob(
            mdp, np.ones((2, 1)), Trajectory(np.array([0, 5]), np.array([0]), np.zeros(1))
        )
    with pytest.raises(ValueError, match=r"traj.actions must lie in \[0, 1\), got values 3..3"):
        trajectory_log_prob(
            mdp, np.ones((2, 1)), Trajectory(np.array([0, 1]), np.array([3]), np.zeros(1))
        )
