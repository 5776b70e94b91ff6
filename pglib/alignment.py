"""The alignment losses as pure functions of tensors: group advantages, KL estimators, GRPO's
objective, and the preference losses (Bradley–Terry, DPO, KTO).

Each function takes the log-probabilities a language model gave (per token [B, T] with a
mask, or summed over a completion [B]) and returns a loss or an estimate; none samples, steps
an optimiser or knows about a model. That keeps each method one short function, lets a test
compare it with another library on the same tensors, and leaves the trainers to share one
sampling and update loop. Log-probabilities are checked to be <= 0 wherever they count: a
positive one is almost always a negative log-likelihood passed with the wrong sign.

Introduced in Chapters 11 to 15.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from pglib import _checks
from pglib.ppo import clipped_surrogate_terms

__all__ = [
    "ADVANTAGE_METHODS",
    "KL_ESTIMATORS",
    "AGGREGATIONS",
    "group_advantages",
    "kl_estimate",
    "grpo_loss",
    "bradley_terry_loss",
    "dpo_loss",
    "kto_loss",
    "kto_reference_point",
]

#: The group baselines of :func:`group_advantages`.
ADVANTAGE_METHODS = ("grpo", "dr_grpo", "rloo")
#: Schulman's estimators of KL(π ‖ π_ref) from tokens sampled from π.
KL_ESTIMATORS = ("k1", "k2", "k3")
#: How :func:`grpo_loss` turns per-token terms into one number.
AGGREGATIONS = ("sequence", "token", "constant")


def group_advantages(rewards: Tensor, method: str = "grpo", eps: float = 1e-4) -> Tensor:
    """[B, G] rewards of G completions for each of B prompts -> [B, G] advantages.

    With r̄ the group mean and s the group's sample standard deviation (Bessel's correction,
    dividing by G − 1, as TRL does):

    - ``"grpo"`` (Shao et al., 2024, DeepSeekMath): (r − r̄) / (s + eps);
    - ``"dr_grpo"`` (Liu et al., 2025, Dr. GRPO): r − r̄;
    - ``"rloo"`` (Ahmadian et al., 2024): r − (Σ_j r_j − r) / (G − 1), each completion's
      baseline the mean of the other G − 1, so that G/(G − 1) · Â_dr_grpo = A_rloo.

    A group whose rewards are all equal gets zero advantages under every method. G >= 2.
    Introduced in Chapter 12.
    """
    rewards = _checks.float_tensor("rewards", rewards, shape=("B", "G"))
    group = rewards.shape[1]
    if group < 2:
        raise ValueError(
            f"rewards must hold G >= 2 completions per prompt (a group of one has no "
            f"baseline), got shape {tuple(rewards.shape)}"
        )
    method = _checks.choice("method", method, ADVANTAGE_METHODS)
    eps = _checks.real("eps", eps, low=0.0, low_open=True)
    if method == "rloo":
        others = rewards.sum(dim=1, keepdim=True) - rewards
        return rewards - others / (group - 1)
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if method == "dr_grpo":
        return centred
    return centred / (rewards.std(dim=1, keepdim=True) + eps)  # torch's std divides by G − 1


def kl_estimate(logp: Tensor, ref_logp: Tensor, estimator: str = "k3") -> Tensor:
    """Per-token estimates of KL(π ‖ π_ref), for tokens sampled from π; any shape, kept.

    With log r = ref_logp − logp = log(π_ref / π) at the sampled token (Schulman, 2020,
    "Approximating KL divergence"):

    - ``"k1"``: −log r = logp − ref_logp, unbiased, but negative on many tokens;
    - ``"k2"``: ½ (log r)², >= 0 but biased (its mean is not the KL);
    - ``"k3"``: (r − 1) − log r, unbiased and >= 0 (since e^x >= 1 + x).

    The orientation matters: the samples come from π, so r = π_ref / π; swapping the two
    estimates KL(π_ref ‖ π) with the wrong samples, which is neither. k3 is computed as
    expm1(log r) − log r, which never rounds below 0 (exp(x) − x − 1 does, by up to one ulp
    of 1). ``logp`` may carry a gradient; ``ref_logp`` must not. Introduced in Chapter 11.
    """
    logp = _checks.log_probabilities("logp", _checks.float_tensor("logp", logp))
    ref_logp = _checks.detached_like("ref_logp", ref_logp, "logp", logp)
    _checks.log_probabilities("ref_logp", ref_logp)
    estimator = _checks.choice("estimator", estimator, KL_ESTIMATORS)
    log_r = ref_logp - logp
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r**2
    return torch.expm1(log_r) - log_r


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    ref_logp: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float = 0.2,
    beta: float = 0.0,
    aggregation: str = "sequence",
    max_completion_length: int | None = None,
) -> Tensor:
    """GRPO's clipped objective with a k3 KL penalty, as a scalar loss to minimise.

    ``logp`` [B, T] (with a gradient), ``old_logp`` and ``ref_logp`` [B, T] are the log-probs
    of the sampled completion tokens under π_θ, the sampling policy and the reference;
    ``advantages`` [B] holds one advantage per completion (:func:`group_advantages`,
    flattened); ``mask`` [B, T] (bool) marks the completion's tokens, EOS included. The
    per-token term is Chapter 10's :func:`pglib.clipped_surrogate_terms` plus the penalty,

        ℓ_t = −min(ρ_t A, clip(ρ_t, 1 − ε, 1 + ε) A) + β · k3_t,  ρ_t = exp(logp_t − old_logp_t),

    and ``aggregation`` decides each token's weight, with |o_b| the length of completion b:

    - ``"sequence"``: (1/B) Σ_b (1/|o_b|) Σ_t ℓ_bt, each completion's mean, then the mean
      over completions (Shao et al., 2024, DeepSeekMath; TRL's ``loss_type="grpo"``). A
      long completion's tokens weigh less, which biases lengths (Chapter 12 measures it);
    - ``"token"``: Σ ℓ / Σ_b |o_b|, every token alike (TRL's ``"bnpo"``);
    - ``"constant"``: Σ ℓ / (B · ``max_completion_length``) (Liu et al., 2025, Dr. GRPO;
      TRL's ``"dr_grpo"``), which needs ``max_completion_length`` >= T.

    Positions outside the mask may hold any finite values: they get ρ = 1 and no KL before
    aggregation, so they change neither the loss nor its gradient. Every completion must
    have at least one token. ``ref_logp`` may be None when ``beta`` is 0. At θ = θ_old with
    β = 0 the gradient is the policy-gradient estimate −Σ_bt w_bt A_b ∇logp_bt with the
    weights above. Unlike TRL's default (``use_bias_correction_kl=True``), the KL term is
    not multiplied by ρ. Introduced in Chapter 12.
    """
    logp = _checks.float_tensor("logp", logp, shape=("B", "T"))
    batch, length = logp.shape
    mask = torch.as_tensor(_checks.bool_flags("mask", mask, (batch, length)), device=logp.device)
    lengths = mask.sum(dim=1)
    if bool((lengths == 0).any()):
        empty = torch.nonzero(lengths == 0).flatten().tolist()
        raise ValueError(
            f"mask must mark at least one token in every row (a completion holds at least "
            f"its EOS), got rows with none: {empty[:5]}"
        )
    old_logp = _checks.detached_like("old_logp", old_logp, "logp", logp)
    advantages = _checks.detached_like("advantages", advantages, "logp[:, 0]", logp[:, 0])
    beta = _checks.real("beta", beta, low=0.0)
    aggregation = _checks.choice("aggregation", aggregation, AGGREGATIONS)
    if max_completion_length is not None:
        max_completion_length = _checks.positive_int("max_completion_length", max_completion_length)
        if max_completion_length < length:
            raise ValueError(
                f"max_completion_length must be at least the mask's length T = {length}, "
                f"got {max_completion_length}"
            )
    elif aggregation == "constant":
        raise ValueError(
            "max_completion_length must be given with aggregation='constant' (the normaliser "
            "is B × max_completion_length), got None"
        )
    if ref_logp is None:
        if beta > 0:
            raise ValueError(f"ref_logp must be a tensor when beta > 0, got None (beta={beta:g})")
    else:
        ref_logp = _checks.detached_like("ref_logp", ref_logp, "logp", logp)
        _checks.log_probabilities("ref_logp", ref_logp, where=mask)
    _checks.log_probabilities("logp", logp, where=mask)
    _checks.log_probabilities("old_logp", old_logp, where=mask)

    # Zero every log-prob outside the mask before exp(): padding may hold huge values, and
    # an inf there would turn the masked-out gradient into NaN (0 · inf).
    logp, old_logp = logp.masked_fill(~mask, 0.0), old_logp.masked_fill(~mask, 0.0)
    terms = clipped_surrogate_terms(logp, old_logp, advantages[:, None].expand_as(logp), clip_eps)
    if beta > 0:
        terms = terms + beta * kl_estimate(logp, ref_logp.masked_fill(~mask, 0.0), "k3")
    terms = terms * mask
    if aggregation == "sequence":
        return (terms.sum(dim=1) / lengths).mean()
    if aggregation == "token":
        return terms.sum() / lengths.sum()
    return terms.sum() / (batch * max_completion_length)


def _sequence_logps(
    policy_names: tuple[str, ...], ref_names: tuple[str, ...], values: tuple[object, ...]
) -> list[Tensor]:
    """Checked [B] summed log-probs: the policy's floating-point tensors first (they may carry
    a gradient), then the reference's (they may not), all of the first one's shape."""
    first = _checks.float_tensor(policy_names[0], values[0], shape=("B",))
    checked = [first]
    for name, value in zip(policy_names[1:], values[1 : len(policy_names)], strict=True):
        checked.append(_checks.float_tensor(name, value, shape=tuple(first.shape)))
    for name, value in zip(ref_names, values[len(policy_names) :], strict=True):
        checked.append(_checks.detached_like(name, value, policy_names[0], first))
    for name, tensor in zip(policy_names + ref_names, checked, strict=True):
        _checks.log_probabilities(name, tensor)
    return checked


def bradley_terry_loss(chosen_rewards: Tensor, rejected_rewards: Tensor) -> Tensor:
    """The Bradley–Terry negative log-likelihood of B preferences, mean(−log σ(r_c − r_r)).

    ``chosen_rewards`` and ``rejected_rewards`` are [B] scalar rewards (a reward model's
    outputs, both may carry a gradient) of the preferred and the other completion of each
    pair. The model says P(c ≻ r) = σ(r_c − r_r) (Bradley and Terry, 1952), so the loss only
    sees reward differences: adding a constant to every reward changes nothing.
    Introduced in Chapter 13.
    """
    chosen = _checks.float_tensor("chosen_rewards", chosen_rewards, shape=("B",))
    rejected = _checks.float_tensor("rejected_rewards", rejected_rewards, shape=tuple(chosen.shape))
    return -F.logsigmoid(chosen - rejected).mean()


def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    beta: float = 0.1,
) -> tuple[Tensor, Tensor, Tensor]:
    """DPO's loss and implicit rewards for B preference pairs (Rafailov et al., 2023).

    Every input is [B], a completion's log-prob summed over its tokens, under the policy (may
    carry a gradient) or the reference (may not). With the implicit reward
    r̂ = β (log π(y|x) − log π_ref(y|x)), the Bradley–Terry loss on r̂ is

        loss = mean(−log σ(β [(π_c − ref_c) − (π_r − ref_r)])),

    whose minimiser over all policies is π* ∝ π_ref · exp(r/β) when the preferences follow a
    Bradley–Terry model with reward r. Returns (loss, chosen_rewards, rejected_rewards), the
    rewards [B] being r̂ detached (TRL's ``loss_type="sigmoid"``). Introduced in Chapter 14.
    """
    names = ("policy_chosen_logps", "policy_rejected_logps")
    ref_names = ("ref_chosen_logps", "ref_rejected_logps")
    values = (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    policy_c, policy_r, ref_c, ref_r = _sequence_logps(names, ref_names, values)
    beta = _checks.real("beta", beta, low=0.0, low_open=True)
    chosen, rejected = beta * (policy_c - ref_c), beta * (policy_r - ref_r)
    loss = -F.logsigmoid(chosen - rejected).mean()
    return loss, chosen.detach(), rejected.detach()


def kto_loss(
    policy_logps: Tensor,
    ref_logps: Tensor,
    desirable: Tensor,
    reference_point: float | Tensor,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[Tensor, Tensor]:
    """KTO's loss and implicit rewards for B unpaired completions (Ethayarajh et al., 2024).

    ``policy_logps`` (may carry a gradient) and ``ref_logps`` (may not) are [B] summed
    log-probs; ``desirable`` [B] (bool) labels each completion; ``reference_point`` is z₀ >= 0,
    from :func:`kto_reference_point`. With r = policy_logps − ref_logps, a desirable sample's
    term is λ_D (1 − σ(β (r − z₀))) and an undesirable one's λ_U (1 − σ(β (z₀ − r))); the loss
    is the mean over all B samples. The paper recommends weights with
    λ_D n_D / (λ_U n_U) in [1, 4/3] for n_D desirable and n_U undesirable samples. Returns
    (loss, rewards), the rewards [B] being β r detached (TRL's ``loss_type="kto"``).
    Introduced in Chapter 15.
    """
    policy, ref = _sequence_logps(("policy_logps",), ("ref_logps",), (policy_logps, ref_logps))
    desirable = torch.as_tensor(
        _checks.bool_flags("desirable", desirable, tuple(policy.shape)), device=policy.device
    )
    z0 = _checks.real("reference_point", reference_point, low=0.0)
    beta = _checks.real("beta", beta, low=0.0, low_open=True)
    weight_d = _checks.real("desirable_weight", desirable_weight, low=0.0, low_open=True)
    weight_u = _checks.real("undesirable_weight", undesirable_weight, low=0.0, low_open=True)
    log_ratio = policy - ref
    gain = weight_d * (1 - torch.sigmoid(beta * (log_ratio - z0)))
    loss_aversion = weight_u * (1 - torch.sigmoid(beta * (z0 - log_ratio)))
    loss = torch.where(desirable, gain, loss_aversion).mean()
    return loss, (beta * log_ratio).detach()


def kto_reference_point(policy_logps: Tensor, ref_logps: Tensor) -> Tensor:
    """KTO's reference point z₀ = max(0, mean(policy_logps − ref_logps)), detached (a 0-d tensor).

    It estimates KL(π ‖ π_ref) from B completions, and must be computed on *mismatched*
    (prompt, completion) pairs, as the KTO paper (Ethayarajh et al., 2024) and TRL do: from a
    batch (x_1, y_1), ..., (x_B, y_B), score (x_1, y_B), (x_2, y_1), ..., (x_B, y_{B−1}),
    each completion rolled by one place (``torch.roll(completions, 1, dims=0)``), so that the
    pairs carry no signal about which completion fits its prompt. ``policy_logps`` and
    ``ref_logps`` are [B], those pairs' summed log-probs under the policy and the reference.
    No gradient flows through z₀. Introduced in Chapter 15.
    """
    policy, ref = _sequence_logps(("policy_logps",), ("ref_logps",), (policy_logps, ref_logps))
    return (policy - ref).mean().clamp(min=0.0).detach()
