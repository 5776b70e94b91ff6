"""PPO benchmark: pglib's PPO against Stable-Baselines3 PPO on CartPole-v1 and Pendulum-v1.

Two methods train on each environment in this one process, one run at a time, and are scored
by the code of ``benchmarks/cartpole.py`` (imported from it, not copied):

- pglib PPO, ``pglib.train(pglib.PPOConfig(seed=s))`` on CartPole-v1 and
  ``pglib.train(pglib.PPOConfig(**pglib.PPO_PENDULUM, seed=s))`` on Pendulum-v1;
- Stable-Baselines3 PPO with rl-baselines3-zoo's hyperparameters for the environment
  (``hyperparams/ppo.yml`` of DLR-RM/rl-baselines3-zoo, commit
  208b6fdf3a9aa24de44b2e068c6e5f6a07d97fcc, used as it is; everything it does not list is
  Stable-Baselines3's default). The zoo trains both for 1e5 steps; here every run gets the
  same budget (150k), and linear schedules, if any, run over the budget given to ``learn``.

Scores, the same for both methods (see ``cartpole.py``): "reached" the target (a last-20
training-episode mean of 475 on CartPole, -200 on Pendulum), the env steps and training
seconds at that moment, µs per env step over the whole run, a greedy evaluation of 20
episodes at the budget (environment i reset with seed 1,000,000 + seed + i, one function for
both methods; a Gaussian policy acts with its mean, clipped to the action bounds), the late
low (lowest last-20 mean over the final 20% of the budget) and the low after the target.
Then the ratios, SB3 / pglib: steps to the target, µs per step, their product (derived) and
the measured median seconds to the target; and a table against the targets of issue 12.

Every method runs with torch at one thread, one run at a time, the methods taking turns seed
by seed: run this on an otherwise idle machine. ``python benchmarks/ppo.py`` prints the tables
of ``benchmarks/README.md``; ``--quick`` is a check of the script itself.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import pglib

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cartpole as common  # benchmarks/ is not a package: imported from its folder

ZOO_COMMIT = "208b6fdf3a9aa24de44b2e068c6e5f6a07d97fcc"
METHODS = ("ppo", "sb3-ppo")
NAMES = {"ppo": "pglib PPO", "sb3-ppo": "SB3 PPO (rl-zoo)"}
PAIRS = (("ppo", "sb3-ppo"),)


@dataclass(frozen=True)
class Task:
    """An environment, its targets, and the targets of issue 12 for pglib's PPO."""

    env_id: str
    target: float  # last-20 training mean that counts as "reached"
    eval_threshold: float  # what a greedy evaluation at the budget must reach
    max_median_steps: int  # the median steps to the target
    min_time_ratio: float  # the "x less training time than SB3"
    every_seed_eval: bool  # the issue asks every seed's greedy eval to pass (else >= 9/10)

    @property
    def label(self) -> str:
        return f"{self.target:g}".replace("-", "−")

    @property
    def eval_label(self) -> str:
        return f"{self.eval_threshold:g}".replace("-", "−")


TASKS = {
    "CartPole-v1": Task("CartPole-v1", 475.0, 475.0, 25_000, 3.0, every_seed_eval=False),
    "Pendulum-v1": Task("Pendulum-v1", -200.0, -250.0, 50_000, 2.0, every_seed_eval=True),
}


# --- the two methods ---------------------------------------------------------------------


def pglib_config(env_id: str, seed: int, budget: int) -> pglib.PPOConfig:
    """pglib's defaults for the environment, at ``budget`` env steps."""
    overrides = {} if env_id == "CartPole-v1" else dict(pglib.PPO_PENDULUM)
    config = pglib.PPOConfig(**{**overrides, "seed": seed, "max_steps": budget})
    if config.env_id != env_id or config.target_return != TASKS[env_id].target:
        raise RuntimeError(
            f"pglib's PPO config for {env_id} trains {config.env_id} to "
            f"{config.target_return}, not to {TASKS[env_id].target}"
        )
    return config


def sb3_model(env_id: str, seed: int):
    """rl-zoo's PPO for the environment (hyperparams/ppo.yml at ``ZOO_COMMIT``).

    CartPole-v1: ``cartpole.sb3_model("sb3-ppo", seed)`` (8 envs, n_steps 32, batch_size 256,
    gae_lambda 0.8, gamma 0.98, n_epochs 20, ent_coef 0.0, lin_0.001, clip lin_0.2).
    Pendulum-v1: 4 envs, MlpPolicy, n_steps 1024, gae_lambda 0.95, gamma 0.9, n_epochs 10,
    ent_coef 0.0, learning_rate 1e-3, clip_range 0.2, use_sde True, sde_sample_freq 4
    (defaults: batch_size 64, vf_coef 0.5, max_grad_norm 0.5, 64x64 tanh, log_std_init 0,
    orthogonal initialisation, no observation or reward normalisation).
    """
    if env_id == "CartPole-v1":
        return common.sb3_model("sb3-ppo", seed)
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(env_id, n_envs=4, seed=seed)  # each env in a Monitor, DummyVecEnv
    return PPO(
        "MlpPolicy",
        env,
        n_steps=1024,
        gae_lambda=0.95,
        gamma=0.9,
        n_epochs=10,
        ent_coef=0.0,
        learning_rate=1e-3,
        clip_range=0.2,
        use_sde=True,
        sde_sample_freq=4,
        seed=seed,
        device="cpu",
    )


def describe_sb3(env_id: str) -> str:
    """The settings of the model that ``sb3_model`` builds, read back from it."""

    def schedule(f: Callable[[float], float]) -> str:
        start, half = f(1.0), f(0.5)
        return f"{start:g} constant" if half == start else f"{start:g} linear to 0"

    model = sb3_model(env_id, 0)
    policy = model.policy
    if isinstance(model.action_space, gym.spaces.Box) and policy.squash_output:
        raise RuntimeError("predict(deterministic=True) would squash, not clip, the mean")
    text = (
        f"n_envs={model.n_envs}, n_steps={model.n_steps}, batch_size={model.batch_size}, "
        f"n_epochs={model.n_epochs}, gamma={model.gamma}, gae_lambda={model.gae_lambda}, "
        f"learning_rate={schedule(model.lr_schedule)}, clip_range={schedule(model.clip_range)}, "
        f"ent_coef={model.ent_coef}, vf_coef={model.vf_coef}, "
        f"max_grad_norm={model.max_grad_norm}, normalize_advantage="
        f"{model.normalize_advantage}, use_sde={model.use_sde}, "
        f"sde_sample_freq={model.sde_sample_freq}, net_arch={policy.net_arch}, "
        f"activation={policy.activation_fn.__name__}, ortho_init={policy.ortho_init}"
    )
    if isinstance(model.action_space, gym.spaces.Box):
        text += f", log_std_init={policy.log_std_init}, squash_output={policy.squash_output}"
    model.get_env().close()
    return text


def check_greedy_eval(env_id: str) -> None:
    """The shared greedy evaluation gives pglib.evaluate's mean for a pglib policy (one
    update's policy, seed 0), so that both methods are scored on pglib's episodes."""
    config = pglib_config(env_id, 0, 1)  # stops after its first update
    policy = pglib.train(config, progress=False).policy
    with common.one_thread():
        ours = common.greedy_eval(common.pglib_greedy(policy), 0, env_id)
        theirs = float(pglib.evaluate(policy, env_id, common.EVAL_EPISODES, 1_000_000).mean())
    if not math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-9):
        raise RuntimeError(f"greedy_eval {ours} != pglib.evaluate {theirs} on {env_id}")
    print(f"{env_id}: greedy_eval = pglib.evaluate = {ours:.3f} (one update, seed 0)")


def run(method: str, task: Task, seed: int, budget: int) -> common.Run:
    if method == "ppo":
        return common.train_pglib(pglib_config(task.env_id, seed, budget), budget)
    return common.train_sb3(
        lambda: sb3_model(task.env_id, seed), seed, budget, task.env_id, task.target
    )


# --- the targets of the issue ------------------------------------------------------------


def target_table(task: Task, results: dict[str, list[common.Run]], budget: int) -> str:
    """Issue 12's targets for pglib's PPO, judged on the numbers of the tables above.

    "≥ 9/10 seeds" is read as at least 90% of the seeds run; "less time" is judged on the
    measured ratio of median seconds to the target (the derived product is shown beside it).
    """
    runs, label, k = results["ppo"], task.label, budget // 1000
    n = len(runs)
    need = math.ceil(0.9 * n)
    hits = sum(r.steps_to_target is not None for r in runs)
    evals = sum(r.final_eval >= task.eval_threshold for r in runs)
    median = common.median_steps(runs)
    rows = [
        (f"≥ 9/10 seeds reach {label} within {k}k", f"{hits}/{n}", hits >= need),
    ]
    if task.every_seed_eval:
        worst = min(r.final_eval for r in runs)
        rows.append(
            (
                f"every seed's greedy eval at {k}k ≥ {task.eval_label}",
                f"{evals}/{n} (lowest {worst:.1f})",
                evals == n,
            )
        )
    else:
        rows.append(
            (
                f"≥ 9/10 seeds: greedy eval at {k}k ≥ {task.eval_label}",
                f"{evals}/{n}",
                evals >= need,
            )
        )
    median_text = "never" if median == float("inf") else f"{median:,.0f}"
    rows.append(
        (
            f"median ≤ {task.max_median_steps // 1000}k env steps to {label}",
            median_text,
            median <= task.max_median_steps,
        )
    )
    if "sb3-ppo" in results:
        steps, per_step, measured = common.time_ratios(runs, results["sb3-ppo"])
        if all(map(np.isfinite, (steps, per_step, measured))):
            text = f"{measured:.1f}x measured ({steps * per_step:.1f}x derived)"
        else:
            text = f"– (a median never reached {label})"
        rows.append(
            (
                f"≥ {task.min_time_ratio:g}× less training time than {NAMES['sb3-ppo']}, same run",
                text,
                bool(np.isfinite(measured) and measured >= task.min_time_ratio),
            )
        )
    lines = ["| target | measured (from the tables above) | met? |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {'yes' if ok else 'no'} |" for t, m, ok in rows]
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="pglib seeds (default 10)")
    parser.add_argument("--sb3-seeds", type=int, default=5, help="SB3 PPO seeds (default 5)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=150_000, help="env steps per run")
    parser.add_argument(
        "--envs", nargs="+", choices=list(TASKS), default=list(TASKS), help="default: both"
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="default: both"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a check of the script: 2 seeds each, a 30k budget"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = args.sb3_seeds = 2
        args.budget = 30_000
    counts = {"ppo": args.seeds, "sb3-ppo": args.sb3_seeds}

    import stable_baselines3

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, gymnasium "
        f"{gym.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
        f"{os.cpu_count()} cores, load average before: {load()}",
        flush=True,
    )
    print(f"rl-baselines3-zoo hyperparams/ppo.yml at commit {ZOO_COMMIT}")
    for env_id in args.envs:
        task = TASKS[env_id]
        print(f"\n## {env_id} ({args.budget:,}-step budget)\n", flush=True)
        if "ppo" in args.methods:
            print(f"pglib PPO: {pglib_config(env_id, 0, args.budget)}", flush=True)
            check_greedy_eval(env_id)
        if "sb3-ppo" in args.methods:
            with common.one_thread():
                print(f"SB3 PPO (rl-zoo): {describe_sb3(env_id)}", flush=True)
        # Round robin over the methods, seed by seed, so that a change in the machine's load
        # falls on both alike.
        results: dict[str, list[common.Run]] = {method: [] for method in args.methods}
        for i in range(max(counts[method] for method in args.methods)):
            for method in args.methods:
                if i >= counts[method]:
                    continue
                seed = args.first_seed + i
                result = run(method, task, seed, args.budget)
                results[method].append(result)
                print(
                    f"  {NAMES[method]} seed {seed}: steps to {task.label} "
                    f"{result.steps_to_target}, training {result.wall_seconds:.1f} s, "
                    f"greedy eval {result.final_eval:.1f}",
                    flush=True,
                )
        print(f"load average after {env_id}: {load()}", flush=True)
        for method, runs in results.items():
            table = common.seed_table(runs, task.label, whole_run=False)
            print(f"\n{NAMES[method]}, {env_id}, per seed:\n\n{table}")
        print(f"\n{env_id}, summary ({args.budget:,}-step budget):\n")
        print(
            common.summary_table(
                results, args.budget, 0, task.label, task.eval_threshold, task.eval_label, NAMES
            )
        )
        if len(results) == 2:
            print(
                f"\n{env_id}, ratios, SB3 / pglib (how many times fewer steps, cheaper steps, "
                "less time):\n"
            )
            print(common.ratio_table(results, task.label, PAIRS, NAMES))
        if "ppo" in results:
            print(f"\n{env_id}, against the targets of the issue:\n")
            print(target_table(task, results, args.budget), flush=True)
    print(f"\nload average after: {load()}")


if __name__ == "__main__":
    main()
