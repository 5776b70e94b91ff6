"""Language-model trainers benchmark: REINFORCE, RLOO, GRPO, Dr. GRPO, PPO, RLHF-PPO, DPO and KTO
on the digit-sum task.

Every method trains from the committed base model (``pglib.load_pretrained_lm()``) with its
defaults, ``pglib.align(pglib.AlignConfig(method, seed=s, eval_every=5))`` (100 updates of
16 prompts × 8 completions), for seeds 0..4; the same runs as
``python -m pglib align --method M --seed S``, except that the exact evaluation runs every 5
updates instead of 10, which changes no training number (evaluations draw no random numbers
and their time is not counted). One more row, ``grpo, constant``, is GRPO with
``aggregation="constant"``, everything else the same: with ``grpo`` (``"sequence"``) it is
Chapter 12's length-bias experiment. ``ppo`` is PPO on tokens with a value model on the task's
reward (β = 0.05 per token, λ = 0.95, 4 epochs); ``rlhf_ppo`` the same on the scores of a
reward model fitted in the run on 2,048 preference pairs drawn from the base model (its
sampling and fitting are part of the training seconds). ``dpo`` and ``kto`` train on 2,048
preference pairs or labelled completions drawn from the base model before training (their
presets: 128 a batch, β = 0.1); ``dpo, online`` and ``kto, online`` draw every batch from
the current policy.

Scores, per run:

- exact success at the end (sampled and greedy, :func:`pglib.exact_success`,
  :func:`pglib.exact_greedy_success`, averaged over the 16 prompts) and the exact KL to the
  base model (:func:`pglib.exact_kl`, nats, averaged over the prompts);
- training seconds (sampling and updates; the exact evaluations excluded), ms per update,
  and the share of the time spent sampling (generating, scoring, the reference's log-probs);
- the training seconds and completions sampled at the first evaluation with an exact success
  of at least 0.8 and 0.9 (checked every 5 updates, so it can be late by up to 4 updates);
- the length gap: mean length of the wrong completions minus that of the right ones, in
  tokens, averaged over the sampled batches of the last 10 updates (group methods only);
- the data used: completions sampled from the policy being trained, and for DPO, KTO and
  RLHF-PPO the preference pairs or labelled completions used (RLHF-PPO: its reward model's
  pairs) and the completions sampled from the base model to make the offline ones (medians
  over seeds).

Runs take turns method by method within each seed, one at a time, torch at one thread.
``python benchmarks/align.py`` prints the tables of ``benchmarks/README.md``; ``--quick`` is a
check of the script itself.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
from dataclasses import dataclass

import torch

import pglib

#: (row name, method, config overrides): the four group methods, GRPO with the constant
#: normaliser of Dr. GRPO for the length-bias comparison, PPO, then DPO and KTO.
ROWS = (
    ("reinforce", "reinforce", {}),
    ("rloo", "rloo", {}),
    ("grpo", "grpo", {}),
    ("dr_grpo", "dr_grpo", {}),
    ("grpo, constant", "grpo", {"aggregation": "constant"}),
    ("ppo", "ppo", {}),
    ("rlhf_ppo", "rlhf_ppo", {}),
    ("dpo", "dpo", {}),
    ("dpo, online", "dpo", {"online": True}),
    ("kto", "kto", {}),
    ("kto, online", "kto", {"online": True}),
)
THRESHOLDS = (0.8, 0.9)
EVAL_EVERY = 5
#: Updates at the end whose sampled batches give the length gap.
LAST = 10


@dataclass(frozen=True)
class Run:
    """One run's scores."""

    seed: int
    success: float
    greedy: float
    kl: float
    seconds: float
    ms_per_update: float
    sampling_share: float
    reached: dict[float, tuple[float, int] | None]  # threshold -> (seconds, completions)
    length_gap: float
    samples: int  # completions sampled from the policy being trained
    preference_data: int  # pairs (dpo, rlhf_ppo) or labelled completions (kto); 0 otherwise
    reference_samples: int  # completions sampled from the base model for offline data


def score(history: pglib.AlignHistory) -> Run:
    """The scores of a finished run."""
    reached: dict[float, tuple[float, int] | None] = {}
    for threshold in THRESHOLDS:
        hits = [
            u
            for u, s in zip(history.eval_update, history.eval_success, strict=True)
            if s >= threshold
        ]
        first = hits[0] if hits else None
        if first is None:
            reached[threshold] = None
        elif first == 0:
            reached[threshold] = (0.0, 0)
        else:
            reached[threshold] = (history.wall_seconds[first - 1], history.samples[first - 1])
    gaps = [
        wrong - right
        for wrong, right in zip(
            history.wrong_length[-LAST:], history.correct_length[-LAST:], strict=True
        )
        if not (math.isnan(wrong) or math.isnan(right))
    ]
    sampling, updating = sum(history.sample_seconds), sum(history.update_seconds)
    return Run(
        seed=history.config.seed,
        success=history.eval_success[-1],
        greedy=history.eval_greedy_success[-1],
        kl=history.eval_kl[-1],
        seconds=history.wall_seconds[-1],
        ms_per_update=1000 * history.wall_seconds[-1] / len(history.samples),
        sampling_share=sampling / (sampling + updating),
        reached=reached,
        length_gap=statistics.fmean(gaps) if gaps else math.nan,
        samples=history.samples[-1],
        preference_data=history.preference_data[-1] if history.preference_data else 0,
        reference_samples=history.reference_samples[-1] if history.reference_samples else 0,
    )


def spread(values: list[float], digits: int = 3) -> str:
    """mean [min–max], or "—" when there are no values (NaN: a method without them)."""
    if all(math.isnan(v) for v in values):
        return "—"
    return (
        f"{statistics.fmean(values):.{digits}f} [{min(values):.{digits}f}–{max(values):.{digits}f}]"
    )


def time_to(runs: list[Run], threshold: float) -> str:
    """Median seconds and completions to ``threshold`` over the runs that reached it."""
    hits = [run.reached[threshold] for run in runs if run.reached[threshold] is not None]
    if not hits:
        return f"never (0/{len(runs)})"
    seconds = statistics.median(h[0] for h in hits)
    samples = statistics.median(h[1] for h in hits)
    return f"{seconds:.2f} s, {samples:,.0f} completions ({len(hits)}/{len(runs)})"


def data_used(runs: list[Run], name: str) -> str:
    """Median completions from the policy; for DPO, KTO and RLHF-PPO, the preference data and
    the base model's completions behind it."""
    policy = f"{statistics.median(r.samples for r in runs):,.0f} from the policy"
    if not any(r.preference_data for r in runs):
        return policy
    kind = {"dpo": "pairs", "kto": "labelled", "rlhf_ppo": "reward-model pairs"}[name.split(",")[0]]
    used = statistics.median(r.preference_data for r in runs)
    reference = statistics.median(r.reference_samples for r in runs)
    return f"{policy}; {used:,.0f} {kind}, {reference:,.0f} from the base"


def summary_table(results: dict[str, list[Run]]) -> str:
    lines = [
        "| method | seeds | exact success: mean [min–max] | greedy success (mean) "
        "| exact KL to base, nats | training s (median) | ms per update (median) "
        "| sampling share of time | to 0.8: median s, completions (runs) "
        "| to 0.9: median s, completions (runs) | length gap, wrong − right, tokens "
        "| data used (median) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        lines.append(
            f"| {name} | {len(runs)} | {spread([r.success for r in runs])} "
            f"| {statistics.fmean(r.greedy for r in runs):.3f} "
            f"| {spread([r.kl for r in runs], 2)} "
            f"| {statistics.median(r.seconds for r in runs):.2f} "
            f"| {statistics.median(r.ms_per_update for r in runs):.1f} "
            f"| {statistics.fmean(r.sampling_share for r in runs):.0%} "
            f"| {time_to(runs, 0.8)} | {time_to(runs, 0.9)} "
            f"| {spread([r.length_gap for r in runs], 2)} | {data_used(runs, name)} |"
        )
    return "\n".join(lines)


def targets_table(results: dict[str, list[Run]]) -> str:
    grpo, rloo = results["grpo"], results["rloo"]
    grpo_ok = sum(r.reached[0.9] is not None and r.reached[0.9][0] <= 60 for r in grpo)
    rloo_ok = sum(r.success >= 0.8 for r in rloo)
    gaps = {name: [r.length_gap for r in results[name]] for name in ("grpo", "grpo, constant")}
    return "\n".join(
        [
            "| target | measured | met? |",
            "|---|---|---|",
            f"| GRPO: ≥ 0.90 exact success within 60 s of training | {grpo_ok}/{len(grpo)} seeds "
            f"| {'yes' if grpo_ok == len(grpo) else 'no'} |",
            f"| RLOO: ≥ 0.80 exact success | {rloo_ok}/{len(rloo)} seeds at the end "
            f"| {'yes' if rloo_ok == len(rloo) else 'no'} |",
            f"| length gap, sequence vs constant (≥ 3 seeds) | {spread(gaps['grpo'], 2)} vs "
            f"{spread(gaps['grpo, constant'], 2)} tokens | measured |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per row (5)")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 10 updates: a check")
    args = parser.parse_args(argv)
    updates = 10 if args.quick else pglib.AlignConfig().updates
    seeds = range(2 if args.quick else args.seeds)
    torch.set_num_threads(1)
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, "
        f"{os.cpu_count()} cores, load average before: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        flush=True,
    )
    results: dict[str, list[Run]] = {name: [] for name, _, _ in ROWS}
    for seed in seeds:
        for name, method, overrides in ROWS:
            config = pglib.AlignConfig(
                method, seed=seed, updates=updates, eval_every=EVAL_EVERY, **overrides
            )
            if seed == 0:
                print(f"{name}: {config}", flush=True)
            run = score(pglib.align(config, progress=False))
            results[name].append(run)
            print(
                f"  {name} seed {seed}: exact success {run.success:.3f} (greedy "
                f"{run.greedy:.3f}), KL {run.kl:.3f}, {run.seconds:.2f} s",
                flush=True,
            )
    print("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(
        f"\nSummary ({updates} updates of 16 × 8 = 128 completions, preference pairs or "
        "labelled completions):\n"
    )
    print(summary_table(results))
    print("\nAgainst the targets of issue 13:\n")
    print(targets_table(results))


if __name__ == "__main__":
    main()
