"""Policies as ``torch.distributions`` objects: tabular softmax, MLP categorical, diagonal Gaussian.

A policy here is a module with a ``distribution(x)`` method that returns the distribution
π_θ(· | x) for a batch of states or observations. Sampling, ``log_prob`` and ``entropy``
then come from :mod:`torch.distributions`. Logits always go in through ``logits=`` (which
applies ``log_softmax`` internally), never through ``log(softmax(...))``, which loses
precision when a probability underflows.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np
import torch
from torch import Tensor, nn
from torch.distributions import Categorical, Independent, Normal

from pglib import _checks

#: A size guard on one layer's width (a 65,536 x 65,536 float32 layer takes 16 GiB).
MAX_LAYER_WIDTH = 65_536

__all__ = [
    "mlp",
    "TabularSoftmaxPolicy",
    "MLPCategoricalPolicy",
    "DiagonalGaussianPolicy",
]


def mlp(
    sizes: Sequence[int],
    activation: type[nn.Module] = nn.Tanh,
    output_activation: type[nn.Module] | None = None,
) -> nn.Sequential:
    """A fully connected network with layer widths ``sizes`` = [in, hidden..., out].

    ``activation`` follows every hidden layer; ``output_activation`` (if given) follows the
    last one. ``mlp([4, 64, 2])`` maps [B, 4] -> [B, 2]. Introduced in Chapter 1.
    """
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, (Sequence, np.ndarray)):
        raise ValueError(f"sizes must be a list of layer widths, got {_checks.describe(sizes)}")
    sizes = [
        _checks.positive_int("every layer width", size, limit=MAX_LAYER_WIDTH) for size in sizes
    ]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output width, got {sizes}")
    _check_activation("activation", activation)
    if output_activation is not None:
        _check_activation("output_activation", output_activation)
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        is_last = index == len(sizes) - 2
        if not is_last:
            layers.append(activation())
        elif output_activation is not None:
            layers.append(output_activation())
    return nn.Sequential(*layers)


def _check_hidden_sizes(hidden_sizes: object) -> None:
    if isinstance(hidden_sizes, (str, bytes)) or not isinstance(
        hidden_sizes, (Sequence, np.ndarray)
    ):
        raise ValueError(
            f"hidden_sizes must be a tuple of layer widths, got {_checks.describe(hidden_sizes)}"
        )


def _check_activation(name: str, activation: object) -> None:
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise ValueError(
            f"{name} must be a torch.nn.Module class such as nn.Tanh, "
            f"got {_checks.describe(activation)}"
        )


def _as_observations(obs: Tensor | np.ndarray, obs_dim: int, like: Tensor) -> Tensor:
    """``obs`` as a tensor [..., obs_dim] with the dtype and device of ``like``, or a ValueError."""
    # A NaN observation would give NaN logits, and a sampler would still pick an action.
    obs = _checks.real_array("observations", obs, sequences=True)
    obs = torch.as_tensor(obs, dtype=like.dtype, device=like.device)
    if obs.ndim == 0 or obs.shape[-1] != obs_dim:
        raise ValueError(
            f"observations must have shape [obs_dim] or [batch, obs_dim] with obs_dim={obs_dim}, "
            f"got shape {tuple(obs.shape)}"
        )
    return obs


class TabularSoftmaxPolicy(nn.Module):
    """π_θ(a|s) = softmax(θ[s])_a with one float64 logit per state-action pair, θ: [S, A].

    ``distribution(states)`` takes integer states of any shape [...] and returns a
    ``Categorical`` with batch shape [...]. Introduced in Chapter 4.
    """

    def __init__(self, logits: Tensor | np.ndarray) -> None:
        super().__init__()
        # -inf is refused too: use a large negative number for an excluded action.
        logits = _checks.real_array(
            "logits", logits, shape=("S", "A"), nonempty=True, sequences=True
        )
        logits = torch.as_tensor(logits, dtype=torch.float64)
        self.logits = nn.Parameter(logits.detach().clone())

    @property
    def n_states(self) -> int:
        """Number of states S."""
        return self.logits.shape[0]

    @property
    def n_actions(self) -> int:
        """Number of actions A."""
        return self.logits.shape[1]

    def distribution(self, states: Tensor | np.ndarray) -> Categorical:
        """π_θ(· | s) for integer ``states`` [...]: a Categorical with batch shape [...]."""
        _checks.index_array("states", states, high=self.n_states)
        states = torch.as_tensor(states, device=self.logits.device)
        return Categorical(logits=self.logits[states.long()])

    def probs(self) -> Tensor:
        """The policy as a float64 table π[s, a] = π_θ(a|s), shape [S, A]; rows sum to 1."""
        return torch.softmax(self.logits, dim=-1)


class MLPCategoricalPolicy(nn.Module):
    """π_θ(·|o) = Categorical(logits=f_θ(o)) with an MLP f_θ: [B, obs_dim] -> [B, n_actions].

    For discrete action spaces such as CartPole's. Introduced in Chapter 1.
    """

    def __init__(
        self,
        obs_dim: int,
        n_actions: int,
        hidden_sizes: Sequence[int] = (64,),
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__()
        obs_dim = _checks.positive_int("obs_dim", obs_dim, limit=MAX_LAYER_WIDTH)
        n_actions = _checks.positive_int("n_actions", n_actions, limit=MAX_LAYER_WIDTH)
        _check_hidden_sizes(hidden_sizes)
        self.obs_dim = obs_dim
        self.n_actions = n_actions
        self.logits_net = mlp([obs_dim, *hidden_sizes, n_actions], activation)

    def forward(self, obs: Tensor | np.ndarray) -> Tensor:
        """Action logits, [..., obs_dim] -> [..., n_actions]."""
        first_layer = self.logits_net[0].weight  # its dtype and device; cheaper than parameters()
        return self.logits_net(_as_observations(obs, self.obs_dim, first_layer))

    def distribution(self, obs: Tensor | np.ndarray) -> Categorical:
        """π_θ(· | o) for observations [..., obs_dim]: a Categorical with batch shape [...]."""
        return Categorical(logits=self(obs))

    def sample(self, obs: Tensor | np.ndarray) -> Tensor:
        """Actions a ~ π_θ(· | o) for observations [..., obs_dim] -> [...] (int64).

        The same law as ``distribution(obs).sample()``, drawn by the Gumbel-max trick:
        argmax_a (logits_a + g_a) with g_a = −log E_a, E_a ~ Exp(1) independent. It skips
        building a distribution object, which costs more than the network itself when the
        rollout loop calls it once per environment step. Introduced in Chapter 8.
        """
        logits = self(obs)
        gumbel = -torch.empty_like(logits).exponential_().log()
        return (logits + gumbel).argmax(dim=-1)


class DiagonalGaussianPolicy(nn.Module):
    """π_θ(·|o) = N(μ_θ(o), diag(σ²)) with an MLP mean and a state-independent log σ.

    ``log_std`` is a parameter of shape [act_dim], initialised to ``log_std_init``.
    ``distribution(obs)`` returns ``Independent(Normal(μ, σ), 1)``, so ``log_prob`` sums
    over action dimensions: log π(a|o) = Σ_i log N(a_i; μ_i, σ_i). Introduced in Chapter 5.
    """

    def __init__(
        self,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: Sequence[int] = (64,),
        log_std_init: float = -0.5,
        activation: type[nn.Module] = nn.Tanh,
    ) -> None:
        super().__init__()
        obs_dim = _checks.positive_int("obs_dim", obs_dim, limit=MAX_LAYER_WIDTH)
        act_dim = _checks.positive_int("act_dim", act_dim, limit=MAX_LAYER_WIDTH)
        _check_hidden_sizes(hidden_sizes)
        log_std_init = _checks.real("log_std_init", log_std_init)
        self.obs_dim = obs_dim
        self.act_dim = act_dim
        self.mu_net = mlp([obs_dim, *hidden_sizes, act_dim], activation)
        self.log_std = nn.Parameter(torch.full((act_dim,), log_std_init))

    def forward(self, obs: Tensor | np.ndarray) -> Tensor:
        """The mean action μ_θ(o), [..., obs_dim] -> [..., act_dim]."""
        return self.mu_net(_as_observations(obs, self.obs_dim, self.log_std))

    def distribution(self, obs: Tensor | np.ndarray) -> Independent:
        """π_θ(· | o) for observations [..., obs_dim]: batch shape [...], event shape [act_dim]."""
        mu = self(obs)
        return Independent(Normal(mu, self.log_std.exp().expand_as(mu)), 1)

    def sample(self, obs: Tensor | np.ndarray) -> Tensor:
        """Actions a ~ π_θ(· | o) for observations [..., obs_dim] -> [..., act_dim].

        The same law as ``distribution(obs).sample()``, drawn as μ_θ(o) + σ ⊙ ε with
        ε ~ N(0, I), without building a distribution object (the rollout loop calls it once
        per environment step). The actions are not bounded: a caller that acts in a bounded
        space clips them there. Introduced in Chapter 10.
        """
        mu = self(obs)
        return mu + self.log_std.exp() * torch.randn_like(mu)
