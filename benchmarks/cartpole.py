"""CartPole-v1 benchmark: pglib's REINFORCE against a Spinning-Up-style reference.

Both methods train for the same budget of environment steps on the same seeds, in this one
process, and are scored the same way:

- "target reached": the mean return of the last 20 finished training episodes is >= 475;
  steps and wall seconds (set-up excluded) are recorded when that first happens;
- "final eval": the mean return of 20 greedy episodes with the policy at the end of the budget;
- "late low": the lowest last-20-episode training mean over the final 20% of the budget, a
  measure of whether a run that has solved the task keeps it solved (a greedy evaluation at
  one moment hides a policy that keeps dropping the pole between evaluations).

The reference is the minimal "simplest policy gradient with reward-to-go" (Achiam, 2018):
an MLP with 32 tanh units, Adam at 1e-2, 5000 env steps per update (episodes are finished
before updating), a single environment, one torch call per step, no baseline, γ = 1.

Run ``python benchmarks/cartpole.py`` for the table in ``benchmarks/README.md``;
``--seeds 3 --reference-seeds 1 --budget 60000 --no-long`` is a quick check.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import pglib

ENV_ID = "CartPole-v1"
TARGET = 475.0
WINDOW = 20
EVAL_EPISODES = 20
EVAL_SEED_OFFSET = 1_000_000
LATE_FRACTION = 0.8  # "late" is the final 20% of the budget


@dataclass(frozen=True)
class Run:
    """One training run's score."""

    seed: int
    steps_to_target: int | None
    seconds_to_target: float | None
    wall_seconds: float
    final_eval: float
    late_low: float


def late_low(steps: Sequence[float], recent_returns: Sequence[float], budget: int) -> float:
    """The lowest last-20-episode mean recorded at env steps in [0.8 budget, budget]."""
    late = [
        r
        for s, r in zip(steps, recent_returns, strict=True)
        if LATE_FRACTION * budget <= s <= budget
    ]
    return min(late) if late else float("nan")


def final_eval(policy: pglib.MLPCategoricalPolicy, seed: int) -> float:
    returns = pglib.evaluate(policy, ENV_ID, EVAL_EPISODES, seed + EVAL_SEED_OFFSET)
    return float(returns.mean())


def run_pglib(config: pglib.REINFORCEConfig) -> Run:
    history = pglib.train(config, progress=False)
    return Run(
        config.seed,
        history.steps_to_target,
        history.seconds_to_target,
        history.wall_seconds[-1],
        final_eval(history.policy, config.seed),
        late_low(history.env_steps, history.recent_return, config.max_steps),
    )


def as_policy(logits_net: nn.Module) -> pglib.MLPCategoricalPolicy:
    policy = pglib.MLPCategoricalPolicy(4, 2, hidden_sizes=(32,))
    policy.logits_net.load_state_dict(logits_net.state_dict())  # same layers, for evaluation
    return policy


def run_reference(seed: int, budget: int, max_steps: int, batch_size: int = 5000) -> Run:
    """Spinning Up's simplest policy gradient with reward-to-go weights, one env, per-step calls.

    Trains for ``max_steps`` (so that the steps to the target can be measured even when it is
    beyond ``budget``), and scores the final greedy evaluation at ``budget``, like pglib's.
    """
    torch.manual_seed(seed)
    logits_net = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2))
    optimizer = torch.optim.Adam(logits_net.parameters(), lr=1e-2)
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=seed)
    recent: deque[float] = deque(maxlen=WINDOW)
    curve_steps, curve_returns = [], []  # the last-20 mean after each finished episode
    steps, reached, eval_at_budget = 0, None, None
    start = time.perf_counter()
    while steps < max_steps:
        batch_obs, batch_act, batch_weights, ep_rews = [], [], [], []
        while True:
            batch_obs.append(obs.copy())
            with torch.no_grad():  # one torch call per env step
                logits = logits_net(torch.as_tensor(obs, dtype=torch.float32))
                act = int(torch.distributions.Categorical(logits=logits).sample())
            obs, rew, terminated, truncated, _ = env.step(act)
            batch_act.append(act)
            ep_rews.append(rew)
            steps += 1
            if terminated or truncated:
                recent.append(sum(ep_rews))
                curve_steps.append(steps)
                curve_returns.append(float(np.mean(recent)))
                batch_weights += list(np.cumsum(ep_rews[::-1])[::-1])  # reward-to-go, γ = 1
                if reached is None and len(recent) == WINDOW and np.mean(recent) >= TARGET:
                    reached = (steps, time.perf_counter() - start)
                obs, _ = env.reset()
                ep_rews = []
                if len(batch_obs) > batch_size:
                    break
        optimizer.zero_grad()
        logp = torch.distributions.Categorical(
            logits=logits_net(torch.as_tensor(np.array(batch_obs)))
        ).log_prob(torch.as_tensor(batch_act))
        loss = -(logp * torch.as_tensor(batch_weights, dtype=torch.float32)).mean()
        loss.backward()
        optimizer.step()
        if eval_at_budget is None and steps >= budget:
            eval_start = time.perf_counter()
            eval_at_budget = final_eval(as_policy(logits_net), seed)
            start += time.perf_counter() - eval_start  # evaluation is not training time
    seconds = time.perf_counter() - start
    if eval_at_budget is None:
        eval_at_budget = final_eval(as_policy(logits_net), seed)
    return Run(
        seed,
        reached[0] if reached else None,
        reached[1] if reached else None,
        seconds,
        eval_at_budget,
        late_low(curve_steps, curve_returns, budget),
    )


def summary(runs: Sequence[Run]) -> dict[str, float | int | None]:
    hits = [r for r in runs if r.steps_to_target is not None]
    steps = [r.steps_to_target for r in hits]
    return {
        "n": len(runs),
        "hits": len(hits),
        "median_steps": statistics.median(steps) if steps else None,
        "min_steps": min(steps) if steps else None,
        "max_steps": max(steps) if steps else None,
        "median_seconds": statistics.median(r.seconds_to_target for r in hits) if hits else None,
        "median_wall": statistics.median(r.wall_seconds for r in runs),
        "eval_ok": sum(r.final_eval >= TARGET for r in runs),
        "median_eval": statistics.median(r.final_eval for r in runs),
        "median_late_low": statistics.median(r.late_low for r in runs),
    }


def fmt(x: float | None, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def table(rows: dict[str, dict], budget: int) -> str:
    lines = [
        f"| method | reached {TARGET:g} | steps to target: median [min–max] | "
        "seconds to target (median) | seconds for the whole run (median) | "
        f"greedy eval at {budget // 1000}k ≥ {TARGET:g} | greedy eval at {budget // 1000}k "
        f"(median) | late low: lowest training mean in the final 20% of {budget // 1000}k "
        "(median) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in rows.items():
        steps = "–"
        if s["hits"]:
            steps = f"{s['median_steps']:,.0f} [{s['min_steps']:,}–{s['max_steps']:,}]"
        lines.append(
            f"| {name} | {s['hits']}/{s['n']} | {steps} | "
            f"{fmt(s['median_seconds'], '.2f')} | {s['median_wall']:.2f} | "
            f"{s['eval_ok']}/{s['n']} | {s['median_eval']:.1f} | {s['median_late_low']:.1f} |"
        )
    return "\n".join(lines)


def per_seed(name: str, runs: Sequence[Run]) -> None:
    for r in runs:
        print(
            f"  {name} seed {r.seed}: steps to target {r.steps_to_target}, "
            f"seconds to target {fmt(r.seconds_to_target, '.2f')}, "
            f"wall {r.wall_seconds:.2f} s, final eval {r.final_eval:.1f}, "
            f"late low {r.late_low:.1f}",
            flush=True,
        )


def rollout_throughput(num_envs: int = 64, n_steps: int = 500, repeats: int = 3) -> float:
    """Env steps per second of pglib's rollout collection, policy in the loop (best of runs)."""
    torch.set_num_threads(1)
    policy = pglib.MLPCategoricalPolicy(4, 2, hidden_sizes=pglib.REINFORCEConfig().hidden_sizes)
    collector = pglib.RolloutCollector(pglib.make_vector_env(ENV_ID, num_envs), seed=0)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        rollout = collector.collect(policy, n_steps)
        best = max(best, rollout.n_steps / (time.perf_counter() - start))
    return best


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="pglib seeds")
    parser.add_argument("--reference-seeds", type=int, default=5, help="reference seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=150_000, help="env steps per run")
    parser.add_argument(
        "--reference-max-steps",
        type=int,
        default=400_000,
        help="the reference trains this long, to measure its steps to the target",
    )
    parser.add_argument("--long-budget", type=int, default=300_000)
    parser.add_argument(
        "--no-long", action="store_true", help="skip the constant-vs-linear lr study"
    )
    args = parser.parse_args(argv)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    ref_seeds = range(args.first_seed, args.first_seed + args.reference_seeds)
    book = pglib.REINFORCEConfig(max_steps=args.budget)
    threads = torch.get_num_threads()

    print(f"rollout collection at 64 envs: {rollout_throughput():,.0f} env steps/s", flush=True)
    torch.set_num_threads(threads)
    print(f"pglib config: {book}", flush=True)
    ours = [run_pglib(replace(book, seed=s)) for s in seeds]
    per_seed("pglib", ours)
    torch.set_num_threads(threads)
    theirs = [run_reference(s, args.budget, args.reference_max_steps) for s in ref_seeds]
    per_seed("reference", theirs)
    ref_name = f"reference (Spinning Up style, trained {args.reference_max_steps // 1000}k)"
    rows = {"pglib REINFORCE": summary(ours), ref_name: summary(theirs)}
    print()
    print(table(rows, args.budget))
    a, b = rows["pglib REINFORCE"], rows[ref_name]
    if a["median_steps"] and b["median_steps"]:
        print(
            f"\nratios pglib/reference: median steps to target "
            f"{a['median_steps'] / b['median_steps']:.3f}, median seconds to target "
            f"{a['median_seconds'] / b['median_seconds']:.4f} "
            f"({b['median_seconds'] / a['median_seconds']:.0f}x faster)"
        )
    if not args.no_long:
        long_rows = {}
        for schedule in ("constant", "linear"):
            config = replace(book, max_steps=args.long_budget, lr_schedule=schedule)
            runs = [run_pglib(replace(config, seed=s)) for s in seeds]
            per_seed(f"{schedule} lr", runs)
            long_rows[f"pglib, {schedule} lr"] = summary(runs)
        print(f"\nlearning-rate schedule at {args.long_budget // 1000}k steps:")
        print(table(long_rows, args.long_budget))


if __name__ == "__main__":
    main()
