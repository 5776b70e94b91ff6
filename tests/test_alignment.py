"""Tests for pglib.alignment: advantages and KL estimators against hand values and exact
expectations, GRPO's aggregations and gradient, and the preference losses."""

from __future__ import annotations

import math

import hypothesis.strategies as st
import numpy as np
import pytest
import torch
from hypothesis import given, settings

import pglib

F64 = torch.float64
PROPERTY = settings(max_examples=50, deadline=None)


def t(values: object) -> torch.Tensor:
    return torch.tensor(values, dtype=F64)


# --- group advantages -------------------------------------------------------------------------

# One success in a group of four: mean 1/4; the sample std is √((3/4)² + 3 (1/4)²)/3) = 1/2.
ONE_SUCCESS = [[1.0, 0.0, 0.0, 0.0]]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("grpo", [0.75 / (0.5 + 1e-4), -0.25 / (0.5 + 1e-4)]),
        ("dr_grpo", [0.75, -0.25]),
        ("rloo", [1.0 - 0.0, 0.0 - 1 / 3]),  # the others' mean: 0 for the success, 1/3 else
    ],
)
def test_group_advantages_by_hand(method: str, expected: list[float]) -> None:
    advantages = pglib.group_advantages(t(ONE_SUCCESS), method)
    want = t([[expected[0], expected[1], expected[1], expected[1]]])
    torch.testing.assert_close(advantages, want, rtol=1e-14, atol=0)


def test_grpo_advantages_use_bessels_correction_and_eps() -> None:
    rewards = t([[3.0, 1.0], [2.0, 2.0]])  # std of (3, 1) is √2 with G − 1; all equal gives 0
    advantages = pglib.group_advantages(rewards, "grpo", eps=0.5)
    want = t([[1 / (math.sqrt(2) + 0.5), -1 / (math.sqrt(2) + 0.5)], [0.0, 0.0]])
    torch.testing.assert_close(advantages, want, rtol=1e-14, atol=0)


@PROPERTY
@given(
    rewards=st.lists(st.floats(-100, 100), min_size=12, max_size=12),
    group=st.sampled_from([2, 3, 4, 6]),
)
def test_dr_grpo_times_g_over_g_minus_one_is_rloo(rewards: list[float], group: int) -> None:
    r = t(rewards).reshape(-1, group)
    scaled = group / (group - 1) * pglib.group_advantages(r, "dr_grpo")
    torch.testing.assert_close(scaled, pglib.group_advantages(r, "rloo"), rtol=1e-12, atol=1e-10)


# --- KL estimators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [  # π = 1/2, π_ref = 1/4 at the sampled token: log r = log(π_ref/π) = −log 2
        ("k1", math.log(2)),
        ("k2", 0.5 * math.log(2) ** 2),
        ("k3", 0.5 - 1 + math.log(2)),  # (r − 1) − log r with r = 1/2
    ],
)
def test_kl_estimators_by_hand(estimator: str, expected: float) -> None:
    value = pglib.kl_estimate(t([math.log(0.5)]), t([math.log(0.25)]), estimator)
    assert float(value) == pytest.approx(expected, rel=1e-14)


@PROPERTY
@given(
    logp=st.lists(st.floats(-60, 0), min_size=1, max_size=8),
    shift=st.lists(st.floats(-60, 60), min_size=8, max_size=8),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_k3_is_never_negative(logp: list[float], shift: list[float], dtype: torch.dtype) -> None:
    logp_t = torch.tensor(logp, dtype=dtype)
    ref = (logp_t + torch.tensor(shift[: len(logp)], dtype=dtype)).clamp(max=0.0)
    assert bool((pglib.kl_estimate(logp_t, ref, "k3") >= 0).all())


def test_k3_near_zero_does_not_round_below_zero() -> None:
    """exp(x) − x − 1 rounds to −6e-8 at some float32 x near 0; expm1(x) − x does not."""
    x = -torch.logspace(-12, -4, 10_000)
    assert bool(((x.exp() - x - 1) < 0).any())  # the naive form does go negative here
    assert bool((pglib.kl_estimate(torch.zeros_like(x), x, "k3") >= 0).all())


PI = t([0.5, 0.3, 0.2])
PI_REF = t([0.2, 0.5, 0.3])
EXACT_KL = float((PI * (PI / PI_REF).log()).sum())


def expectation_under_pi(estimator: str) -> float:
    """E_{a ~ π}[k(a)], summed exactly over the three tokens (no sampling)."""
    values = pglib.kl_estimate(PI.log(), PI_REF.log(), estimator)
    return float((PI * values).sum())


def test_k1_and_k3_are_unbiased_and_k2_is_not_on_a_small_categorical() -> None:
    # KL = ½ log(5/2) + 0.3 log(3/5) + 0.2 log(2/3) = 0.2238
    assert EXACT_KL == pytest.approx(0.2238, abs=1e-4)
    assert expectation_under_pi("k1") == pytest.approx(EXACT_KL, rel=1e-14)
    # E_π[r − 1 − log r] = Σ π_ref − 1 + KL = KL exactly.
    assert expectation_under_pi("k3") == pytest.approx(EXACT_KL, rel=1e-14)
    # k2's mean is ½ E_π[(log π/π_ref)²], here 0.2655 against a KL of 0.2238.
    half_second_moment = float(0.5 * (PI * (PI / PI_REF).log() ** 2).sum())
    assert expectation_under_pi("k2") == pytest.approx(half_second_moment, rel=1e-14)
    assert expectation_under_pi("k2") - EXACT_KL > 0.04


def test_the_reversed_k3_estimates_something_else() -> None:
    """exp(logp − ref) − (logp − ref) − 1 under π has mean Σ π²/π_ref − 1 − KL, not the KL."""
    reversed_k3 = pglib.kl_estimate(PI_REF.log(), PI.log(), "k3")  # arguments swapped
    mean = float((PI * reversed_k3).sum())
    assert mean == pytest.approx(float((PI**2 / PI_REF).sum()) - 1 - EXACT_KL, rel=1e-12)
    assert abs(mean - EXACT_KL) > 0.1


# --- grpo_loss --------------------------------------------------------------------------------

# Two completions of lengths 2 and 3 in a [2, 4] batch; a constant normaliser of 5 tokens.
MASK = torch.tensor([[True, True, False, False], [True, True, True, False]])
LENGTHS = [2, 3]
MAX_LEN = 5


def batch(fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logp (with a gradient), old_logp = logp and ref_logp = logp − log 2 on the tokens;
    ``fill`` at every padded position."""
    values = t([[-1.0, -0.5, 0.0, 0.0], [-2.0, -0.1, -0.7, 0.0]])
    logp = values.masked_fill(~MASK, fill).requires_grad_(True)
    old = values.masked_fill(~MASK, fill)
    ref = (values - math.log(2)).masked_fill(~MASK, fill)
    return logp, old, ref


ADVANTAGES = t([1.0, -2.0])
K3_HALF = 0.5 - 1 + math.log(2)  # k3 where π_ref/π = 1/2 (ref = logp − log 2)


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [  # at ρ = 1 each token's term is −A_b (+ β k3): −1 on two tokens, +2 on three
        ("sequence", (-1.0 + 2.0) / 2),  # each completion's mean, then the mean
        ("token", (-1.0 * 2 + 2.0 * 3) / 5),  # every token alike
        ("constant", (-1.0 * 2 + 2.0 * 3) / (2 * MAX_LEN)),  # over B × max_completion_length
    ],
)
@pytest.mark.parametrize("beta", [0.0, 0.1])
def test_grpo_aggregations_by_hand(aggregation: str, expected: float, beta: float) -> None:
    logp, old, ref = batch()
    loss = pglib.grpo_loss(
        logp, old, ref, ADVANTAGES, MASK, beta=beta, aggregation=aggregation,
        max_completion_length=MAX_LEN,
    )  # fmt: skip
    share = 5 / (2 * MAX_LEN) if aggregation == "constant" else 1.0  # tokens over normaliser
    assert float(loss.detach()) == pytest.approx(expected + beta * K3_HALF * share, rel=1e-14)


def test_grpo_clips_like_ppo() -> None:
    """ρ = 1.5 with A = 1 is clipped at 1.2 and gives no gradient; with A = −1 it is kept."""
    old = t([[math.log(0.4)]])
    logp = (old + math.log(1.5)).requires_grad_(True)
    mask = torch.tensor([[True]])
    loss = pglib.grpo_loss(logp, old, None, t([1.0]), mask)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(-1.2, rel=1e-14)
    assert float(logp.grad) == 0.0
    logp.grad = None
    pglib.grpo_loss(logp, old, None, t([-1.0]), mask).backward()
    assert float(logp.grad) == pytest.approx(1.5, rel=1e-14)  # d(ρ A)/d logp = ρ A, negated


def per_token_weights(aggregation: str) -> torch.Tensor:
    """w_bt of the policy-gradient estimate −Σ w_bt A_b ∇logp_bt that each aggregation gives."""
    lengths = t(LENGTHS)[:, None].expand(2, 4)
    weights = {
        "sequence": 1 / (2 * lengths),
        "token": torch.full((2, 4), 1 / sum(LENGTHS), dtype=F64),
        "constant": torch.full((2, 4), 1 / (2 * MAX_LEN), dtype=F64),
    }[aggregation]
    return weights * MASK


@pytest.mark.parametrize("aggregation", pglib.AGGREGATIONS)
def test_grpo_gradient_at_theta_old_is_the_policy_gradient(aggregation: str) -> None:
    """Through a softmax policy over 5 tokens at each of the [2, 4] positions."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, generator=generator, dtype=F64, requires_grad=True)
    tokens = torch.randint(0, 5, (2, 4), generator=generator)
    logp = logits.log_softmax(-1).gather(-1, tokens[..., None])[..., 0]
    loss = pglib.grpo_loss(
        logp, logp.detach(), None, ADVANTAGES, MASK, aggregation=aggregation,
        max_completion_length=MAX_LEN,
    )  # fmt: skip
    (grad,) = torch.autograd.grad(loss, logits, retain_graph=True)
    estimate = (per_token_weights(aggregation) * ADVANTAGES[:, None] * logp).sum()
    (pg,) = torch.autograd.grad(estimate, logits)
    torch.testing.assert_close(grad, -pg, rtol=1e-12, atol=1e-15)


def test_the_loss_is_zero_while_its_gradient_is_not() -> None:
    logp = t([[-1.0, -2.0], [-0.5, -3.0]]).requires_grad_(True)
    loss = pglib.grpo_loss(logp, logp.detach(), None, t([1.0, -1.0]), torch.ones(2, 2, dtype=bool))
    loss.backward()
    assert float(loss.detach()) == 0.0
    torch.testing.assert_close(logp.grad, t([[-0.25, -0.25], [0.25, 0.25]]), rtol=0, atol=0)


def test_the_kl_term_gradient_by_hand() -> None:
    """d(β k3)/d logp = β (1 − π_ref/π): here 0.1 (1 − 1/2) / 2 tokens per token (one row)."""
    logp = t([[-1.0, -0.5]]).requires_grad_(True)
    ref = logp.detach() - math.log(2)
    mask = torch.ones(1, 2, dtype=bool)
    pglib.grpo_loss(logp, logp.detach(), ref, t([0.0]), mask, beta=0.1).backward()
    torch.testing.assert_close(logp.grad, t([[0.025, 0.025]]), rtol=1e-14, atol=0)


@pytest.mark.parametrize("aggregation", pglib.AGGREGATIONS)
@pytest.mark.parametrize("fill", [1e30, -1e30, 7.0])
def test_padding_after_eos_contributes_nothing(aggregation: str, fill: float) -> None:
    results = []
    for value in (0.0, fill):
        logp, old, ref = batch(fill=value)
        with torch.no_grad():
            old[0, 0] -= 0.3  # one ratio away from 1, so that the clipping is exercised
        loss = pglib.grpo_loss(
            logp, old, ref, ADVANTAGES, MASK, beta=0.1, aggregation=aggregation,
            max_completion_length=MAX_LEN,
        )  # fmt: skip
        loss.backward()
        results.append((float(loss.detach()), logp.grad))
    (loss_zero, grad_zero), (loss_fill, grad_fill) = results
    assert loss_fill == loss_zero
    assert torch.equal(grad_fill, grad_zero)
    assert bool((grad_fill[~MASK] == 0).all())


def test_grpo_loss_refuses_bad_masks_and_lengths() -> None:
    logp, old, ref = batch()
    with pytest.raises(ValueError, match="mask must mark at least one token in every row"):
        pglib.grpo_loss(logp, old, ref, ADVANTAGES, torch.zeros(2, 4, dtype=bool))
    with pytest.raises(ValueError, match="max_completion_length must be at least"):
        pglib.grpo_loss(
            logp, old, ref, ADVANTAGES, MASK, aggregation="constant", max_completion_length=3
        )
    with pytest.raises(ValueError, match="logp must hold log-probabilities"):
        pglib.grpo_loss(-logp, -old, None, ADVANTAGES, MASK)  # negative log-likelihoods
    with pytest.raises(ValueError, match="mask must have dtype bool"):
        pglib.grpo_loss(logp, old, None, ADVANTAGES, MASK.double())


def test_kl_estimates_work_on_numpy_shaped_batches() -> None:
    """Any shape in, the same shape out; a reference with a gradient is refused."""
    logp = -torch.rand(3, 4, dtype=F64)
    assert pglib.kl_estimate(logp, logp - 1, "k2").shape == (3, 4)
    with pytest.raises(ValueError, match="ref_logp must carry no gradient"):
        pglib.kl_estimate(logp, logp.clone().requires_grad_(True))
    with pytest.raises(ValueError, match="ref_logp must have the shape of logp"):
        pglib.kl_estimate(logp, np.zeros(3))


# --- preference losses ------------------------------------------------------------------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_bradley_terry_by_hand_and_shift_invariant() -> None:
    loss = pglib.bradley_terry_loss(t([1.0, 0.0]), t([0.0, 0.0]))
    assert float(loss) == pytest.approx((math.log(1 + math.exp(-1)) + math.log(2)) / 2, rel=1e-14)
    shifted = pglib.bradley_terry_loss(t([6.0, 5.0]), t([5.0, 5.0]))
    assert float(shifted) == pytest.approx(float(loss), rel=1e-14)


def test_dpo_by_hand() -> None:
    policy_c = t([-1.0]).requires_grad_(True)
    loss, chosen, rejected = pglib.dpo_loss(policy_c, t([-3.0]), t([-2.0]), t([-2.0]), beta=0.1)
    # implicit rewards 0.1 (−1 + 2) = 0.1 and 0.1 (−3 + 2) = −0.1; margin 0.2
    assert float(loss.detach()) == pytest.approx(math.log(1 + math.exp(-0.2)), rel=1e-14)
    torch.testing.assert_close(chosen, t([0.1]), rtol=1e-14, atol=0)
    torch.testing.assert_close(rejected, t([-0.1]), rtol=1e-14, atol=0)
    assert not chosen.requires_grad and not rejected.requires_grad


# A one-step problem: a single-token "bandit" over 4 tokens, π = softmax(θ).
PI_REF_4 = t([0.4, 0.3, 0.2, 0.1])
REWARD_4 = t([0.0, 1.0, -0.5, 2.0])
PAIRS = torch.tensor([[0, 1], [1, 3], [2, 0], [3, 2], [1, 2]])


def dpo_on_bandit(theta: torch.Tensor, pairs: torch.Tensor, beta: float) -> torch.Tensor:
    logp = theta.log_softmax(-1)
    c, r = pairs[:, 0], pairs[:, 1]
    return pglib.dpo_loss(logp[c], logp[r], PI_REF_4.log()[c], PI_REF_4.log()[r], beta)[0]


def test_dpo_gradient_on_a_one_step_problem_is_exact() -> None:
    """∇_θ of −log σ(z) with z = β[(log π_c − log ref_c) − (log π_r − log ref_r)] is
    −β σ(−z) (e_c − e_r): the softmax's −π terms cancel between the chosen and rejected."""
    beta = 0.5
    theta = t([0.3, -0.2, 0.1, 0.0]).requires_grad_(True)
    (grad,) = torch.autograd.grad(dpo_on_bandit(theta, PAIRS, beta), theta)
    log_pi = theta.detach().log_softmax(-1)
    log_ratio = (log_pi - PI_REF_4.log()).tolist()
    exact = torch.zeros(4, dtype=F64)
    for c, r in PAIRS.tolist():
        z = beta * (log_ratio[c] - log_ratio[r])
        exact[c] -= beta * sigmoid(-z) / len(PAIRS)
        exact[r] += beta * sigmoid(-z) / len(PAIRS)
    torch.testing.assert_close(grad, exact, rtol=1e-12, atol=1e-15)


def test_dpo_expected_gradient_vanishes_at_the_kl_regularised_optimum() -> None:
    """With every pair labelled by Bradley–Terry on REWARD_4, weighted by its probability, the
    expected DPO gradient is 0 at π* ∝ π_ref exp(r/β) and not elsewhere."""
    beta = 0.5
    pairs = torch.tensor([[i, j] for i in range(4) for j in range(4) if i != j])
    weights = torch.sigmoid(REWARD_4[pairs[:, 0]] - REWARD_4[pairs[:, 1]])  # P(i ≻ j)

    def expected_gradient(theta: torch.Tensor) -> torch.Tensor:
        theta = theta.clone().requires_grad_(True)
        logp = theta.log_softmax(-1)
        c, r = pairs[:, 0], pairs[:, 1]
        ref = PI_REF_4.log()
        # dpo_loss averages; weigh each ordered pair by how often it is labelled that way
        per_pair = torch.stack(
            [pglib.dpo_loss(logp[c[k : k + 1]], logp[r[k : k + 1]], ref[c[k : k + 1]],
                            ref[r[k : k + 1]], beta)[0] for k in range(len(pairs))]
        )  # fmt: skip
        (grad,) = torch.autograd.grad((weights * per_pair).sum(), theta)
        return grad

    optimum = PI_REF_4.log() + REWARD_4 / beta
    assert float(expected_gradient(optimum).abs().max()) < 1e-12
    assert float(expected_gradient(PI_REF_4.log()).abs().max()) > 0.05


def test_kto_by_hand() -> None:
    policy = t([-1.0, -3.0]).requires_grad_(True)
    ref = t([-2.0, -2.0])  # log-ratios r = 1 (desirable) and −1 (undesirable)
    desirable = torch.tensor([True, False])
    loss, rewards = pglib.kto_loss(policy, ref, desirable, 0.2, beta=0.5, undesirable_weight=2.0)
    gain, aversion = 1 - sigmoid(0.5 * (1 - 0.2)), 2 * (1 - sigmoid(0.5 * (0.2 + 1)))
    assert float(loss.detach()) == pytest.approx((gain + aversion) / 2, rel=1e-14)
    torch.testing.assert_close(rewards, t([0.5, -0.5]), rtol=1e-14, atol=0)
    loss.backward()
    # d/dr of λ (1 − σ(±β(r − z₀))) = ∓ λ β σ (1 − σ); halved by the mean
    s_d, s_u = sigmoid(0.4), sigmoid(0.6)
    expected = t([-0.5 * s_d * (1 - s_d) / 2, 2 * 0.5 * s_u * (1 - s_u) / 2])
    torch.testing.assert_close(policy.grad, expected, rtol=1e-12, atol=0)


def test_kto_weights_scale_their_own_terms_only() -> None:
    policy, ref = t([-1.0, -3.0, -1.5]), t([-2.0, -2.0, -1.0])
    desirable = torch.tensor([True, False, True])
    base = float(pglib.kto_loss(policy, ref, desirable, 0.1)[0])
    undesirable_term = float(pglib.kto_loss(policy[1:2], ref[1:2], desirable[1:2], 0.1)[0])
    desirable_terms = 3 * base - undesirable_term
    double_d = pglib.kto_loss(policy, ref, desirable, 0.1, desirable_weight=2.0)[0]
    assert float(double_d) == pytest.approx(base + desirable_terms / 3, rel=1e-12)
    all_undesirable = torch.zeros(3, dtype=torch.bool)
    assert float(pglib.kto_loss(policy, ref, all_undesirable, 0.1, desirable_weight=5.0)[0]) == (
        float(pglib.kto_loss(policy, ref, all_undesirable, 0.1)[0])
    )


def test_kto_reference_point_is_a_clamped_detached_mean() -> None:
    policy = t([-1.0, -2.0]).requires_grad_(True)
    z0 = pglib.kto_reference_point(policy, t([-2.0, -2.0]))  # mean(1, 0) = 1/2
    assert float(z0) == 0.5 and z0.ndim == 0 and not z0.requires_grad
    assert float(pglib.kto_reference_point(policy, t([-0.5, -1.0]))) == 0.0  # mean −3/4 < 0
    # z₀ is a constant in the loss: only the log-ratio's own path carries a gradient
    loss, _ = pglib.kto_loss(policy, t([-2.0, -2.0]), torch.tensor([True, True]), z0, beta=1.0)
    loss.backward()
    s = [sigmoid(1 - 0.5), sigmoid(0 - 0.5)]
    torch.testing.assert_close(policy.grad, t([-v * (1 - v) / 2 for v in s]), rtol=1e-12, atol=0)
