"""A language model as a policy: a tiny causal transformer, sampling with log-probs, sequence
log-probs under masks, exact success and KL by enumerating the prefix tree, and pretraining.

The model reads token sequences of the task it was built for (:class:`pglib.DigitSumTask`):
a state is the prompt and the tokens so far, an action is the next token, and the reward comes
at the end. Shapes, for B sequences with a prompt of P tokens and T completion tokens:

- ``tokens``: long [B, P + T], the prompts followed by the completions, PAD after each end;
- ``logprobs`` and ``mask``: [B, T], one entry per completion token. ``mask`` is True up to and
  including the token that ends the completion (its first non-digit token, or the last one
  when it was cut for length); ``logprobs`` is 0 where ``mask`` is False.

Introduced in Chapter 11.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from pglib import _checks
from pglib.tasks import EOS, PAD, DigitSumTask

__all__ = [
    "TinyLM",
    "generate",
    "greedy_decode",
    "sequence_logprobs",
    "prefix_tree",
    "exact_success",
    "exact_greedy_success",
    "exact_kl",
    "PretrainConfig",
    "PretrainResult",
    "pretrain",
]

#: Size guards on the model's width and depth (a CPU book: 1,024 wide is already large).
MAX_WIDTH = 1_024
MAX_LAYERS = 16


class _Block(nn.Module):
    """One pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model)
        )

    def forward(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(width, dim=-1)
        q, k, v = (t.view(batch, length, self.n_heads, -1).transpose(1, 2) for t in (q, k, v))
        attended = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # no peeking ahead
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.ln2(x))


class TinyLM(nn.Module):
    """A small causal transformer over the vocabulary of ``task``: tokens [B, L] -> logits
    [B, L, V], where logits[:, i] score the token after position i.

    Token and learned position embeddings, ``n_layers`` pre-norm blocks (``n_heads`` heads,
    an MLP 4 × ``d_model`` wide), a final LayerNorm and a linear head. L may be at most
    ``context_length`` = 1 + max_digits, the longest input a completion ever needs (the prompt
    and every digit). The defaults have 103,964 parameters. Introduced in Chapter 11.
    """

    def __init__(
        self,
        task: DigitSumTask = DigitSumTask(),  # noqa: B008 (a frozen dataclass: immutable)
        d_model: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
    ) -> None:
        super().__init__()
        _checks.instance("task", task, DigitSumTask, "a DigitSumTask")
        d_model = _checks.positive_int("d_model", d_model, limit=MAX_WIDTH)
        n_layers = _checks.positive_int("n_layers", n_layers, limit=MAX_LAYERS)
        n_heads = _checks.positive_int("n_heads", n_heads, limit=d_model)
        if d_model % n_heads:
            raise ValueError(f"d_model must be a multiple of n_heads ({n_heads}), got {d_model}")
        self.task, self.d_model, self.n_layers, self.n_heads = task, d_model, n_layers, n_heads
        self.context_length = 1 + task.max_digits
        self.token_embedding = nn.Embedding(task.vocab_size, d_model)
        self.position_embedding = nn.Embedding(self.context_length, d_model)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads) for _ in range(n_layers))
        self.ln_final = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, task.vocab_size)

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits [B, L, V] of the next token after each position of tokens [B, L]."""
        tokens = _check_tokens("tokens", tokens, self, high=self.context_length)
        return self.head(_trunk_features(self, tokens))


def _trunk_features(model: nn.Module, tokens: Tensor) -> Tensor:
    """The trunk's output [B, L, d_model] after the final LayerNorm, for checked ``tokens``
    [B, L]: the part :class:`TinyLM` shares with :class:`pglib.ScalarLM`, which put
    different heads on it."""
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    x = model.token_embedding(tokens) + model.position_embedding(positions)
    for block in model.blocks:
        x = block(x)
    return model.ln_final(x)


# --- sampling and log-probs -----------------------------------------------------------------


def _decode(
    model: TinyLM,
    prompts: Tensor,
    max_new_tokens: int,
    choose: Callable[[Tensor], Tensor],
) -> tuple[Tensor, Tensor, Tensor]:
    """The decoding loop of :func:`generate` and :func:`greedy_decode`:
    ``choose`` picks the next tokens [B] from their log-probs [B, V]."""
    tokens, batch = prompts, prompts.shape[0]
    ended = torch.zeros(batch, dtype=torch.bool, device=prompts.device)
    logprobs, mask = [], []
    with torch.no_grad():  # sampling needs no graph; sequence_logprobs rebuilds one
        for _ in range(max_new_tokens):
            logp = torch.log_softmax(model(tokens)[:, -1], dim=-1)  # [B, V]
            token = torch.where(ended, PAD, choose(logp))
            chosen = logp.gather(1, token[:, None])[:, 0]
            logprobs.append(torch.where(ended, 0.0, chosen))
            mask.append(~ended)
            tokens = torch.cat([tokens, token[:, None]], dim=1)
            ended = ended | (token >= 10)  # digits are ids 0..9: any other token ends
    return tokens, torch.stack(logprobs, dim=1), torch.stack(mask, dim=1)


def generate(
    model: TinyLM, prompts: Tensor, max_new_tokens: int, *, generator: torch.Generator
) -> tuple[Tensor, Tensor, Tensor]:
    """Sample completions at temperature 1 from the full vocabulary, no gradients.

    ``prompts`` [B, P] -> ``(tokens [B, P + T], logprobs [B, T], mask [B, T])``
    with T = ``max_new_tokens`` (the module notes give the conventions). A
    completion ends at its first non-digit token; after T tokens it is cut.
    Introduced in Chapter 11.
    """
    _check_decode(model, prompts, max_new_tokens)
    _checks.instance("generator", generator, torch.Generator, "a torch.Generator")

    def sample(logp: Tensor) -> Tensor:
        return torch.multinomial(logp.exp(), 1, generator=generator)[:, 0]

    return _decode(model, prompts, max_new_tokens, sample)


def greedy_decode(model: TinyLM, prompts: Tensor, max_new_tokens: int) -> tuple[Tensor, Tensor]:
    """The most likely token at every step: ``prompts`` [B, P] -> ``(tokens [B, P + T],
    mask [B, T])``, with the conventions of :func:`generate`. Introduced in Chapter 11."""
    _check_decode(model, prompts, max_new_tokens)
    tokens, _, mask = _decode(model, prompts, max_new_tokens, lambda logp: logp.argmax(dim=-1))
    return tokens, mask


def sequence_logprobs(model: TinyLM, tokens: Tensor, mask: Tensor) -> Tensor:
    """log π(token | everything before it) [B, T] for the last T tokens of
    ``tokens`` [B, P + T], with gradients; 0 where ``mask`` [B, T] is False.

    The sum over a row is the sequence log-probability log π(completion | prompt).
    On the output of :func:`generate` it equals the sampling log-probs to float32
    round-off. Introduced in Chapter 11.
    """
    n_new = mask.shape[1]
    logits = model(tokens[:, :-1])[:, -n_new:]  # position i scores token i + 1
    logp = torch.log_softmax(logits, dim=-1)
    logp = logp.gather(2, tokens[:, -n_new:, None])[..., 0]
    return torch.where(mask, logp, 0.0)


# --- exact quantities, by enumerating the prefix tree ---------------------------------------


def _node_rows(digits: int) -> list[slice]:
    """Rows 0, s, 2s, ... of the 10^D maximal prefixes, with s = 10^(D − k), spell each
    k-digit prefix once: one slice per depth k = 0..D."""
    return [slice(None, None, 10 ** (digits - k)) for k in range(digits + 1)]


def prefix_tree(model: TinyLM) -> tuple[Tensor, Tensor]:
    """Every node of every prompt's tree of digit prefixes, with its probability and its
    next-token distribution: (log P_π(prefix | prompt) [N, M], log π(· | prefix) [N, M, V]),
    float64, without gradients.

    The M = (10^(D+1) − 1)/9 nodes of a prompt are its digit prefixes (the empty one, the 10
    one-digit ones, ...), in that order; N prompts in target order. One forward pass per
    prompt over the 10^D maximal prefixes: the model is causal, so position k of the row
    spelling a prefix gives that prefix's next-token distribution. Every exact expectation
    over completions is a sum over these nodes (:func:`exact_success`, :func:`exact_kl`).
    Introduced in Chapter 11.
    """
    _checks.instance("model", model, TinyLM, "a TinyLM")
    strings = model.task.all_digit_strings()  # [R, D], R = 10^D
    rows = _node_rows(model.task.max_digits)
    paths, nexts = [], []
    with torch.no_grad():
        for prompt in model.task.prompts():
            tokens = torch.cat([prompt.expand(strings.shape[0], 1), strings], dim=1)
            logp = torch.log_softmax(model(tokens).double(), dim=-1)  # float64 for the sums
            steps = logp[:, :-1].gather(2, strings[..., None])[..., 0]
            path = torch.cat([torch.zeros(len(strings), 1), steps.cumsum(dim=1)], dim=1)
            paths.append(torch.cat([path[at, k] for k, at in enumerate(rows)]))
            nexts.append(torch.cat([logp[at, k] for k, at in enumerate(rows)]))
    return torch.stack(paths), torch.stack(nexts)


def _node_completions(task: DigitSumTask) -> Tensor:
    """[M, D + 1]: each node's prefix followed by EOS and PAD, the one completion that ends
    there well, in :func:`prefix_tree`'s node order."""
    strings, digits = task.all_digit_strings(), task.max_digits
    return torch.cat(
        [
            torch.cat(
                [
                    strings[at, :k],
                    torch.full((len(strings[at]), 1), EOS),
                    torch.full((len(strings[at]), digits - k), PAD),
                ],
                dim=1,
            )
            for k, at in enumerate(_node_rows(digits))
        ]
    )


def exact_success(model: TinyLM) -> Tensor:
    """The probability [N] (float64) that a sampled completion is correct, for each prompt of
    ``model.task`` in target order; the mean is the success rate over uniform prompts.

    P(success | t) = Σ over digit prefixes d of P_π(d | t) · π(EOS | t, d) · reward(t, d EOS),
    computed exactly over all (10^(D+1) − 1)/9 prefixes (without gradients): only EOS can end
    a completion well. Introduced in Chapter 11.
    """
    _checks.instance("model", model, TinyLM, "a TinyLM")
    return _tree_success(model.task, prefix_tree(model))


def _tree_success(task: DigitSumTask, tree: tuple[Tensor, Tensor]) -> Tensor:
    """:func:`exact_success` from the model's :func:`prefix_tree`."""
    path_logp, next_logp = tree
    prompts = task.prompts()
    n_prompts, n_nodes = path_logp.shape
    sequences = torch.cat(
        [
            prompts.repeat_interleave(n_nodes, dim=0),
            _node_completions(task).repeat(n_prompts, 1),
        ],
        dim=1,
    )
    rewards = task.reward(sequences).double().view(n_prompts, n_nodes)
    return ((path_logp + next_logp[..., EOS]).exp() * rewards).sum(dim=1)


def exact_greedy_success(model: TinyLM) -> Tensor:
    """The reward [N] (float32, 0 or 1) of the greedy completion of each prompt of
    ``model.task``, in target order: greedy decoding is deterministic, so this is exact.
    Introduced in Chapter 11."""
    _checks.instance("model", model, TinyLM, "a TinyLM")
    task = model.task
    tokens, _ = greedy_decode(model, task.prompts(), task.completion_length)
    return task.reward(tokens)


def exact_kl(model: TinyLM, reference: TinyLM) -> Tensor:
    """The sequence KL(π ‖ π_ref) [N] (float64) of ``model`` π to ``reference`` π_ref for each
    prompt of their task, in target order, computed exactly (without gradients).

    By the chain rule, KL = Σ over digit prefixes d of P_π(d) · KL(π(·|d) ‖ π_ref(·|d)), the
    inner KL over the whole vocabulary: every way a completion can end (EOS, another token,
    or a digit past max_digits) is counted. Introduced in Chapter 11.
    """
    _checks.instance("model", model, TinyLM, "a TinyLM")
    _checks.instance("reference", reference, TinyLM, "a TinyLM")
    if reference.task != model.task:
        raise ValueError(
            f"reference must be a model of the same task as model ({model.task}), "
            f"got one of {reference.task}"
        )
    return _tree_kl(prefix_tree(model), prefix_tree(reference))


def _tree_kl(tree: tuple[Tensor, Tensor], reference_tree: tuple[Tensor, Tensor]) -> Tensor:
    """:func:`exact_kl` from the model's and the reference's :func:`prefix_tree`."""
    (path_logp, next_logp), (_, ref_next_logp) = tree, reference_tree
    node_kl = (next_logp.exp() * (next_logp - ref_next_logp)).sum(dim=-1)  # [N, M]
    return (path_logp.exp() * node_kl).sum(dim=1)


def _exact_success_and_kl(
    model: TinyLM, reference_tree: tuple[Tensor, Tensor]
) -> tuple[Tensor, Tensor]:
    """(:func:`exact_success` of ``model``, :func:`exact_kl` of ``model`` to a reference), the
    same values from one :func:`prefix_tree` of ``model`` and the reference's tree computed
    once by the caller: a trainer that evaluates every few updates against one frozen
    reference needs one tree a call instead of three."""
    tree = prefix_tree(model)
    return _tree_success(model.task, tree), _tree_kl(tree, reference_tree)


# --- pretraining ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PretrainConfig:
    """Next-token pretraining of a :class:`TinyLM` on ``task.pretraining_batch``.

    Introduced in Chapter 11.
    """

    task: DigitSumTask = field(default_factory=DigitSumTask)  # the task and its vocabulary
    d_model: int = 64  # the model's width
    n_layers: int = 2  # transformer blocks
    n_heads: int = 4  # attention heads per block
    steps: int = 1_000  # Adam steps
    batch_size: int = 64  # sequences per step
    lr: float = 3e-3  # Adam step size
    valid_fraction: float = 0.3  # share of correct completions in the data (the rest random)
    seed: int = 0  # seeds the initial weights and the data

    def __post_init__(self) -> None:
        _checks.instance("task", self.task, DigitSumTask, "a DigitSumTask")
        _checks.positive_int("steps", self.steps, limit=1_000_000)
        _checks.positive_int("batch_size", self.batch_size, limit=100_000)
        object.__setattr__(self, "lr", _checks.real("lr", self.lr, low=0, low_open=True))
        _checks.unit_interval("valid_fraction", self.valid_fraction)
        _checks.integer("seed", self.seed, low=0)
        TinyLM(self.task, self.d_model, self.n_layers, self.n_heads)  # checks the sizes

    def to_dict(self) -> dict[str, object]:
        """The fields as a JSON-ready dict (the task as its own dict)."""
        return asdict(self)


@dataclass
class PretrainResult:
    """What :func:`pretrain` returns: the model, the loss of every step (the mean negative
    log-likelihood per completion token, in nats) and the wall time. Introduced in Chapter 11.
    """

    model: TinyLM
    losses: list[float]
    seconds: float

    def __post_init__(self) -> None:
        _checks.instance("model", self.model, TinyLM, "a TinyLM")
        _checks.instance("losses", self.losses, list, "a list of floats")
        for loss in self.losses:
            _checks.real("every loss", loss)
        _checks.real("seconds", self.seconds, low=0)


def pretrain(config: PretrainConfig, *, progress: bool = True) -> PretrainResult:
    """Train a fresh :class:`TinyLM` by maximum likelihood on the task's pretraining data.

    Each step draws ``batch_size`` sequences and takes an Adam step on
    −Σ sequence_logprobs / (number of completion tokens). Seeded by ``config.seed`` (the
    global torch RNG and thread count are restored afterwards); one thread, since the model
    is small. ``progress`` shows a tqdm bar with the loss. Introduced in Chapter 11.
    """
    _checks.instance("config", config, PretrainConfig, "a PretrainConfig")
    _checks.boolean("progress", progress)
    threads = torch.get_num_threads()
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        torch.set_num_threads(1)
        try:
            model = TinyLM(config.task, config.d_model, config.n_layers, config.n_heads)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
            generator = torch.Generator().manual_seed(config.seed)
            losses: list[float] = []
            bar = tqdm(range(config.steps), desc="pretraining", disable=not progress)
            for _ in bar:
                tokens, mask = config.task.pretraining_batch(
                    config.batch_size, generator, valid_fraction=config.valid_fraction
                )
                loss = -sequence_logprobs(model, tokens, mask).sum() / mask.sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                losses.append(loss.item())
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
        finally:
            torch.set_num_threads(threads)
    return PretrainResult(model, losses, time.perf_counter() - start)


# --- checks ---------------------------------------------------------------------------------


def _check_tokens(name: str, tokens: object, model: TinyLM, *, high: int) -> Tensor:
    """``tokens`` as a long tensor [B, L] of ids of ``model``'s vocabulary, 1 <= L <= high."""
    _checks.instance(name, tokens, Tensor, "a torch tensor of token ids")
    if tokens.dtype != torch.long or tokens.ndim != 2 or not 1 <= tokens.shape[1] <= high:
        raise ValueError(
            f"{name} must be a torch.long tensor [B, L] with 1 <= L <= {high}, "
            f"got {_checks.describe(tokens)}"
        )
    _checks.index_array(name, tokens, high=model.task.vocab_size)
    return tokens


def _check_decode(model: object, prompts: object, max_new_tokens: object) -> None:
    _checks.instance("model", model, TinyLM, "a TinyLM")
    _check_tokens("prompts", prompts, model, high=model.context_length)
    max_new_tokens = _checks.positive_int("max_new_tokens", max_new_tokens)
    room = model.context_length + 1 - prompts.shape[1]
    if max_new_tokens > room:
        raise ValueError(
            f"max_new_tokens must be at most {room} (the model reads at most "
            f"{model.context_length} tokens, {prompts.shape[1]} of them prompt), "
            f"got {max_new_tokens}"
        )


def _check_sequence_logprobs(model: object, tokens: object, mask: object) -> None:
    _checks.instance("model", model, TinyLM, "a TinyLM")
    _check_tokens("tokens", tokens, model, high=model.context_length + 1)
    n_new = tokens.shape[1] - 1
    _checks.instance("mask", mask, Tensor, "a bool torch tensor")
    if mask.ndim != 2 or not 1 <= mask.shape[1] <= n_new:
        raise ValueError(
            f"mask must be [B, T] with 1 <= T <= {n_new} (tokens holds at least one prompt "
            f"token), got shape {tuple(mask.shape)}"
        )
    _checks.bool_flags("mask", mask, (tokens.shape[0], mask.shape[1]))


sequence_logprobs = _checks.checked_by(_check_sequence_logprobs)(sequence_logprobs)
