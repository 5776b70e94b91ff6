"""pglib.returns: discounted returns, reward-to-go and GAE, with episode ends."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pglib import discounted_return, gae, reward_to_go

rewards_strategy = arrays(
    np.float64,
    st.integers(1, 12),
    elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False),
)
gammas = st.floats(0.0, 1.0)


def test_reward_to_go_of_three_ones_with_half_discount() -> None:
    # 1 + 0.5 * (1 + 0.5 * 1) = 1.75, then 1 + 0.5 * 1 = 1.5, then 1.
    np.testing.assert_allclose(reward_to_go(np.array([1.0, 1.0, 1.0]), 0.5), [1.75, 1.5, 1.0])


def test_the_two_trajectories_of_the_source_notes() -> None:
    # s1→s2→s5→s8→s9 earns 0, 0, 0, +1; s1→s4→s7→s8→s9 earns 0, −1 (s7 forbidden), 0, +1.
    assert discounted_return(np.array([0.0, 0.0, 0.0, 1.0]), 1.0) == 1.0
    assert discounted_return(np.array([0.0, -1.0, 0.0, 1.0]), 1.0) == 0.0
    assert discounted_return(np.array([0.0, 0.0, 0.0, 1.0]), 0.9) == pytest.approx(0.9**3)


def test_torch_in_torch_out_and_gradients_flow() -> None:
    rewards = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    rtg = reward_to_go(rewards, 0.5)
    assert isinstance(rtg, torch.Tensor)
    torch.testing.assert_close(rtg, torch.tensor([1.75, 1.5, 1.0]))
    rtg[0].backward()
    torch.testing.assert_close(rewards.grad, torch.tensor([1.0, 0.5, 0.25]))
    assert isinstance(reward_to_go(np.array([1.0]), 0.5), np.ndarray)
    assert isinstance(discounted_return(torch.tensor([1.0, 2.0]), 0.5), float)


def test_integer_rewards_give_float_returns() -> None:
    np.testing.assert_allclose(reward_to_go(np.array([1, 1]), 0.5), [1.5, 1.0])
    assert reward_to_go(torch.tensor([1, 1]), 0.5).dtype == torch.get_default_dtype()


def test_termination_restarts_the_recursion_in_each_column() -> None:
    rewards = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    terminated = np.array([[True, False], [False, False], [True, True]])
    expected = np.array([[1.0, 2 + 2 * 0.5 + 2 * 0.25], [1.5, 3.0], [1.0, 2.0]])
    np.testing.assert_allclose(reward_to_go(rewards, 0.5, terminated=terminated), expected)


def test_truncation_cuts_or_bootstraps() -> None:
    rewards = np.array([1.0, 1.0])
    truncated = np.array([False, True])
    np.testing.assert_allclose(reward_to_go(rewards, 0.5, truncated=truncated), [1.5, 1.0])
    bootstrap = np.array([0.0, 4.0])  # V(s_2) = 4 stands in for the unseen future
    np.testing.assert_allclose(
        reward_to_go(rewards, 0.5, truncated=truncated, bootstrap=bootstrap), [2.5, 3.0]
    )
    # A step flagged both terminated and truncated is a termination: no bootstrap.
    both = np.array([False, True])
    np.testing.assert_allclose(
        reward_to_go(rewards, 0.5, terminated=both, truncated=both, bootstrap=bootstrap), [1.5, 1.0]
    )


@settings(max_examples=50, deadline=None)
@given(rewards_strategy, gammas)
def test_reward_to_go_satisfies_its_recursion(rewards: np.ndarray, gamma: float) -> None:
    rtg = reward_to_go(rewards, gamma)
    np.testing.assert_allclose(rtg[:-1], rewards[:-1] + gamma * rtg[1:], atol=1e-9)
    assert rtg[-1] == rewards[-1]
    assert discounted_return(rewards, gamma) == pytest.approx(
        sum(gamma**t * r for t, r in enumerate(rewards)), abs=1e-9
    )


@settings(max_examples=50, deadline=None)
@given(rewards_strategy, gammas, st.floats(0.0, 1.0), st.data())
def test_gae_limits(rewards: np.ndarray, gamma: float, lam: float, data: st.DataObject) -> None:
    T = rewards.size
    values = data.draw(arrays(np.float64, T + 1, elements=st.floats(-5, 5)))
    truncated = np.zeros(T, dtype=bool)
    truncated[-1] = True
    v, v_next = values[:-1], values[1:]  # consistent: next_values[t] = values[t + 1]
    # λ = 1: reward-to-go, bootstrapped at the truncation, minus the values.
    np.testing.assert_allclose(
        gae(rewards, v, v_next, gamma, 1.0, truncated=truncated),
        reward_to_go(rewards, gamma, truncated=truncated, bootstrap=v_next) - v,
        atol=1e-8,
    )
    # λ = 0: the one-step TD error.
    np.testing.assert_allclose(
        gae(rewards, v, v_next, gamma, 0.0, truncated=truncated),
        rewards + gamma * v_next - v,
        atol=1e-12,
    )
    # A terminated last step ignores the value after it.
    terminated = truncated
    np.testing.assert_allclose(
        gae(rewards, v, v_next, gamma, lam, terminated=terminated)[-1], rewards[-1] - v[-1]
    )


def test_gae_on_torch_matches_numpy() -> None:
    rewards = np.array([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0]])
    values = np.array([[0.5, 0.2], [0.1, 0.3], [0.4, 0.0]])
    next_values = np.array([[0.1, 0.3], [0.4, 0.9], [0.7, 0.6]])
    truncated = np.array([[False, False], [False, True], [True, False]])
    terminated = np.array([[False, False], [False, False], [False, True]])
    expected = gae(
        rewards, values, next_values, 0.9, 0.8, terminated=terminated, truncated=truncated
    )
    got = gae(
        torch.tensor(rewards),
        torch.tensor(values),
        torch.tensor(next_values),
        0.9,
        0.8,
        terminated=torch.tensor(terminated),
        truncated=torch.tensor(truncated),
    )
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    # float64 throughout: γ and λ must not pass through float32 on the way (0.9 is not exact)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-15, atol=0)
    # Column 1 ends at t = 1 (truncated): A_1 = δ_1 = 1 + 0.9·0.9 − 0.3; t = 2 restarts.
    assert expected[1, 1] == pytest.approx(1 + 0.9 * 0.9 - 0.3)
    assert expected[2, 1] == pytest.approx(1 - 0.0)


def test_validation_errors() -> None:
    ones = np.ones(3)
    with pytest.raises(ValueError, match=r"gamma must be a real number in \[0, 1\], got 1.5"):
        reward_to_go(ones, 1.5)
    with pytest.raises(
        ValueError, match=r"gamma must be a finite real number in \[0, 1\], got nan"
    ):
        discounted_return(ones, float("nan"))
    with pytest.raises(ValueError, match=r"lam must be a real number in \[0, 1\], got -0.1"):
        gae(ones, ones, ones, 0.9, -0.1)
    with pytest.raises(
        ValueError,
        match="rewards must be a NumPy array or a torch tensor of real numbers, got list",
    ):
        reward_to_go([1.0, 2.0], 0.5)
    with pytest.raises(
        ValueError, match=r"rewards must have shape \[T\] or \[T, N\] with T >= 1, got shape \(0,\)"
    ):
        reward_to_go(np.array([]), 0.5)
    with pytest.raises(ValueError, match=r"rewards must have shape \[T\], got shape \(2, 2\)"):
        discounted_return(np.ones((2, 2)), 0.5)
    with pytest.raises(
        ValueError, match=r"terminated must have the shape of rewards \(3,\), got \(2,\)"
    ):
        reward_to_go(ones, 0.5, terminated=np.array([False, True]))
    with pytest.raises(
        ValueError, match=r"bootstrap must have the shape of rewards \(3,\), got \(1,\)"
    ):
        reward_to_go(ones, 0.5, truncated=np.array([False, False, True]), bootstrap=np.ones(1))
    with pytest.raises(ValueError, match="the last step of every column must be flagged"):
        reward_to_go(ones, 0.5, truncated=np.array([True, False, False]))
    with pytest.raises(
        ValueError, match=r"values must have the shape of rewards \(3,\), got \(2,\)"
    ):
        gae(ones, np.ones(2), ones, 0.9, 0.9)
    with pytest.raises(
        ValueError, match=r"next_values must have the shape of rewards \(3,\), got \(4,\)"
    ):
        gae(ones, ones, np.ones(4), 0.9, 0.9)


@pytest.mark.parametrize("to_array", [np.array, torch.tensor], ids=["numpy", "torch"])
def test_nan_and_inf_are_rejected_not_propagated(to_array) -> None:
    with pytest.raises(ValueError, match="rewards must contain only finite numbers, got NaN"):
        reward_to_go(to_array([1.0, float("nan"), 1.0]), 0.9)
    with pytest.raises(ValueError, match="bootstrap must contain only finite numbers"):
        reward_to_go(
            to_array([1.0, 1.0]),
            0.9,
            truncated=to_array([False, True]),
            bootstrap=to_array([0.0, float("inf")]),
        )
    with pytest.raises(ValueError, match="values must contain only finite numbers"):
        gae(to_array([1.0, 1.0]), to_array([float("nan"), 0.0]), to_array([0.0, 0.0]), 0.9, 0.9)
