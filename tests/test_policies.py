"""pglib.policies: closed-form log-probabilities, entropies and scores, and argument checks."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn

from pglib.policies import (
    DiagonalGaussianPolicy,
    MLPCategoricalPolicy,
    TabularSoftmaxPolicy,
    mlp,
)


def test_mlp_layers_follow_the_sizes() -> None:
    net = mlp([4, 8, 3, 2], activation=nn.ReLU, output_activation=nn.Softplus)
    kinds = [type(layer) for layer in net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear, nn.Softplus]
    assert [(m.in_features, m.out_features) for m in net if isinstance(m, nn.Linear)] == [
        (4, 8),
        (8, 3),
        (3, 2),
    ]
    assert net(torch.zeros(5, 4)).shape == (5, 2)


def test_mlp_without_hidden_layers_is_one_linear_map() -> None:
    assert [type(layer) for layer in mlp([3, 2])] == [nn.Linear]


@pytest.mark.parametrize("sizes", [[4], [], [4, 0, 2], [4, 2.5, 2]])
def test_mlp_rejects_bad_sizes(sizes: list) -> None:
    with pytest.raises(ValueError, match=r"sizes must list|layer width must be a positive"):
        mlp(sizes)


def test_tabular_probabilities_by_hand() -> None:
    # Logits [0, log 3] give π = [1/4, 3/4].
    policy = TabularSoftmaxPolicy(np.array([[0.0, math.log(3.0)], [0.0, 0.0]]))
    assert policy.logits.dtype == torch.float64
    expected = torch.tensor([[0.25, 0.75], [0.5, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(policy.probs(), expected, rtol=0, atol=1e-15)
    dist = policy.distribution(torch.tensor([0, 0, 1]))
    torch.testing.assert_close(
        dist.log_prob(torch.tensor([0, 1, 1])),
        torch.tensor([math.log(0.25), math.log(0.75), math.log(0.5)], dtype=torch.float64),
    )
    entropy0 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    torch.testing.assert_close(
        dist.entropy(), torch.tensor([entropy0, entropy0, math.log(2.0)], dtype=torch.float64)
    )


def test_tabular_score_is_indicator_minus_probabilities() -> None:
    # ∇_θ log π(a|s) is e_a − π(·|s) in row s and zero elsewhere.
    policy = TabularSoftmaxPolicy(torch.tensor([[0.3, -1.0, 2.0], [0.0, 0.5, 0.1]]))
    policy.distribution(torch.tensor(1)).log_prob(torch.tensor(2)).backward()
    expected = torch.zeros(2, 3, dtype=torch.float64)
    expected[1] = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64) - policy.probs()[1].detach()
    torch.testing.assert_close(policy.logits.grad, expected)


def test_extreme_logits_stay_finite() -> None:
    # log(softmax) would give log(0) = -inf here; logits= computes log_softmax stably.
    policy = TabularSoftmaxPolicy(torch.tensor([[0.0, -2000.0]]))
    log_prob = policy.distribution(torch.tensor(0)).log_prob(torch.tensor(1))
    assert float(log_prob.detach()) == pytest.approx(-2000.0)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (4, 3), elements=st.floats(-30, 30)))
def test_tabular_rows_are_distributions(logits: np.ndarray) -> None:
    probs = TabularSoftmaxPolicy(logits).probs()
    assert bool((probs >= 0).all())
    torch.testing.assert_close(probs.sum(-1), torch.ones(4, dtype=torch.float64))


def test_mlp_categorical_matches_log_softmax_of_its_logits() -> None:
    torch.manual_seed(0)
    policy = MLPCategoricalPolicy(4, 3, hidden_sizes=(16, 16))
    obs = torch.randn(7, 4)
    logits = policy(obs)
    assert logits.shape == (7, 3)
    dist = policy.distribution(obs.numpy())  # NumPy observations, as Gymnasium returns them
    actions = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    log_pi = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    torch.testing.assert_close(dist.log_prob(actions), log_pi[torch.arange(7), actions])
    torch.testing.assert_close(dist.entropy(), -(log_pi.exp() * log_pi).sum(-1))


def test_mlp_categorical_sample_follows_its_distribution() -> None:
    # Two observations, three actions with clearly different probabilities; 20k draws each.
    torch.manual_seed(0)
    policy = MLPCategoricalPolicy(2, 3, hidden_sizes=(4,))
    with torch.no_grad():
        policy.logits_net[-1].bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    obs = torch.tensor([[0.3, -0.2], [-1.0, 2.0]])
    probs = policy.distribution(obs).probs.detach()
    n = 20_000
    actions = policy.sample(obs.expand(n, 2, 2))
    assert actions.shape == (n, 2) and actions.dtype == torch.int64
    frequencies = torch.stack([(actions == a).double().mean(0) for a in range(3)], dim=-1)
    # Each frequency has a standard error of at most sqrt(0.25 / n) = 0.0035; allow 4 of them.
    torch.testing.assert_close(frequencies, probs.double(), rtol=0, atol=0.014)


def test_observations_follow_the_parameters_dtype() -> None:
    # Gymnasium returns float32 NumPy arrays; a float64 policy must still accept them.
    policy = MLPCategoricalPolicy(4, 2).double()
    assert policy.distribution(np.zeros((3, 4), dtype=np.float32)).logits.dtype == torch.float64
    gaussian = DiagonalGaussianPolicy(4, 2).double()
    assert gaussian.distribution(np.zeros(4, dtype=np.float32)).mean.dtype == torch.float64


def test_mlp_categorical_accepts_a_single_observation() -> None:
    policy = MLPCategoricalPolicy(4, 2)
    assert policy.distribution(torch.zeros(4)).batch_shape == ()


def test_gaussian_log_prob_and_entropy_closed_form() -> None:
    torch.manual_seed(1)
    policy = DiagonalGaussianPolicy(3, 2, hidden_sizes=(8,), log_std_init=-0.5)
    obs, actions = torch.randn(5, 3), torch.randn(5, 2)
    dist = policy.distribution(obs)
    assert dist.batch_shape == (5,) and dist.event_shape == (2,)
    mu, sigma = policy(obs), math.exp(-0.5)
    # log N(a; μ, σ² I) = −½ Σ_i ((a_i − μ_i)/σ)² − d log σ − (d/2) log 2π, with d = 2.
    expected = (
        -0.5 * (((actions - mu) / sigma) ** 2).sum(-1) - 2 * math.log(sigma) - math.log(2 * math.pi)
    )
    torch.testing.assert_close(dist.log_prob(actions), expected)
    # H = d/2 · (1 + log 2π) + d log σ, the same for every observation.
    entropy = 1.0 + math.log(2 * math.pi) + 2 * math.log(sigma)
    torch.testing.assert_close(dist.entropy(), torch.full((5,), entropy))


def test_gaussian_log_std_is_a_learnable_parameter() -> None:
    policy = DiagonalGaussianPolicy(2, 3, log_std_init=0.0)
    assert any(p is policy.log_std for p in policy.parameters())
    policy.distribution(torch.zeros(2)).log_prob(torch.ones(3)).backward()
    # ∂/∂log σ of log N(1; 0, σ²) at σ = 1 is (a − μ)²/σ² − 1 with μ the network output.
    mu = policy(torch.zeros(2)).detach()
    torch.testing.assert_close(policy.log_std.grad, (1.0 - mu) ** 2 - 1.0)


def test_tabular_rejects_bad_logits_and_states() -> None:
    with pytest.raises(ValueError, match=r"logits must have shape \[S, A\]"):
        TabularSoftmaxPolicy(torch.zeros(9))
    with pytest.raises(ValueError, match="logits must contain only finite numbers"):
        TabularSoftmaxPolicy(torch.tensor([[0.0, -math.inf]]))
    policy = TabularSoftmaxPolicy(torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"states must lie in \[0, 3\), got values 0..3"):
        policy.distribution(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="states must hold integer indices, got dtype"):
        policy.distribution(torch.tensor([0.0]))


def test_network_policies_reject_bad_shapes() -> None:
    message = r"observations must have shape \[obs_dim\] or \[batch, obs_dim\] with obs_dim=4"
    with pytest.raises(ValueError, match=message):
        MLPCategoricalPolicy(4, 2).distribution(torch.zeros(3, 5))
    with pytest.raises(ValueError, match=message):
        DiagonalGaussianPolicy(4, 2).distribution(torch.tensor(1.0))
    with pytest.raises(ValueError, match="obs_dim must be a positive integer"):
        MLPCategoricalPolicy(0, 2)
    with pytest.raises(ValueError, match="act_dim must be a positive integer"):
        DiagonalGaussianPolicy(3, 0)
