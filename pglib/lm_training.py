"""The language-model trainers: REINFORCE, RLOO, GRPO, Dr. GRPO and PPO on the policy's own
samples, DPO and KTO on preference data; one loop, with one small update step per family.

:func:`align` runs ``updates`` updates; the exact evaluation (every ``eval_every`` updates),
the history, the progress bar, the callback and the timing are shared, and only the update
step differs by family (``_STEPS``: ``_group_step``, ``_ppo_step``, ``_dpo_step``,
``_kto_step``).

**Group methods** (Chapters 11 and 12). Each update draws ``prompts_per_update`` prompts of
the task, samples ``group_size`` completions of each from the current policy
(:func:`pglib.generate`), scores them with the task's reward, turns the rewards into one
advantage per completion, and takes ``epochs`` full-batch Adam steps on
:func:`pglib.grpo_loss`, with ``old_logp`` the sampling log-probs (so the first step's ratios
are 1) and ``ref_logp`` those of the frozen reference (the model training started from).
The methods differ only in the advantage and the loss options, named variants as in TRL
(:data:`METHOD_PRESETS`):

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

**PPO on tokens** (Chapter 13; Ouyang et al., 2022, as TRL's PPOTrainer). Each update samples
P × G completions as above and scores them: ``"ppo"`` with the task's reward, ``"rlhf_ppo"``
with a reward model's (:func:`pglib.reward_scores`; one passed to :func:`align`, or one
fitted on ``pairs`` reference pairs with ``label_noise`` before the first update). Every
completion token gets the reward −β (log π_old − log π_ref), β = 0.05, and the last one the
score as well (:func:`pglib.token_rewards`); a value model gives the advantages by GAE with
γ = 1 and λ = ``gae_lambda`` = 0.95, each completion one episode
(:func:`pglib.token_advantages`), whitened over the batch's tokens. ``epochs`` = 4
full-batch Adam steps then take the clipped objective (:func:`pglib.clipped_surrogate_terms`,
ε = 0.2, a mean over the batch's completion tokens) on the policy and the clipped value loss
(:func:`pglib.value_loss`, the same ε) on the value model, with its own Adam at the same
``lr`` (one learning rate, as TRL). The value model is a :class:`pglib.ScalarLM` with the
reference's trunk and a zero head: the same start for both methods (TRL starts it from the
reward model's, which ``"ppo"`` does not have).

**Preference methods** (Chapters 14 and 15). An update's batch is ``prompts_per_update ×
group_size`` = 128 preference pairs (DPO) or labelled completions (KTO), each at a uniform
prompt (the grouping plays no part), labelled by the task's true reward with
``label_noise``. Offline (the preset), ``pairs`` of them are drawn from the reference once,
before training (:func:`pglib.sample_preference_pairs`,
:func:`pglib.sample_labelled_completions`), and each update takes the next batch of shuffled
passes over them; with ``online=True`` each update draws a fresh batch from the current
policy instead, and nothing else changes. Each batch gets ``epochs`` full-batch Adam steps on

- ``"dpo"``: :func:`pglib.dpo_loss` of the chosen and the rejected completions' sequence
  log-probs under the policy and the reference, β = 0.1 (TRL's default; Rafailov et al.,
  2023);
- ``"kto"``: :func:`pglib.kto_loss`, β = 0.1 (TRL's default; Ethayarajh et al., 2024), with
  the reference point z₀ = :func:`pglib.kto_reference_point` of the same batch with its
  completions rolled by one place (mismatched prompt–completion pairs, as the paper and TRL
  do), under the current policy and without gradient. The weights: λ_U = 1 and, unless
  ``desirable_weight`` is set, λ_D = n_U / n_D of the data (the whole offline set, or each
  online batch), so that λ_D n_D / (λ_U n_U) = 1, the low end of the paper's recommended
  [1, 4/3]: the few desirable completions (14.5 % at the committed base model) weigh as much
  in total as the many undesirable ones.

A config field left at None takes its method's preset, so ``AlignConfig("grpo",
aggregation="constant")`` changes one option of a named method (Chapter 12's length-bias
experiment); a field the method does not use must stay None. Introduced in Chapter 11
(REINFORCE), Chapter 12 (the group methods), Chapter 13 (PPO), Chapter 14 (DPO) and
Chapter 15 (KTO).
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
from pglib.alignment import (
    AGGREGATIONS,
    dpo_loss,
    group_advantages,
    grpo_loss,
    kl_estimate,
    kto_loss,
    kto_reference_point,
)
from pglib.checkpoints import load_pretrained_lm
from pglib.lm import (
    TinyLM,
    _exact_success_and_kl,
    exact_greedy_success,
    generate,
    prefix_tree,
    sequence_logprobs,
)
from pglib.ppo import _explained_variance, clipped_surrogate_terms, value_loss
from pglib.preferences import (
    MAX_LABEL_NOISE,
    MAX_SAMPLES,
    LabelledCompletions,
    _sample_pairs,
    sample_labelled_completions,
)
from pglib.reward_model import (
    RewardModelConfig,
    ScalarLM,
    reward_scores,
    token_advantages,
    token_rewards,
    train_reward_model,
)

__all__ = [
    "ALIGN_METHODS",
    "GROUP_METHODS",
    "PREFERENCE_METHODS",
    "PPO_METHODS",
    "METHOD_PRESETS",
    "REWARD_MODEL_EPOCHS",
    "AlignConfig",
    "AlignHistory",
    "align",
]

#: The methods that learn from the policy's own samples with a group baseline (Chapter 12).
GROUP_METHODS = ("reinforce", "rloo", "grpo", "dr_grpo")
#: The methods that learn from preference data labelled by the true reward (Chapters 14, 15).
PREFERENCE_METHODS = ("dpo", "kto")
#: PPO with a value model on the task's reward or on a learned reward model's (Chapter 13).
PPO_METHODS = ("ppo", "rlhf_ppo")
#: The trainers of this module, by the name ``python -m pglib align --method`` gives them.
ALIGN_METHODS = (*GROUP_METHODS, *PPO_METHODS, *PREFERENCE_METHODS)
#: Each method's options: the config fields it uses, with their presets (a field missing
#: here does not apply to the method and must stay None), and a group method's advantage.
#: KTO's ``desirable_weight`` preset None means λ_D = n_U / n_D of the data.
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    "reinforce": dict(advantage="batch", epochs=1, clip_eps=0.2, beta=0.0, aggregation="constant"),
    "rloo": dict(advantage="rloo", epochs=1, clip_eps=0.2, beta=0.0, aggregation="constant"),
    "grpo": dict(advantage="grpo", epochs=2, clip_eps=0.2, beta=0.04, aggregation="sequence"),
    "dr_grpo": dict(advantage="dr_grpo", epochs=2, clip_eps=0.2, beta=0.0, aggregation="constant"),
    "ppo": dict(epochs=4, clip_eps=0.2, beta=0.05, gae_lambda=0.95),
    "rlhf_ppo": dict(
        epochs=4, clip_eps=0.2, beta=0.05, gae_lambda=0.95, pairs=2048, label_noise=0.0
    ),
    "dpo": dict(epochs=1, beta=0.1, online=False, pairs=2048, label_noise=0.0),
    "kto": dict(
        epochs=1,
        beta=0.1,
        online=False,
        pairs=2048,
        label_noise=0.0,
        desirable_weight=None,
        undesirable_weight=1.0,
    ),
}
#: The config fields that take a method's preset, in the order they are resolved (``online``
#: before ``pairs``, which only offline data use).
_OPTIONS = (
    "epochs",
    "clip_eps",
    "beta",
    "aggregation",
    "gae_lambda",
    "online",
    "pairs",
    "label_noise",
    "desirable_weight",
    "undesirable_weight",
)
#: Online DPO draws at most this many prompts (two completions each) per pair it wants in an
#: update: a policy that is almost always right (or wrong) at a prompt gives few
#: right-vs-wrong pairs, and the update then trains on the pairs it got (none: no step).
ONLINE_PROMPTS_PER_PAIR = 8
#: rlhf_ppo's own reward model: passes over its pairs (:class:`pglib.RewardModelConfig`'s
#: other fields as preset); on 2,000 reference pairs, 5 epochs gave held-out accuracy 0.86.
REWARD_MODEL_EPOCHS = 5
#: Size guards: updates, epochs, and completions per update.
MAX_UPDATES = 1_000_000
MAX_EPOCHS = 1_000
MAX_BATCH = 100_000


@dataclass(frozen=True)
class AlignConfig:
    """One run of a language-model trainer; None fields take ``method``'s preset.

    Introduced in Chapter 11; ``gae_lambda`` in Chapter 13, the preference fields in
    Chapters 14 and 15 (``pairs`` and ``label_noise`` also in 13, for rlhf_ppo's reward model).
    """

    method: str = "grpo"  # one of ALIGN_METHODS (see the module notes)
    seed: int = 0  # seeds the prompt draws, the sampling and the data
    updates: int = 100  # the budget: sampling-and-update rounds
    prompts_per_update: int = 16  # prompts drawn (without replacement) per update
    group_size: int = 8  # G, completions sampled per prompt (dpo, kto: P × G pairs an update)
    lr: float = 2e-3  # Adam step size
    epochs: int | None = None  # full-batch Adam steps on each batch
    clip_eps: float | None = None  # group and ppo methods: ε of the clipped ratio (ppo: value)
    beta: float | None = None  # grpo: k3 penalty's weight; ppo: per-token k1's; dpo, kto: β
    aggregation: str | None = None  # group methods: "sequence", "token" or "constant"
    gae_lambda: float | None = None  # ppo, rlhf_ppo: λ of the token-level GAE
    max_grad_norm: float | None = 1.0  # clip the gradient's norm to this (None: off)
    eval_every: int = 10  # exact evaluation every this many updates (and at start and end)
    online: bool | None = None  # dpo, kto: draw each batch from the current policy
    pairs: int | None = None  # dpo, kto offline, rlhf_ppo: pairs / labelled completions drawn
    label_noise: float | None = None  # dpo, kto, rlhf_ppo: probability that a label is swapped
    desirable_weight: float | None = None  # kto: λ_D (None: n_U / n_D of the data)
    undesirable_weight: float | None = None  # kto: λ_U

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
        self._fill_presets()
        _checks.positive_int("epochs", self.epochs, limit=MAX_EPOCHS)
        preference = self.method in PREFERENCE_METHODS  # their β divides: it must be > 0
        self._set("beta", _checks.real("beta", self.beta, low=0.0, low_open=preference))
        if self.clip_eps is not None:
            self._set("clip_eps", _checks.real("clip_eps", self.clip_eps, low=0.0, low_open=True))
        if self.aggregation is not None:
            _checks.choice("aggregation", self.aggregation, AGGREGATIONS)
        if self.gae_lambda is not None:
            self._set("gae_lambda", _checks.unit_interval("gae_lambda", self.gae_lambda))
        if self.pairs is not None:
            _checks.positive_int("pairs", self.pairs, limit=MAX_SAMPLES)
        if self.label_noise is not None:
            noise = _checks.real("label_noise", self.label_noise, low=0.0, high=MAX_LABEL_NOISE)
            self._set("label_noise", noise)
        for name in ("desirable_weight", "undesirable_weight"):
            if getattr(self, name) is not None:
                self._set(name, _checks.real(name, getattr(self, name), low=0.0, low_open=True))

    def _fill_presets(self) -> None:
        """Give each field left at None its method's preset; refuse a field set for a method
        that does not use it (and ``pairs`` with online data, which draw their own)."""
        preset = METHOD_PRESETS[self.method]
        for name in _OPTIONS:
            value = getattr(self, name)
            if name not in preset:
                if value is not None:
                    raise ValueError(
                        f"{name} does not apply to method {self.method!r} (it uses "
                        f"{', '.join(k for k in preset if k != 'advantage')}); leave it None, "
                        f"got {_checks.describe(value)}"
                    )
            elif name == "online" and value is not None:
                object.__setattr__(self, name, _checks.boolean("online", value))
            elif name == "pairs" and self.online:
                if value is not None:
                    raise ValueError(
                        f"pairs applies to offline data only: with online=True every update "
                        f"draws its own batch from the policy; leave it None, got "
                        f"{_checks.describe(value)}"
                    )
            elif value is None:
                object.__setattr__(self, name, preset[name])

    def _set(self, name: str, value: float) -> None:
        """Store a NumPy or torch scalar as a Python float, so that the config stays
        JSON-ready; a Python int or float is kept as given."""
        if not isinstance(getattr(self, name), (int, float)):
            object.__setattr__(self, name, value)

    @property
    def advantage(self) -> str | None:
        """A group method's advantage: ``"batch"`` (r − batch mean) or a
        :func:`pglib.group_advantages` method; None for the other methods."""
        return METHOD_PRESETS[self.method].get("advantage")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict, presets filled in, with ``"advantage"``."""
        return {**asdict(self), "advantage": self.advantage}


@dataclass
class AlignHistory:
    """What :func:`align` records, the trained model, its frozen reference, and for rlhf_ppo
    the ``reward_model`` it used (:class:`pglib.ScalarLM`; None for the other methods).

    One entry per update, for every method:

    - ``samples``: completions sampled from the policy being trained, so far (0 for offline
      dpo and kto; online dpo counts the discarded equal-reward pairs' completions too);
    - ``wall_seconds``: training seconds so far (the exact evaluations excluded), of which
      ``sample_seconds`` (generating, scoring, the reference's log-probs; the first update's
      includes drawing the offline data, or rlhf_ppo's reward model) and ``update_seconds``
      (the Adam steps), per update;
    - ``loss`` and ``grad_norm`` (before clipping): means over the update's Adam steps; the
      loss is no performance measure (it can be 0 while its gradient is not).

    Group methods, ppo and rlhf_ppo (empty for dpo and kto):

    - ``mean_reward``: the mean (true) task reward of the update's completions;
    - ``zero_variance_groups``: the share of prompts whose G rewards were all equal (zero
      advantage under every group baseline);
    - ``correct_length``, ``wrong_length``: mean completion length, in tokens with the ending
      token, of the rewarded and the other completions (NaN when there were none);
    - ``clip_fraction``: the share of completion tokens whose ratio lay outside
      [1 − ε, 1 + ε], a mean over the update's Adam steps;
    - ``sampled_kl``: the k3 estimate of KL(π ‖ π_ref), summed over each completion's tokens
      and averaged over completions, from the sampled batch.

    ppo and rlhf_ppo only (empty for the others):

    - ``proxy_reward``: the mean score the policy was trained on, of the update's
      completions: the reward model's for rlhf_ppo (its rise beside a falling
      ``eval_success`` is over-optimisation), the task reward (= ``mean_reward``) for ppo;
    - ``value_loss``: :func:`pglib.value_loss`, a mean over the update's Adam steps;
    - ``explained_variance``: 1 − Var(R − V)/Var(R) over the batch's completion tokens, V the
      value model's outputs before the update and R the GAE returns it regresses on (1:
      perfect, ≤ 0: no better than a constant);
    - rlhf_ppo: ``reward_model_seconds``, the seconds spent drawing the reward model's pairs
      and fitting it (part of ``wall_seconds``; 0 when a reward model was passed in), and,
      as for dpo, ``reference_samples`` and ``preference_data`` (its pairs; 0 when passed in).

    dpo and kto only (empty for the others, but rlhf_ppo's data counts), the data first:

    - ``reference_samples``: completions sampled from the reference for the offline data
      (dpo: discarded equal-reward pairs included), 0 online;
    - ``preference_data``: preference pairs (dpo) or labelled completions (kto) drawn so
      far: the offline set from the first update on, or the online batches so far.

    Then the batch's implicit rewards r̂ = β (log π(y|x) − log π_ref(y|x)) and log-probs,
    as the update's first Adam step saw them (before that step), means over the batch:

    - dpo: ``chosen_reward``, ``rejected_reward``, ``chosen_logp``, ``rejected_logp`` (the
      policy's sequence log-probs: the chosen ones may fall too), and ``reward_accuracy``,
      the share of pairs whose chosen completion has the higher implicit reward;
    - kto: ``desirable_reward``, ``undesirable_reward`` (by label after noise; NaN when a
      batch has none), ``reference_point`` (z₀ of the first step), and
      ``desirable_weight`` (the λ_D used).

    One entry per exact evaluation (before the first update, every ``eval_every`` updates and
    after the last): ``eval_update`` (updates done), ``eval_success`` and
    ``eval_greedy_success`` (:func:`pglib.exact_success` and
    :func:`pglib.exact_greedy_success`, averaged over all prompts), ``eval_kl``
    (:func:`pglib.exact_kl` to the reference, averaged over all prompts). Introduced in
    Chapter 11; the dpo and kto lists in Chapters 14 and 15.
    """

    config: AlignConfig
    model: TinyLM
    reference: TinyLM
    reward_model: ScalarLM | None = None
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
    proxy_reward: list[float] = field(default_factory=list)
    value_loss: list[float] = field(default_factory=list)
    explained_variance: list[float] = field(default_factory=list)
    reward_model_seconds: list[float] = field(default_factory=list)
    reference_samples: list[int] = field(default_factory=list)
    preference_data: list[int] = field(default_factory=list)
    chosen_reward: list[float] = field(default_factory=list)
    rejected_reward: list[float] = field(default_factory=list)
    chosen_logp: list[float] = field(default_factory=list)
    rejected_logp: list[float] = field(default_factory=list)
    reward_accuracy: list[float] = field(default_factory=list)
    desirable_reward: list[float] = field(default_factory=list)
    undesirable_reward: list[float] = field(default_factory=list)
    reference_point: list[float] = field(default_factory=list)
    desirable_weight: list[float] = field(default_factory=list)
    eval_update: list[int] = field(default_factory=list)
    eval_success: list[float] = field(default_factory=list)
    eval_greedy_success: list[float] = field(default_factory=list)
    eval_kl: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        _checks.instance("config", self.config, AlignConfig, "an AlignConfig")
        _checks.instance("model", self.model, TinyLM, "a TinyLM")
        _checks.instance("reference", self.reference, TinyLM, "a TinyLM")
        if self.reward_model is not None:
            _checks.instance("reward_model", self.reward_model, ScalarLM, "a ScalarLM or None")

    def to_dict(self) -> dict[str, Any]:
        """The per-update and per-evaluation lists as plain JSON-ready Python values (NaN
        becomes ``None``)."""
        skip = ("config", "model", "reference", "reward_model")
        return {
            f.name: [
                None if isinstance(v, float) and math.isnan(v) else v for v in getattr(self, f.name)
            ]
            for f in fields(self)
            if f.name not in skip
        }


def _evaluate(history: AlignHistory, updates: int, reference_tree: tuple[Tensor, Tensor]) -> None:
    """Append the exact success (sampled and greedy) and the exact KL to the reference, whose
    :func:`pglib.prefix_tree` ``reference_tree`` the run computes once (it is frozen)."""
    success, kl = _exact_success_and_kl(history.model, reference_tree)
    history.eval_update.append(updates)
    history.eval_success.append(float(success.mean()))
    history.eval_greedy_success.append(float(exact_greedy_success(history.model).mean()))
    history.eval_kl.append(float(kl.mean()))


def _mean_or_nan(values: Tensor) -> float:
    return float(values.float().mean()) if values.numel() else math.nan


def _so_far(counts: list[int], more: int) -> int:
    """A running total: the last entry of ``counts`` (0 when empty) plus ``more``."""
    return (counts[-1] if counts else 0) + more


def align(
    config: AlignConfig,
    callback: Callable[[AlignHistory], bool | None] | None = None,
    *,
    base: TinyLM | None = None,
    progress: bool = True,
    reward_model: ScalarLM | None = None,
) -> AlignHistory:
    """Fine-tune a copy of ``base`` (default: :func:`pglib.load_pretrained_lm`) on its task's
    reward with ``config.method``; ``base`` itself is neither changed nor trained.

    rlhf_ppo trains on ``reward_model``'s scores, a :class:`pglib.ScalarLM` of ``base``'s
    task used as given (neither trained nor copied; ``config.pairs`` and
    ``config.label_noise`` then go unused), or, when it is None, on a reward model fitted in
    the run (:func:`pglib.train_reward_model`, from ``base``'s trunk, ``REWARD_MODEL_EPOCHS``
    epochs) on ``config.pairs`` preference pairs drawn from the reference with
    ``config.label_noise``. The other methods take no reward model.

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
    if reward_model is not None:
        _checks.instance("reward_model", reward_model, ScalarLM, "a ScalarLM or None")
        if config.method != "rlhf_ppo":
            raise ValueError(
                f"reward_model applies to method 'rlhf_ppo' only; leave it None for "
                f"{config.method!r}, got a ScalarLM"
            )
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        base = load_pretrained_lm() if base is None else base  # building it draws weights
        n_prompts = len(base.task.targets)
        if config.prompts_per_update > n_prompts:
            raise ValueError(
                f"prompts_per_update must be at most the task's {n_prompts} prompts, "
                f"got {config.prompts_per_update}"
            )
        if reward_model is not None and reward_model.task != base.task:
            raise ValueError(
                f"reward_model must be a model of base's task ({base.task}), got one of "
                f"{reward_model.task}"
            )
        torch.manual_seed(config.seed)
        torch.set_num_threads(1)  # a 100k-parameter model: one thread is fastest
        try:
            return _train(config, base, callback, progress, reward_model)
        finally:
            torch.set_num_threads(threads)


@dataclass
class _Run:
    """What every update step works on: the run's config, the policy being trained, the
    frozen reference, the history, the optimiser, the run's one generator, and the reward
    model passed to :func:`align`."""

    config: AlignConfig
    model: TinyLM
    reference: TinyLM
    history: AlignHistory
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    reward_model: ScalarLM | None

    def adam_step(
        self,
        loss: Tensor,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> float:
        """One Adam step on ``loss``, the gradient's norm clipped to ``max_grad_norm``;
        returns the norm before clipping. The policy's step, unless another ``model`` and
        its ``optimizer`` are given (PPO's value model)."""
        model = self.model if model is None else model
        optimizer = self.optimizer if optimizer is None else optimizer
        max_norm = self.config.max_grad_norm
        optimizer.zero_grad()
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            model.parameters(), max_norm if max_norm is not None else math.inf
        )
        optimizer.step()
        return float(norm)

    @property
    def batch_size(self) -> int:
        """Completions (group methods), pairs (dpo) or labelled completions (kto) an update."""
        return self.config.prompts_per_update * self.config.group_size


#: One update: it appends its method's own history entries and returns the seconds it spent
#: (sampling, updating). A family's builder (``_STEPS``) prepares what the updates share,
#: such as offline data, and returns the step.
Step = Callable[[], tuple[float, float]]


def _train(
    config: AlignConfig,
    base: TinyLM,
    callback: Callable[[AlignHistory], bool | None] | None,
    progress: bool,
    reward_model: ScalarLM | None,
) -> AlignHistory:
    model, reference = copy.deepcopy(base).train(), copy.deepcopy(base).eval()
    reference.requires_grad_(False)
    history = AlignHistory(config=config, model=model, reference=reference)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    run = _Run(config, model, reference, history, optimizer, generator, reward_model)
    step = _STEPS[config.method](run)
    wall = setup = time.perf_counter() - start  # drawing offline data is training time
    reference_tree = prefix_tree(reference)
    _evaluate(history, 0, reference_tree)
    bar = tqdm(range(config.updates), desc=config.method, unit="update", disable=not progress)
    for update in bar:
        start = time.perf_counter()
        sampling, updating = step()
        wall += time.perf_counter() - start
        history.wall_seconds.append(wall)
        history.sample_seconds.append(sampling + (setup if update == 0 else 0.0))
        history.update_seconds.append(updating)
        last = update + 1 == config.updates
        if (update + 1) % config.eval_every == 0 or last:
            _evaluate(history, update + 1, reference_tree)
        shown = ("reward", history.mean_reward) if history.mean_reward else ("loss", history.loss)
        bar.set_postfix(
            {shown[0]: f"{shown[1][-1]:.2f}", "success": f"{history.eval_success[-1]:.2f}"},
            refresh=False,
        )
        if callback is not None and callback(history):
            if not last and history.eval_update[-1] != update + 1:
                _evaluate(history, update + 1, reference_tree)
            break
    bar.close()
    return history


# --- the update steps, one family each ------------------------------------------------------


def _advantages(config: AlignConfig, rewards: Tensor) -> Tensor:
    """[P, G] rewards -> [P·G] advantages, by the method's baseline."""
    if config.advantage == "batch":
        return (rewards - rewards.mean()).flatten()
    return group_advantages(rewards, config.advantage).flatten()


def _sample_completions(run: _Run) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Draw ``prompts_per_update`` prompts and sample ``group_size`` completions of each from
    the policy: (tokens [B, 1 + T], old_logp [B, T], mask [B, T], the task's rewards [B],
    the reference's log-probs [B, T]), B = P·G with each prompt's G completions adjacent."""
    config, task = run.config, run.model.task
    prompts = task.prompts()
    chosen = torch.randperm(len(prompts), generator=run.generator)
    batch = prompts[chosen[: config.prompts_per_update]].repeat_interleave(config.group_size, 0)
    tokens, old_logp, mask = generate(
        run.model, batch, task.completion_length, generator=run.generator
    )
    with torch.no_grad():
        ref_logp = sequence_logprobs(run.reference, tokens, mask)
    return tokens, old_logp, mask, task.reward(tokens), ref_logp


def _record_completions(
    run: _Run, mask: Tensor, rewards: Tensor, old_logp: Tensor, ref_logp: Tensor
) -> None:
    """Append what every method that samples from the policy records of its batch:
    ``samples``, ``mean_reward``, ``zero_variance_groups``, the lengths and ``sampled_kl``."""
    history = run.history
    lengths, correct = mask.sum(dim=1), rewards > 0
    grouped = rewards.view(-1, run.config.group_size)
    history.samples.append(_so_far(history.samples, len(rewards)))
    history.mean_reward.append(float(rewards.mean()))
    history.zero_variance_groups.append(
        float((grouped == grouped[:, :1]).all(dim=1).float().mean())
    )
    history.correct_length.append(_mean_or_nan(lengths[correct]))
    history.wrong_length.append(_mean_or_nan(lengths[~correct]))
    k3 = kl_estimate(old_logp, ref_logp, "k3") * mask
    history.sampled_kl.append(float(k3.sum(dim=1).mean()))


def _clip_fraction(logp: Tensor, old_logp: Tensor, mask: Tensor, clip_eps: float) -> float:
    """The share of completion tokens whose ratio π / π_old lies outside [1 − ε, 1 + ε]."""
    ratio = (logp.detach() - old_logp).exp()[mask]
    return float(((ratio - 1).abs() > clip_eps).float().mean())


def _group_step(run: _Run) -> Step:
    """REINFORCE, RLOO, GRPO, Dr. GRPO: sample P prompts × G completions from the policy,
    then ``epochs`` steps on :func:`pglib.grpo_loss` with the method's advantages."""
    config, model, history = run.config, run.model, run.history
    length = model.task.completion_length

    def step() -> tuple[float, float]:
        start = time.perf_counter()
        tokens, old_logp, mask, rewards, ref_logp = _sample_completions(run)
        advantages = _advantages(config, rewards.view(-1, config.group_size))
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
            norms.append(run.adam_step(loss))
            losses.append(float(loss.detach()))
            clipped.append(_clip_fraction(logp, old_logp, mask, config.clip_eps))
        done = time.perf_counter()
        _record_completions(run, mask, rewards, old_logp, ref_logp)
        history.loss.append(sum(losses) / len(losses))
        history.grad_norm.append(sum(norms) / len(norms))
        history.clip_fraction.append(sum(clipped) / len(clipped))
        return sampled - start, done - sampled

    return step


def _fit_reward_model(run: _Run) -> tuple[ScalarLM, dict[str, float]]:
    """rlhf_ppo's reward model, the one passed to :func:`align` or one fitted on ``pairs``
    preference pairs drawn here from the reference, and its cost as history entries
    (``reward_model_seconds``, ``reference_samples``, ``preference_data``; 0 when passed)."""
    config = run.config
    if run.reward_model is not None:
        return run.reward_model, dict(zip(_REWARD_MODEL_COSTS, (0.0, 0, 0), strict=True))
    start = time.perf_counter()
    pairs, drawn = _sample_pairs(run.reference, config.pairs, config.label_noise, run.generator)
    reward_config = RewardModelConfig(epochs=REWARD_MODEL_EPOCHS, seed=config.seed)
    fit = train_reward_model(pairs, reward_config, base=run.reference, progress=False)
    costs = (time.perf_counter() - start, drawn, len(pairs))
    return fit.model, dict(zip(_REWARD_MODEL_COSTS, costs, strict=True))


#: What rlhf_ppo's reward model cost, recorded with every update (the history's names).
_REWARD_MODEL_COSTS = ("reward_model_seconds", "reference_samples", "preference_data")


def _ppo_step(run: _Run) -> Step:
    """PPO on tokens (ppo, rlhf_ppo): sample P prompts × G completions from the policy, score
    them (the task's reward, or the reward model's), give each token the reward
    :func:`pglib.token_rewards` (−β k1 + the score at the end) and the advantage
    :func:`pglib.token_advantages` (GAE, γ = 1, ``gae_lambda``) from a value model, whiten
    the advantages over the batch's tokens, and take ``epochs`` full-batch steps on the
    clipped objective (:func:`pglib.clipped_surrogate_terms`, a mean over the batch's tokens)
    and on the value model's clipped loss (:func:`pglib.value_loss`, the same ε)."""
    config, model, history = run.config, run.model, run.history
    length = model.task.completion_length
    reward_model, costs = _fit_reward_model(run) if config.method == "rlhf_ppo" else (None, {})
    history.reward_model = reward_model
    value = ScalarLM.from_lm(run.reference).train()  # the policy's starting trunk
    value_optimizer = torch.optim.Adam(value.parameters(), lr=config.lr)

    def values_of(tokens: Tensor) -> Tensor:
        """V(s_t) [B, T]: the output before each completion token (the state it was drawn in)."""
        return value(tokens[:, :-1])[:, -length:]

    def step() -> tuple[float, float]:
        start = time.perf_counter()
        tokens, old_logp, mask, rewards, ref_logp = _sample_completions(run)
        with torch.no_grad():
            scores = rewards if reward_model is None else reward_scores(reward_model, tokens, mask)
            old_values = values_of(tokens)
        per_token = token_rewards(old_logp, ref_logp, scores, mask, config.beta)
        advantages, returns = token_advantages(per_token, old_values, mask, config.gae_lambda)
        flat = advantages[mask]
        explained = _explained_variance(flat, returns[mask])
        advantages = (advantages - flat.mean()) / (flat.std() + 1e-8) * mask  # whitened
        sampled = time.perf_counter()
        losses, norms, clipped, value_losses = [], [], [], []
        for _ in range(config.epochs):
            logp = sequence_logprobs(model, tokens, mask)
            terms = clipped_surrogate_terms(logp, old_logp, advantages, config.clip_eps)
            loss = terms[mask].mean()
            norms.append(run.adam_step(loss))
            losses.append(float(loss.detach()))
            clipped.append(_clip_fraction(logp, old_logp, mask, config.clip_eps))
            fitted = value_loss(
                values_of(tokens)[mask], old_values[mask], returns[mask], config.clip_eps
            )
            run.adam_step(fitted, value, value_optimizer)
            value_losses.append(float(fitted.detach()))
        done = time.perf_counter()
        _record_completions(run, mask, rewards, old_logp, ref_logp)
        history.loss.append(sum(losses) / len(losses))
        history.grad_norm.append(sum(norms) / len(norms))
        history.clip_fraction.append(sum(clipped) / len(clipped))
        history.proxy_reward.append(float(scores.mean()))
        history.value_loss.append(sum(value_losses) / len(value_losses))
        history.explained_variance.append(explained)
        for name, cost in costs.items():
            getattr(history, name).append(cost)
        return sampled - start, done - sampled

    return step


def _shuffled_rows(n: int, generator: torch.Generator) -> Callable[[int], Tensor]:
    """The next k row indices [k] of shuffled passes over n rows, a fresh permutation when one
    runs out (a batch may straddle two passes), as a data loader with shuffling does."""
    order = torch.empty(0, dtype=torch.long)

    def take(k: int) -> Tensor:
        nonlocal order
        while len(order) < k:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        rows, order = order[:k], order[k:]
        return rows

    return take


def _completion_logps(model: TinyLM, tokens: Tensor, mask: Tensor) -> Tensor:
    """Sequence log-probs [B] (summed over each completion's tokens) of ``tokens`` [B, 1 + T];
    B may be 0 (an online DPO batch without pairs), which the model cannot read."""
    if not len(tokens):
        return torch.zeros(0)
    return sequence_logprobs(model, tokens, mask).sum(dim=1)


#: The per-update DPO statistics of the history, in the order ``_dpo_step`` computes them.
_DPO_STATS = ("chosen_reward", "rejected_reward", "chosen_logp", "rejected_logp", "reward_accuracy")


def _dpo_step(run: _Run) -> Step:
    """DPO on preference pairs: offline from the reference (drawn here), or online."""
    config, history = run.config, run.history
    if not config.online:
        offline, drawn = _sample_pairs(
            run.reference, config.pairs, config.label_noise, run.generator
        )
        next_rows = _shuffled_rows(len(offline), run.generator)

    def step() -> tuple[float, float]:
        start = time.perf_counter()
        if config.online:
            budget = ONLINE_PROMPTS_PER_PAIR * run.batch_size
            pairs, sampled_now = _sample_pairs(
                run.model, run.batch_size, config.label_noise, run.generator, budget
            )
        else:
            pairs, sampled_now = offline[next_rows(run.batch_size)], 0
        # chosen rows first, then rejected: one forward pass for both
        tokens = torch.cat([pairs.chosen, pairs.rejected])
        mask = torch.cat([pairs.chosen_mask, pairs.rejected_mask])
        with torch.no_grad():
            ref_chosen, ref_rejected = _completion_logps(run.reference, tokens, mask).chunk(2)
        sampled = time.perf_counter()
        losses, norms = [], []
        stats = dict.fromkeys(_DPO_STATS, math.nan)
        for epoch in range(config.epochs if len(pairs) else 0):  # an online batch may be empty
            chosen, rejected = _completion_logps(run.model, tokens, mask).chunk(2)
            loss, chosen_reward, rejected_reward = dpo_loss(
                chosen, rejected, ref_chosen, ref_rejected, beta=config.beta
            )
            if epoch == 0:
                accuracy = (chosen_reward > rejected_reward).float().mean()
                values = (chosen_reward, rejected_reward, chosen.detach(), rejected.detach())
                stats = dict(
                    zip(_DPO_STATS, [*map(_mean_or_nan, values), float(accuracy)], strict=True)
                )
            norms.append(run.adam_step(loss))
            losses.append(float(loss.detach()))
        done = time.perf_counter()
        for name, value in stats.items():
            getattr(history, name).append(value)
        history.samples.append(_so_far(history.samples, sampled_now))
        history.reference_samples.append(0 if config.online else drawn)
        history.preference_data.append(
            _so_far(history.preference_data, len(pairs)) if config.online else len(offline)
        )
        history.loss.append(_mean_or_nan(torch.tensor(losses)))  # NaN when no step was taken
        history.grad_norm.append(_mean_or_nan(torch.tensor(norms)))
        return sampled - start, done - sampled

    return step


def _balanced_weight(desirable: Tensor) -> float:
    """λ_D = n_U / n_D, so that λ_D n_D = λ_U n_U with λ_U = 1 (1.0 when either is 0)."""
    n_desirable = int(desirable.sum())
    n_undesirable = len(desirable) - n_desirable
    return n_undesirable / n_desirable if n_desirable and n_undesirable else 1.0


def _kto_step(run: _Run) -> Step:
    """KTO on labelled completions: offline from the reference (drawn here), or online."""
    config, history = run.config, run.history

    def draw(model: TinyLM, n: int) -> LabelledCompletions:
        return sample_labelled_completions(
            model, n, label_noise=config.label_noise, generator=run.generator
        )

    if not config.online:
        offline = draw(run.reference, config.pairs)
        offline_weight = _balanced_weight(offline.desirable)
        next_rows = _shuffled_rows(len(offline), run.generator)

    def step() -> tuple[float, float]:
        start = time.perf_counter()
        data = (
            draw(run.model, run.batch_size) if config.online else offline[next_rows(run.batch_size)]
        )
        weight = config.desirable_weight
        if weight is None:
            weight = _balanced_weight(data.desirable) if config.online else offline_weight
        # the batch, then the same prompts with the completions rolled by one (mismatched)
        tokens = torch.cat(
            [data.tokens, torch.cat([data.tokens[:, :1], data.tokens[:, 1:].roll(1, 0)], 1)]
        )
        mask = torch.cat([data.mask, data.mask.roll(1, 0)])
        with torch.no_grad():
            ref, ref_mismatched = _completion_logps(run.reference, tokens, mask).chunk(2)
        sampled = time.perf_counter()
        losses, norms = [], []
        for epoch in range(config.epochs):
            logp, mismatched = _completion_logps(run.model, tokens, mask).chunk(2)
            z0 = kto_reference_point(mismatched.detach(), ref_mismatched)
            loss, rewards = kto_loss(
                logp,
                ref,
                data.desirable,
                z0,
                beta=config.beta,
                desirable_weight=weight,
                undesirable_weight=config.undesirable_weight,
            )
            if epoch == 0:
                history.desirable_reward.append(_mean_or_nan(rewards[data.desirable]))
                history.undesirable_reward.append(_mean_or_nan(rewards[~data.desirable]))
                history.reference_point.append(float(z0))
            norms.append(run.adam_step(loss))
            losses.append(float(loss.detach()))
        done = time.perf_counter()
        history.samples.append(_so_far(history.samples, len(data) if config.online else 0))
        history.reference_samples.append(0 if config.online else len(offline))
        history.preference_data.append(
            _so_far(history.preference_data, len(data)) if config.online else len(offline)
        )
        history.desirable_weight.append(weight)
        history.loss.append(sum(losses) / len(losses))
        history.grad_norm.append(sum(norms) / len(norms))
        return sampled - start, done - sampled

    return step


#: Each method's update-step builder.
_STEPS: dict[str, Callable[[_Run], Step]] = {
    **dict.fromkeys(GROUP_METHODS, _group_step),
    **dict.fromkeys(PPO_METHODS, _ppo_step),
    "dpo": _dpo_step,
    "kto": _kto_step,
}
