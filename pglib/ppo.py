"""PPO's objectives: the clipped surrogate and the (optionally clipped) value loss.

PPO (Schulman et al., 2017) reuses each batch for several epochs of minibatch steps. Once θ
has moved away from the θ_old that sampled the batch, the policy-gradient loss of Chapter 8
no longer estimates the gradient; the importance ratio ρ = π_θ(a|s) / π_θ_old(a|s) corrects
for that, and clipping ρ to [1 − ε, 1 + ε] removes the incentive to move further than that in
one batch. These functions are tensor-level, so that the language-model chapters can call the
same code on tokens.

Introduced in Chapter 10.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from pglib import _checks

__all__ = ["SurrogateStats", "clipped_surrogate", "value_loss"]

#: Clip ranges above this are almost certainly a mistake (ε = 0.2 is usual).
MAX_CLIP = 10.0


@dataclass(frozen=True)
class SurrogateStats:
    """Diagnostics of one clipped-surrogate evaluation, as Python floats.

    - ``approx_kl``: the k3 estimate of KL(π_old ‖ π_θ) on the sampled actions,
      mean((ρ − 1) − log ρ), which is ≥ 0 for every sample.
    - ``clip_fraction``: the fraction of samples with |ρ − 1| > ε.
    - ``mean_ratio``: the mean of ρ (1 in expectation under π_old).

    Introduced in Chapter 10.
    """

    approx_kl: float
    clip_fraction: float
    mean_ratio: float

    def __post_init__(self) -> None:
        _checks.real("approx_kl", self.approx_kl)
        _checks.unit_interval("clip_fraction", self.clip_fraction)
        _checks.real("mean_ratio", self.mean_ratio, low=0.0)


def _float_tensor(name: str, x: object) -> Tensor:
    """The input that carries the gradient: a non-empty, finite floating-point tensor."""
    _checks.real_array(name, x, nonempty=True)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point torch tensor, got {_checks.describe(x)}")
    return x


def _same_shape(name: str, x: object, like_name: str, like: Tensor) -> Tensor:
    """``x`` as a tensor like ``like``, after checking it is finite, has its shape, and carries
    no gradient."""
    _checks.real_array(name, x, nonempty=True)
    if tuple(x.shape) != tuple(like.shape):
        raise ValueError(
            f"{name} must have the shape of {like_name}, {tuple(like.shape)}, got {tuple(x.shape)}"
        )
    x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if x.requires_grad:
        raise ValueError(
            f"{name} must carry no gradient (compute it under torch.no_grad() or call "
            ".detach()): the loss would differentiate through it"
        )
    return x


def clipped_surrogate(
    logp: Tensor, old_logp: Tensor, advantages: Tensor, clip_eps: float
) -> tuple[Tensor, SurrogateStats]:
    """PPO's clipped surrogate loss, −mean(min(ρ A, clip(ρ, 1 − ε, 1 + ε) A)), and its stats.

    ``logp`` = log π_θ(a|s) (with a gradient), ``old_logp`` = log π_θ_old(a|s) and
    ``advantages`` A (both without one) share any shape, e.g. [n] or [B, T] flattened by the
    caller after masking. ρ = exp(logp − old_logp). At θ = θ_old every ρ is 1 and the
    gradient equals that of :func:`pglib.policy_gradient_loss`; a sample whose ρ has left
    [1 − ε, 1 + ε] in the direction its advantage favours contributes no gradient.
    Introduced in Chapter 10.
    """
    logp = _float_tensor("logp", logp)
    old_logp = _same_shape("old_logp", old_logp, "logp", logp)
    advantages = _same_shape("advantages", advantages, "logp", logp)
    clip_eps = _checks.real("clip_eps", clip_eps, low=0.0, high=MAX_CLIP, low_open=True)
    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    unclipped = ratio * advantages
    clipped = ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages
    loss = -torch.minimum(unclipped, clipped).mean()
    with torch.no_grad():
        stats = SurrogateStats(
            approx_kl=float(((ratio - 1) - log_ratio).mean()),
            clip_fraction=float(((ratio - 1).abs() > clip_eps).double().mean()),
            mean_ratio=float(ratio.mean()),
        )
    return loss, stats


def value_loss(
    values: Tensor, old_values: Tensor, returns: Tensor, clip_eps: float | None = None
) -> Tensor:
    """The critic's squared error, mean((V − R)²), or PPO's clipped version.

    With ``clip_eps`` = ε, the prediction may move at most ε from ``old_values`` (the
    critic's outputs when the batch was collected) before the error stops rewarding the
    move: mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)). ``values`` carries the
    gradient; ``old_values`` and ``returns`` do not; all share one shape. Introduced in
    Chapter 10.
    """
    values = _float_tensor("values", values)
    old_values = _same_shape("old_values", old_values, "values", values)
    returns = _same_shape("returns", returns, "values", values)
    error = (values - returns) ** 2
    if clip_eps is None:
        return error.mean()
    clip_eps = _checks.real("clip_eps", clip_eps, low=0.0, low_open=True)
    moved = old_values + (values - old_values).clamp(-clip_eps, clip_eps)
    return torch.maximum(error, (moved - returns) ** 2).mean()
