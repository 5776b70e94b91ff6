"""Ablations of pglib's defaults on CartPole-v1: does each knob earn its place?

For each trainer (pglib A2C and pglib REINFORCE), every row changes ONE field of the default
config and trains the same seeds for the same budget (150k env steps unless ``--budget``):

- ``normalize_advantages``: off (on by default);
- ``max_grad_norm``: clipping at 1.0 (no clipping by default);
- ``lr_schedule``: the other schedule (linear decay to 0 at the budget, or constant);
- ``entropy_coef``: 0.01 (0.0 by default);
- ``value_baseline``: off (a learned V(s) by default);
- A2C only: ``bootstrap_cuts`` off (rollout cuts and time limits treated as terminations)
  and ``mask_autoreset`` off (Gymnasium's autoreset steps trained on as transitions).

If a default is changed, the row tries the value it replaced, so each row always reads "what
happens without the default's choice". Scores are those of ``benchmarks/cartpole.py``:
reached 475 (last-20-training-episode mean), steps to 475, a greedy evaluation of 20 episodes
(seeds 1,000,000 + seed + i) at the budget, and "late low", the lowest last-20 mean over the
final 20% of the budget, read here from ``History.recent_return`` (once per update).

Steps, not seconds, are measured, so the runs go through ``pglib.train_many`` over the cores.
Each verdict compares a row with the default row on the same seeds: a two-sided permutation
test on the ranks of steps to 475 (a run that never reached it ranks last) and of late low,
and Fisher's exact test on the counts; p < 0.05 on one test, uncorrected, is called a
difference. ``python benchmarks/ablations.py`` prints the tables of ``benchmarks/README.md``;
``--trainers a2c`` (or ``reinforce``) runs one half; ``--seeds 2 --budget 30000`` is a
quick check of the script.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

import pglib

ENV_ID = "CartPole-v1"
TARGET = 475.0
EVAL_EPISODES = 20
EVAL_SEED_OFFSET = 1_000_000
LATE_FRACTION = 0.8
ALPHA = 0.05
PERMUTATIONS = 20_000


@dataclass(frozen=True)
class Score:
    seed: int
    steps_to_target: int | None
    final_eval: float
    late_low: float

    @property
    def rank_steps(self) -> float:
        return math.inf if self.steps_to_target is None else float(self.steps_to_target)


def alternative(field: str, default: object) -> object:
    """The value a row tries instead of the default's."""
    if isinstance(default, bool):
        return not default
    if field == "max_grad_norm":
        return None if default is not None else 1.0
    if field == "lr_schedule":
        return "constant" if default == "linear" else "linear"
    if field == "entropy_coef":
        return 0.01 if default == 0 else 0.0
    raise ValueError(f"no alternative for {field}")


KNOBS = (
    "normalize_advantages",
    "max_grad_norm",
    "lr_schedule",
    "entropy_coef",
    "value_baseline",
    "bootstrap_cuts",
    "mask_autoreset",
)


def rows_for(config_cls: type, budget: int) -> dict[str, dict]:
    """{row label: the fields changed from the default}, the default first."""
    default = config_cls(max_steps=budget)
    fields = {f.name for f in dataclasses.fields(config_cls)}
    rows = {"default": {}}
    for knob in KNOBS:
        if knob in fields:
            value = alternative(knob, getattr(default, knob))
            rows[f"{knob}={value}"] = {knob: value}
    return rows


def score(history: pglib.History, budget: int) -> Score:
    seed = history.config.seed
    late = [
        r
        for s, r in zip(history.env_steps, history.recent_return, strict=True)
        if LATE_FRACTION * budget <= s <= budget
    ]
    returns = pglib.evaluate(history.policy, ENV_ID, EVAL_EPISODES, seed + EVAL_SEED_OFFSET)
    return Score(
        seed,
        history.steps_to_target,
        float(returns.mean()),
        min(late) if late else float("nan"),
    )


# --- statistics --------------------------------------------------------------------------


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing their mean rank; inf ranks last."""
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values))
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranked[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranked


def rank_test(a: Sequence[float], b: Sequence[float], seed: int = 0) -> float:
    """Two-sided permutation p-value of the difference of mean ranks (Mann-Whitney)."""
    values = np.array([*a, *b], dtype=float)
    if np.all(values == values[0]):
        return 1.0
    r = ranks(values)
    n = len(a)
    observed = abs(r[:n].mean() - r[n:].mean())
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((PERMUTATIONS, len(values))), axis=1)
    shuffled = r[perms]
    diffs = np.abs(shuffled[:, :n].mean(axis=1) - shuffled[:, n:].mean(axis=1))
    return float((np.sum(diffs >= observed - 1e-12) + 1) / (PERMUTATIONS + 1))


def fisher(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact p-value for k1/n1 against k2/n2."""
    total, k = n1 + n2, k1 + k2

    def p(x: int) -> float:
        return math.comb(k, x) * math.comb(total - k, n1 - x) / math.comb(total, n1)

    observed = p(k1)
    lo, hi = max(0, k - n2), min(k, n1)
    return min(1.0, sum(p(x) for x in range(lo, hi + 1) if p(x) <= observed * (1 + 1e-9)))


# --- tables ------------------------------------------------------------------------------


def steps_text(scores: Sequence[Score]) -> str:
    hits = [s.steps_to_target for s in scores if s.steps_to_target is not None]
    if not hits:
        return "–"
    median = statistics.median(s.rank_steps for s in scores)
    median_text = "never" if median == math.inf else f"{median:,.0f}"
    return f"{median_text} [{min(hits):,}–{max(hits):,}]"


def table(results: dict[str, list[Score]], budget: int) -> str:
    k = budget // 1000
    lines = [
        f"| change from the default | reached 475 | steps to 475: median [min–max] "
        f"| greedy eval at {k}k ≥ 475 | late low (median) |",
        "|---|---|---|---|---|",
    ]
    for label, scores in results.items():
        n = len(scores)
        hits = sum(s.steps_to_target is not None for s in scores)
        ok = sum(s.final_eval >= TARGET for s in scores)
        late = statistics.median(s.late_low for s in scores)
        lines.append(f"| {label} | {hits}/{n} | {steps_text(scores)} | {ok}/{n} | {late:.1f} |")
    return "\n".join(lines)


def verdicts(results: dict[str, list[Score]]) -> str:
    base = results["default"]
    n = len(base)
    lines = [
        "| change from the default | p: steps to 475 | p: late low | p: reached | p: greedy "
        "| verdict on the default's choice |",
        "|---|---|---|---|---|---|",
    ]
    for label, scores in results.items():
        if label == "default":
            continue
        p_steps = rank_test([s.rank_steps for s in base], [s.rank_steps for s in scores])
        p_late = rank_test([s.late_low for s in base], [s.late_low for s in scores])
        hits = [sum(s.steps_to_target is not None for s in r) for r in (base, scores)]
        oks = [sum(s.final_eval >= TARGET for s in r) for r in (base, scores)]
        p_hits = fisher(hits[0], n, hits[1], len(scores))
        p_ok = fisher(oks[0], n, oks[1], len(scores))
        med = [statistics.median(s.rank_steps for s in r) for r in (base, scores)]
        low = [statistics.median(s.late_low for s in r) for r in (base, scores)]
        # (p, is the default better?, is it worse?, what): lower steps, higher everything else
        tests = (
            (p_steps, med[0] < med[1], med[0] > med[1], "steps"),
            (p_late, low[0] > low[1], low[0] < low[1], "late low"),
            (p_hits, hits[0] > hits[1], hits[0] < hits[1], "reached"),
            (p_ok, oks[0] > oks[1], oks[0] < oks[1], "greedy"),
        )
        better = [what for p, b, _, what in tests if p < ALPHA and b]
        worse = [what for p, _, w, what in tests if p < ALPHA and w]
        if scores == base[: len(scores)]:
            verdict = "never acts here: every seed's run is identical to the default's"
        elif better and not worse:
            verdict = f"earns its place (the default is better: {', '.join(better)})"
        elif worse and not better:
            verdict = f"does not: the change is better ({', '.join(worse)})"
        elif better and worse:
            verdict = (
                f"a trade-off (default better: {', '.join(better)}; worse: {', '.join(worse)})"
            )
        else:
            verdict = f"not distinguishable at {n} seeds"
        lines.append(
            f"| {label} | {p_steps:.3f} | {p_late:.3f} | {p_hits:.3f} | {p_ok:.3f} | {verdict} |"
        )
    return "\n".join(lines)


def run(name: str, config_cls: type, seeds: Sequence[int], budget: int, processes: int) -> None:
    rows = rows_for(config_cls, budget)
    default = config_cls(max_steps=budget)
    print(f"\n{name}, default: {default}", flush=True)
    configs, labels = [], []
    for label, changes in rows.items():
        for seed in seeds:
            configs.append(dataclasses.replace(default, seed=seed, **changes))
            labels.append(label)
    start = time.perf_counter()
    histories = pglib.train_many(configs, processes=processes, progress=False)
    results: dict[str, list[Score]] = {label: [] for label in rows}
    for label, history in zip(labels, histories, strict=True):
        results[label].append(score(history, budget))
    for label, scores in results.items():
        per_seed = ", ".join(
            f"{s.seed}: {s.steps_to_target} / {s.final_eval:.0f} / {s.late_low:.0f}" for s in scores
        )
        print(f"  {label} (seed: steps to 475 / greedy eval / late low) {per_seed}")
    print(f"  ({len(configs)} runs in {time.perf_counter() - start:.0f} s)")
    print(f"\n{name}, {len(seeds)} seeds ({seeds[0]}–{seeds[-1]}), {budget:,}-step budget:\n")
    print(table(results, budget))
    print(f"\n{name}, tests against the default row (two-sided, uncorrected):\n")
    print(verdicts(results), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds per row (default 10)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=150_000, help="env steps per run")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--trainers", nargs="+", choices=("a2c", "reinforce"), default=["a2c", "reinforce"]
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # the greedy evaluations here; each training run sets its own
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    trainers = {
        "a2c": ("pglib A2C", getattr(pglib, "A2CConfig", pglib.REINFORCEConfig)),
        "reinforce": ("pglib REINFORCE", pglib.REINFORCEConfig),
    }
    for key in args.trainers:
        run(*trainers[key], seeds, args.budget, args.processes)


if __name__ == "__main__":
    main()
