"""The language-model trainers: REINFORCE, RLOO, GRPO and Dr. GRPO, one sampling-and-update loop.

Each update draws ``prompts_per_update`` prompts of the task, samples ``group_size``
completions of each from the current policy (:func:`pglib.generate`), scores them with the
task's reward, turns the rewards into one advantage per completion, and takes ``epochs``
full-batch Adam steps on :func:`pglib.grpo_loss`, with ``old_logp`` the sampling log-probs
(so the first step's ratios are 1) and ``ref_logp`` those of the frozen reference (the model
training started from). The methods differ only in the advantage and the loss options, named
variants as in TRL (:data:`METHOD_PRESETS`):

- ``"reinforce"``: A = r − the batch's mean reward, one epoch, β = 0, ``"constant"``
  aggregation. With one step from θ_old the ratio is 1 and the clip never acts, so the
  gradient is −(1 / (B T_max)) Σ_b A_b Σ_t ∇log π(o_bt): the REINFORCE estimate (sum over a
  sequence's tokens, mean over sequences) divided by the constant T_max = completion_length;
- ``"rloo"``: the leave-one-out baseline (:func:`pglib.group_advantages` ``"rloo"``), as
  REINFORCE otherwise;
- ``"grpo"``: group-normalised advantages, ``"sequence"`` aggregation, clip ε = 0.2, a k3
  penalty with β = 0.04 and two epochs per batch (Shao et al., 2024);
- ``"dr_grpo"``: r − the group mean, ``"constant"`` aggregation, β = 0 (Liu et al., 2025),
  clip and epochs as GRPO.

A config field left at None takes its method's preset, so ``AlignConfig("grpo",
aggregation="constant")`` changes one option of a named method (Chapter 12's length-bias
experiment). Introduced in Chapter 11 (REINFORCE) and Chapter 12 (the rest).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from pglib import _checks
from pglib.alignment import AGGREGATIONS, group_advantages, grpo_loss, kl_estimate
from pglib.checkpoints import load_pretrained_lm
from pglib.lm import (
    TinyLM,
    exact_greedy_success,
    exact_kl,
    exact_success,
    generate,
    sequence_logprobs,
)

__all__ = ["ALIGN_METHODS", "METHOD_PRESETS", "AlignConfig", "AlignHistory", "align"]

#: The trainers of this module, by the name ``python -m pglib align --method`` gives them.
ALIGN_METHODS = ("reinforce", "rloo", "grpo", "dr_grpo")
#: Each method's loss options: (advantage, epochs, clip_eps, beta, aggregation).
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    "reinforce": dict(advantage="batch", epochs=1, clip_eps=0.2, beta=0.0, aggregation="constant"),
    "rloo": dict(advantage="rloo", epochs=1, clip_eps=0.2, beta=0.0, aggregation="constant"),
    "grpo": dict(advantage="grpo", epochs=2, clip_eps=0.2, beta=0.04, aggregation="sequence"),
    "dr_grpo": dict(advantage="dr_grpo", epochs=2, clip_eps=0.2, beta=0.0, aggregation="constant"),
}
#: Size guards: updates, epochs, and completions per update.
MAX_UPDATES = 1_000_000
MAX_EPOCHS = 1_000
MAX_BATCH = 100_000


@dataclass(frozen=True)
class AlignConfig:
    """One run of a language-model trainer; None fields take ``method``'s preset.

    Introduced in Chapter 11.
    """

    method: str = "grpo"  # "reinforce", "rloo", "grpo" or "dr_grpo" (see the module notes)
    seed: int = 0  # seeds the prompt draws and the sampling
    updates: int = 100  # the budget: sampling-and-update rounds
    prompts_per_update: int = 16  # prompts drawn (without replacement) per update
    group_size: int = 8  # G, completions sampled per prompt
    lr: float = 2e-3  # Adam step size
    epochs: int | None = None  # full-batch Adam steps on each sampled batch
    clip_eps: float | None = None  # ε of the clipped ratio
    beta: float | None = None  # weight β of the k3 KL penalty to the reference
    aggregation: str | None = None  # "sequence", "token" or "constant" (pglib.grpo_loss)
    max_grad_norm: float | None = 1.0  # clip the gradient's norm to this (None: off)
    eval_every: int = 10  # exact evaluation every this many updates (and at start and end)

    def __post_init__(self) -> None:
        _checks.choice("method", self.method, ALIGN_METHODS)
        _checks.integer("seed", self.seed, low=0)
        _checks.positive_int("updates", self.updates, limit=MAX_UPDATES)
        _checks.positive_int("prompts_per_update", self.prompts_per_update, limit=MAX_BATCH)
        _checks.integer("group_size", self.group_size, low=2, high=MAX_BATCH)
        if self.prompts_per_update * self.group_size > MAX_BATCH:
            raise ValueError(
                f"prompts_per_update × group_size must be at most {MAX_BATCH} completions an "
                f"update, got {self.prompts_per_update} × {self.group_size}"
            )
        self._set("lr", _checks.real("lr", self.lr, low=0.0, low_open=True))
        _checks.positive_int("eval_every", self.eval_every, limit=MAX_UPDATES)
        if self.max_grad_norm is not None:
            norm = _checks.real("max_grad_norm", self.max_grad_norm, low=0.0, low_open=True)
            self._set("max_grad_norm", norm)
        preset = METHOD_PRESETS[self.method]
        for name in ("epochs", "clip_eps", "beta", "aggregation"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, preset[name])
        _checks.positive_int("epochs", self.epochs, limit=MAX_EPOCHS)
        self._set("clip_eps", _checks.real("clip_eps", self.clip_eps, low=0.0, low_open=True))
        self._set("beta", _checks.real("beta", self.beta, low=0.0))
        _checks.choice("aggregation", self.aggregation, AGGREGATIONS)

    def _set(self, name: str, value: float) -> None:
        """Store a NumPy or torch scalar as a Python float, so that the config stays
        JSON-ready; a Python int or float is kept as given."""
        if not isinstance(getattr(self, name), (int, float)):
            object.__setattr__(self, name, value)

    @property
    def advantage(self) -> str:
        """The method's advantage: ``"batch"`` (r − batch mean) or a
        :func:`pglib.group_advantages` method."""
        return METHOD_PRESETS[self.method]["advantage"]

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict, presets filled in, with ``"advantage"``."""
        return {**asdict(self), "advantage": self.advantage}


@dataclass
class AlignHistory:
    """What :func:`align` records, and the trained model and its frozen reference.

    One entry per update:

    - ``samples``: completions sampled so far; ``wall_seconds``: training seconds so far
      (the exact evaluations excluded), of which ``sample_seconds`` (generating, scoring and
      the reference's log-probs) and ``update_seconds`` (the Adam steps), per update;
    - ``mean_reward``: the mean reward of the update's completions;
    - ``zero_variance_groups``: the share of prompts whose G rewards were all equal (zero
      advantage under every group baseline);
    - ``correct_length``, ``wrong_length``: mean completion length, in tokens with the ending
      token, of the rewarded and the other completions (NaN when there were none);
    - ``loss``, ``grad_norm`` (before clipping), ``clip_fraction`` (share of completion
      tokens whose ratio lay outside [1 − ε, 1 + ε]): means over the update's Adam steps;
      the loss is no performance measure (it can be 0 while its gradient is not);
    - ``sampled_kl``: the k3 estimate of KL(π ‖ π_ref), summed over each completion's tokens
      and averaged over completions, from the sampled batch.

    One entry per exact evaluation (before the first update, every ``eval_every`` updates and
    after the last): ``eval_update`` (updates done), ``eval_success`` and
    ``eval_greedy_success`` (:func:`pglib.exact_success` and
    :func:`pglib.exact_greedy_success`, averaged over all prompts), ``eval_kl``
    (:func:`pglib.exact_kl` to the reference, averaged over all prompts). Introduced in
    Chapter 11.
    """

    config: AlignConfig
    model: TinyLM
    reference: TinyLM
    samples: list[int] = field(default_factory=list)
    wall_seconds: list[float] = field(default_factory=list)
    sample_seconds: list[float] = field(default_factory=list)
    update_seconds: list[float] = field(default_factory=list)
    mean_reward: list[float] = field(default_factory=list)
    zero_variance_groups: list[float] = field(default_factory=list)
    correct_length: list[float] = field(default_factory=list)
    wrong_length: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    clip_fraction: list[float] = field(default_factory=list)
    sampled_kl: list[float] = field(default_factory=list)
    eval_update: list[int] = field(default_factory=list)
    eval_success: list[float] = field(default_factory=list)
    eval_greedy_success: list[float] = field(default_factory=list)
    eval_kl: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        _checks.instance("config", self.config, AlignConfig, "an AlignConfig")
        _checks.instance("model", self.model, TinyLM, "a TinyLM")
        _checks.instance("reference", self.reference, TinyLM, "a TinyLM")

    def to_dict(self) -> dict[str, Any]:
        """The per-update and per-evaluation lists as plain JSON-ready Python values (NaN
        becomes ``None``)."""
        skip = ("config", "model", "reference")
        return {
            f.name: [
                None if isinstance(v, float) and math.isnan(v) else v for v in getattr(self, f.name)
            ]
            for f in fields(self)
            if f.name not in skip
        }


def _advantages(config: AlignConfig, rewards: Tensor) -> Tensor:
    """[P, G] rewards -> [P·G] advantages, by the method's baseline."""
    if config.advantage == "batch":
        return (rewards - rewards.mean()).flatten()
    return group_advantages(rewards, config.advantage).flatten()


def _evaluate(history: AlignHistory, updates: int) -> None:
    """Append the exact success (sampled and greedy) and the exact KL to the reference."""
    model, reference = history.model, history.reference
    history.eval_update.append(updates)
    history.eval_success.append(float(exact_success(model).mean()))
    history.eval_greedy_success.append(float(exact_greedy_success(model).mean()))
    history.eval_kl.append(float(exact_kl(model, reference).mean()))


def _mean_or_nan(values: Tensor) -> float:
    return float(values.float().mean()) if values.numel() else math.nan


def align(
    config: AlignConfig,
    callback: Callable[[AlignHistory], bool | None] | None = None,
    *,
    base: TinyLM | None = None,
    progress: bool = True,
) -> AlignHistory:
    """Fine-tune a copy of ``base`` (default: :func:`pglib.load_pretrained_lm`) on its task's
    reward with ``config.method``; ``base`` itself is neither changed nor trained.

    Runs ``config.updates`` updates (the module notes give one), or until
    ``callback(history)`` returns True after an update. The reference is a frozen copy of
    ``base``. Seeded by ``config.seed``; one torch thread, and the global torch RNG and
    thread count are restored afterwards. ``progress`` shows a tqdm bar with the mean reward
    and the last exact success. Introduced in Chapter 11.
    """
    _checks.instance("config", config, AlignConfig, "an AlignConfig")
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be callable or None, got {type(callback).__name__}")
    if base is not None:
        _checks.instance("base", base, TinyLM, "a TinyLM or None")
    _checks.boolean("progress", progress)
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        base = load_pretrained_lm() if base is None else base  # building it draws weights
        n_prompts = len(base.task.targets)
        if config.prompts_per_update > n_prompts:
            raise ValueError(
                f"prompts_per_update must be at most the task's {n_prompts} prompts, "
                f"got {config.prompts_per_update}"
            )
        torch.manual_seed(config.seed)
        torch.set_num_threads(1)  # a 100k-parameter model: one thread is fastest
        try:
            return _train(config, base, callback, progress)
        finally:
            torch.set_num_threads(threads)


def _train(
    config: AlignConfig,
    base: TinyLM,
    callback: Callable[[AlignHistory], bool | None] | None,
    progress: bool,
) -> AlignHistory:
    model, reference = copy.deepcopy(base).train(), copy.deepcopy(base).eval()
    reference.requires_grad_(False)
    history = AlignHistory(config=config, model=model, reference=reference)
    task, length = base.task, base.task.completion_length
    prompts, group = task.prompts(), config.group_size
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    max_norm = config.max_grad_norm if config.max_grad_norm is not None else math.inf
    _evaluate(history, 0)
    bar = tqdm(range(config.updates), desc=config.method, unit="update", disable=not progress)
    wall = 0.0
    for update in bar:
        start = time.perf_counter()
        chosen = torch.randperm(len(prompts), generator=generator)[: config.prompts_per_update]
        batch = prompts[chosen].repeat_interleave(group, dim=0)  # [P·G, 1], groups adjacent
        tokens, old_logp, mask = generate(model, batch, length, generator=generator)
        rewards = task.reward(tokens)
        with torch.no_grad():
            ref_logp = sequence_logprobs(reference, tokens, mask)
        advantages = _advantages(config, rewards.view(-1, group))
        sampled = time.perf_counter()
        losses, norms, clipped = [], [], []
        for _ in range(config.epochs):
            logp = sequence_logprobs(model, tokens, mask)
            loss = grpo_loss(
                logp,
                old_logp,
                ref_logp if config.beta > 0 else None,
                advantages,
                mask,
                clip_eps=config.clip_eps,
                beta=config.beta,
                aggregation=config.aggregation,
                max_completion_length=length,
            )
            optimizer.zero_grad()
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)))
            optimizer.step()
            losses.append(float(loss.detach()))
            ratio = (logp.detach() - old_logp).exp()[mask]
            clipped.append(float(((ratio - 1).abs() > config.clip_eps).float().mean()))
        done = time.perf_counter()
        wall += done - start
        lengths, correct = mask.sum(dim=1), rewards > 0
        grouped = rewards.view(-1, group)
        history.samples.append((update + 1) * len(batch))
        history.wall_seconds.append(wall)
        history.sample_seconds.append(sampled - start)
        history.update_seconds.append(done - sampled)
        history.mean_reward.append(float(rewards.mean()))
        history.zero_variance_groups.append(
            float((grouped == grouped[:, :1]).all(dim=1).float().mean())
        )
        history.correct_length.append(_mean_or_nan(lengths[correct]))
        history.wrong_length.append(_mean_or_nan(lengths[~correct]))
        history.loss.append(sum(losses) / len(losses))
        history.grad_norm.append(sum(norms) / len(norms))
        history.clip_fraction.append(sum(clipped) / len(clipped))
        k3 = kl_estimate(old_logp, ref_logp, "k3") * mask
        history.sampled_kl.append(float(k3.sum(dim=1).mean()))
        last = update + 1 == config.updates
        if (update + 1) % config.eval_every == 0 or last:
            _evaluate(history, update + 1)
        bar.set_postfix(
            reward=f"{history.mean_reward[-1]:.2f}",
            success=f"{history.eval_success[-1]:.2f}",
            refresh=False,
        )
        if callback is not None and callback(history):
            if not last and history.eval_update[-1] != update + 1:
                _evaluate(history, update + 1)
            break
    bar.close()
    return history
