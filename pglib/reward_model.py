"""Scalar models on token sequences: the reward model of RLHF and PPO's value model, and the
per-token rewards and advantages of PPO on a language model.

A :class:`ScalarLM` is the trunk of a :class:`pglib.TinyLM` with a one-number head: one
scalar per position, each having read the tokens up to and including its own. It serves twice:

- as a **reward model**, trained on preference pairs with the Bradley–Terry loss
  (:func:`train_reward_model`); a completion's score is the output at its last masked token,
  after reading the token that ends it (:func:`reward_scores`);
- as PPO's **value model**: V(s_t) at completion position t is the output at the token just
  before o_t, the state the policy acted in.

PPO on tokens (Ouyang et al., 2022; TRL's PPOTrainer) puts a KL penalty into the reward at
every completion token and the sequence's score at its last one (:func:`token_rewards`), and
turns rewards and values into advantages with Chapter 7's GAE, one episode per completion
(:func:`token_advantages`). The clipped objective and the value loss are Chapter 10's
(:func:`pglib.clipped_surrogate_terms`, :func:`pglib.value_loss`).

Introduced in Chapter 13.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from pglib import _checks
from pglib.alignment import bradley_terry_loss
from pglib.checkpoints import load_pretrained_lm
from pglib.lm import TinyLM, _check_tokens, _trunk_features
from pglib.ppo import minibatches
from pglib.preferences import PreferencePairs
from pglib.returns import gae
from pglib.tasks import DigitSumTask

__all__ = [
    "ScalarLM",
    "reward_scores",
    "preference_accuracy",
    "RewardModelConfig",
    "RewardModelResult",
    "train_reward_model",
    "token_rewards",
    "token_advantages",
]

#: Size guards: pairs per minibatch, passes over the pairs.
MAX_BATCH = 100_000
MAX_EPOCHS = 10_000


class ScalarLM(nn.Module):
    """A :class:`pglib.TinyLM`'s trunk with a scalar head: tokens [B, L] -> [B, L], where
    output i has read tokens 0..i.

    Same task, sizes and blocks as the language model; the head is a linear map from the
    ``d_model`` features to one number, initialised to zero (every output starts at 0). It
    reads one token more than the language model, L <= ``context_length`` = 2 + max_digits:
    a whole sampled sequence, so that a score can see how the completion ended.
    :meth:`from_lm` copies a language model's trunk. Introduced in Chapter 13.
    """

    def __init__(
        self,
        task: DigitSumTask = DigitSumTask(),  # noqa: B008 (a frozen dataclass: immutable)
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
    ) -> None:
        super().__init__()
        lm = TinyLM(task, d_model, n_layers, n_heads)  # checks the arguments; lends its trunk
        self.task, self.d_model, self.n_layers, self.n_heads = task, d_model, n_layers, n_heads
        self.context_length = lm.context_length + 1
        self.token_embedding = lm.token_embedding
        self.position_embedding = nn.Embedding(self.context_length, d_model)
        self.blocks, self.ln_final = lm.blocks, lm.ln_final
        self.head = nn.Linear(d_model, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    @classmethod
    def from_lm(cls, lm: TinyLM) -> ScalarLM:
        """A ScalarLM whose trunk is a copy of ``lm``'s (``lm`` is left alone). The position
        the language model never reads, the last, starts as a copy of the one before it."""
        _checks.instance("lm", lm, TinyLM, "a TinyLM")
        model = cls(lm.task, lm.d_model, lm.n_layers, lm.n_heads)
        trunk = {k: v for k, v in lm.state_dict().items() if not k.startswith("head.")}
        positions = trunk["position_embedding.weight"]
        trunk["position_embedding.weight"] = torch.cat([positions, positions[-1:]])
        model.load_state_dict({**trunk, **model.head.state_dict(prefix="head.")})
        return model.to(positions.dtype)

    def forward(self, tokens: Tensor) -> Tensor:
        """One scalar [B, L] per position of tokens [B, L]."""
        tokens = _check_tokens("tokens", tokens, self, high=self.context_length)
        return self.head(_trunk_features(self, tokens))[..., 0]


def _check_sequences(model: object, tokens: object, mask: object) -> tuple[Tensor, Tensor]:
    """Checked (tokens [B, P + T], mask [B, T]) of ``model``'s task, every row with at least
    one masked token; returns them with ``mask`` as a bool tensor."""
    _checks.instance("model", model, ScalarLM, "a ScalarLM")
    tokens = _check_tokens("tokens", tokens, model, high=model.context_length)
    mask = _check_mask(mask)
    if mask.shape[0] != tokens.shape[0] or mask.shape[1] >= tokens.shape[1]:
        raise ValueError(
            f"mask must be [B, T] with B = {tokens.shape[0]} and T < {tokens.shape[1]} (tokens "
            f"holds at least one prompt token), got shape {tuple(mask.shape)}"
        )
    return tokens, mask


def reward_scores(model: ScalarLM, tokens: Tensor, mask: Tensor) -> Tensor:
    """The reward model's score [B] of each sequence, with gradients: ``model``'s output at
    the last masked token of ``tokens`` [B, P + T] (``mask`` [B, T] as :func:`pglib.generate`
    returns it), the position that has read the whole completion, its ending token included.
    Introduced in Chapter 13.
    """
    tokens, mask = _check_sequences(model, tokens, mask)
    last = tokens.shape[1] - mask.shape[1] + mask.sum(dim=1) - 1  # [B]: its position in tokens
    return model(tokens).gather(1, last[:, None])[:, 0]


def _true_order(pairs: PreferencePairs) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(better, worse, better_mask, worse_mask) by the task's true reward: noise undone."""
    flipped = pairs.flipped[:, None]
    better = torch.where(flipped, pairs.rejected, pairs.chosen)
    worse = torch.where(flipped, pairs.chosen, pairs.rejected)
    better_mask = torch.where(flipped, pairs.rejected_mask, pairs.chosen_mask)
    worse_mask = torch.where(flipped, pairs.chosen_mask, pairs.rejected_mask)
    return better, worse, better_mask, worse_mask


def preference_accuracy(model: ScalarLM, pairs: PreferencePairs) -> float:
    """The share of ``pairs`` whose truly better completion ``model`` scores higher, a tie
    counting one half (so a constant model scores 0.5).

    Measured against the TRUE order: where label noise swapped a pair (``pairs.flipped``),
    the rejected completion is the better one. Introduced in Chapter 13.
    """
    _checks.instance("model", model, ScalarLM, "a ScalarLM")
    _checks.instance("pairs", pairs, PreferencePairs, "a PreferencePairs")
    better, worse, better_mask, worse_mask = _true_order(pairs)
    with torch.no_grad():
        margin = reward_scores(model, better, better_mask) - reward_scores(model, worse, worse_mask)
    return float(((margin > 0).double() + 0.5 * (margin == 0).double()).mean())


@dataclass(frozen=True)
class RewardModelConfig:
    """Bradley–Terry training of a reward model. Introduced in Chapter 13."""

    epochs: int = 20  # passes over the training pairs
    batch_size: int = 64  # pairs per Adam step (the last step of an epoch: the rest)
    lr: float = 1e-3  # Adam step size
    held_out: float = 0.2  # share of the pairs kept out of training, to measure accuracy on
    seed: int = 0  # seeds the split, the shuffling and the head's initialisation

    def __post_init__(self) -> None:
        _checks.positive_int("epochs", self.epochs, limit=MAX_EPOCHS)
        _checks.positive_int("batch_size", self.batch_size, limit=MAX_BATCH)
        lr = _checks.real("lr", self.lr, low=0.0, low_open=True)
        if not isinstance(self.lr, (int, float)):
            object.__setattr__(self, "lr", lr)
        held_out = _checks.real("held_out", self.held_out, low=0.0, high=1.0, high_open=True)
        if not isinstance(self.held_out, (int, float)):
            object.__setattr__(self, "held_out", held_out)
        _checks.integer("seed", self.seed, low=0)

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-ready dict."""
        return asdict(self)


@dataclass
class RewardModelResult:
    """What :func:`train_reward_model` returns: the trained ``model``; ``losses``, the
    Bradley–Terry loss of every Adam step (on the noisy labels it trains on);
    ``train_accuracy`` and ``held_out_accuracy`` (:func:`preference_accuracy`, against the
    true order; NaN without held-out pairs); the numbers of training and held-out pairs;
    and the wall time. Introduced in Chapter 13.
    """

    model: ScalarLM
    losses: list[float]
    train_accuracy: float
    held_out_accuracy: float
    train_pairs: int
    held_out_pairs: int
    seconds: float

    def __post_init__(self) -> None:
        _checks.instance("model", self.model, ScalarLM, "a ScalarLM")
        _checks.instance("losses", self.losses, list, "a list of floats")
        for loss in self.losses:
            _checks.real("every loss", loss)
        _checks.unit_interval("train_accuracy", self.train_accuracy)
        if not math.isnan(self.held_out_accuracy):
            _checks.unit_interval("held_out_accuracy", self.held_out_accuracy)
        _checks.positive_int("train_pairs", self.train_pairs)
        _checks.integer("held_out_pairs", self.held_out_pairs, low=0)
        _checks.real("seconds", self.seconds, low=0)


def train_reward_model(
    pairs: PreferencePairs,
    config: RewardModelConfig = RewardModelConfig(),
    *,
    base: TinyLM | None = None,
    progress: bool = True,
) -> RewardModelResult:
    """Fit a :class:`ScalarLM` to ``pairs`` by minimising :func:`pglib.bradley_terry_loss`
    of its scores, mean(−log σ(r(chosen) − r(rejected))), with Adam in shuffled minibatches.

    The model starts from ``base``'s trunk (:meth:`ScalarLM.from_lm`; default:
    :func:`pglib.load_pretrained_lm`, as RLHF starts its reward model from the language model;
    pass a freshly built :class:`pglib.TinyLM` for a randomly initialised one). A seeded
    ``config.held_out`` share of the pairs is kept out for the held-out accuracy. It trains
    on the labels as given, noise included. Seeded by ``config.seed``; one torch thread, the
    global torch RNG and thread count restored afterwards. Introduced in Chapter 13.
    """
    _checks.instance("pairs", pairs, PreferencePairs, "a PreferencePairs")
    _checks.instance("config", config, RewardModelConfig, "a RewardModelConfig")
    if base is not None:
        _checks.instance("base", base, TinyLM, "a TinyLM or None")
    _checks.boolean("progress", progress)
    n_held = round(config.held_out * len(pairs))
    if len(pairs) - n_held < 1:
        raise ValueError(
            f"pairs must leave at least one training pair after holding out "
            f"{config.held_out:g} of them, got {len(pairs)} pairs"
        )
    threads = torch.get_num_threads()
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        torch.set_num_threads(1)  # a 100k-parameter model: one thread is fastest
        try:
            base = load_pretrained_lm() if base is None else base
            generator = torch.Generator().manual_seed(config.seed)
            order = torch.randperm(len(pairs), generator=generator)
            train, held = pairs[order[n_held:]], pairs[order[:n_held]]
            model = ScalarLM.from_lm(base).train()
            optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
            losses: list[float] = []
            bar = tqdm(range(config.epochs), desc="reward model", disable=not progress)
            for _ in bar:
                for rows in minibatches(len(train), config.batch_size, generator):
                    batch = train[rows]
                    loss = bradley_terry_loss(
                        reward_scores(model, batch.chosen, batch.chosen_mask),
                        reward_scores(model, batch.rejected, batch.rejected_mask),
                    )
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            model.eval()
            held_out_accuracy = preference_accuracy(model, held) if n_held else math.nan
            train_accuracy = preference_accuracy(model, train)
        finally:
            torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    return RewardModelResult(
        model, losses, train_accuracy, held_out_accuracy, len(train), n_held, seconds
    )


# --- PPO on tokens ----------------------------------------------------------------------------


def _check_mask(mask: object) -> Tensor:
    """``mask`` as a bool tensor [B, T], B, T >= 1, with a True in every row."""
    _checks.instance("mask", mask, Tensor, "a bool torch tensor [B, T]")
    if mask.ndim != 2 or 0 in mask.shape:
        raise ValueError(f"mask must be a non-empty tensor [B, T], got {_checks.describe(mask)}")
    _checks.bool_flags("mask", mask, tuple(mask.shape))
    if bool((mask.sum(dim=1) == 0).any()):
        raise ValueError("mask must mark at least one token in every row (the ending token)")
    return mask


def token_rewards(
    logp: Tensor, ref_logp: Tensor, scores: Tensor, mask: Tensor, beta: float
) -> Tensor:
    """PPO's per-token rewards [B, T] for B sampled completions:

        r_t = −β (log π(o_t) − log π_ref(o_t))  at every completion token (``mask`` [B, T]),
        plus the completion's score (``scores`` [B]) at its last masked token,

    0 outside the mask. ``logp`` and ``ref_logp`` [B, T] are the sampling policy's and the
    reference's log-probs of the sampled tokens: the penalty is the k1 estimate of the KL,
    so the rewards of a completion sum to its score − β log(π / π_ref) (Ouyang et al., 2022;
    TRL's PPOTrainer). Nothing here carries a gradient. Introduced in Chapter 13.
    """
    mask = _check_mask(mask)
    logp = _checks.float_tensor("logp", logp, shape=tuple(mask.shape)).detach()
    ref_logp = _checks.detached_like("ref_logp", ref_logp, "logp", logp)
    scores = _checks.detached_like("scores", scores, "logp[:, 0]", logp[:, 0])
    beta = _checks.real("beta", beta, low=0.0)
    rewards = -beta * (logp - ref_logp) * mask
    last = mask.sum(dim=1, keepdim=True) - 1
    return rewards.scatter_add(1, last, scores[:, None])


def token_advantages(
    rewards: Tensor, values: Tensor, mask: Tensor, lam: float, gamma: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Token-level GAE for B completions, each one episode that terminates at its last masked
    token: (advantages [B, T], returns [B, T] = advantages + values), 0 outside ``mask``.

    ``rewards`` [B, T] (:func:`token_rewards`) and ``values`` [B, T] (V(s_t), the value
    model's output before token t) go through Chapter 7's :func:`pglib.gae` time-major:
    δ_t = r_t + γ V(s_{t+1}) − V(s_t), with V = 0 after the last token, and
    A_t = δ_t + γλ A_{t+1}. With λ = 1 and γ = 1 the advantage is the sum of the rewards
    from t on minus V(s_t). The returns are the value model's regression targets.
    Introduced in Chapter 13.
    """
    mask = _check_mask(mask)
    rewards = _checks.float_tensor("rewards", rewards, shape=tuple(mask.shape))
    values = _checks.detached_like("values", values, "rewards", rewards)
    lam = _checks.unit_interval("lam", lam)
    gamma = _checks.unit_interval("gamma", gamma)
    values = values * mask
    last = mask.sum(dim=1, keepdim=True) - 1
    positions = torch.arange(mask.shape[1], device=mask.device)
    ended = positions[None, :] >= last  # the last token and the padding after it: terminal
    next_values = torch.cat([values[:, 1:], torch.zeros_like(values[:, :1])], dim=1)
    advantages = (
        gae((rewards * mask).T, values.T, next_values.T, gamma, lam, terminated=ended.T).T * mask
    )
    return advantages, (advantages + values) * mask
