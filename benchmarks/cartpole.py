"""CartPole-v1 benchmark: pglib's REINFORCE and A2C against Stable-Baselines3 and a reference.

Five methods train in this one process, one run at a time, and are scored by the same code:

- pglib REINFORCE, ``pglib.train(pglib.REINFORCEConfig(seed=s))``;
- pglib A2C, ``pglib.train(pglib.A2CConfig(seed=s))``;
- Stable-Baselines3 A2C and PPO with rl-baselines3-zoo's CartPole-v1 hyperparameters
  (``hyperparams/a2c.yml`` and ``hyperparams/ppo.yml`` of DLR-RM/rl-baselines3-zoo);
- the Spinning-Up-style "simplest policy gradient with reward-to-go" (Achiam, 2018): an MLP
  with 32 tanh units, Adam at 1e-2, at least 5000 env steps of whole episodes per update, one
  environment, one torch call per step, no baseline, gamma = 1. It trains longer than the
  budget (400k steps) so that its steps to the target can be measured; its greedy evaluation
  is taken at the budget, like everyone else's.

Scoring, the same for every method:

- "reached 475": the mean return of the last 20 finished training episodes is >= 475; the env
  steps and the training-loop wall seconds at that moment are recorded;
- "greedy eval": the mean return of 20 greedy episodes (environment i reset with seed
  1,000,000 + seed + i) with the policy at the budget, by one function for all methods;
- "late low": the lowest last-20-episode training mean, taken after every finished episode,
  over the final 20% of the budget (and, for the reference, also of its whole run);
- "low after 475": the same lowest mean over everything after the run first reached 475;
- per-step time: training-loop seconds / env steps of the whole run.

Every method runs with torch at one thread. Timed runs are never spread over processes, and
the methods take turns seed by seed: run this on an otherwise idle machine.
``python benchmarks/cartpole.py`` prints the tables of ``benchmarks/README.md``; ``--quick``
is a check of the script itself.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

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

METHODS = ("reinforce", "a2c", "sb3-a2c", "sb3-ppo", "reference")
NAMES = {
    "reinforce": "pglib REINFORCE",
    "a2c": "pglib A2C",
    "sb3-a2c": "SB3 A2C (rl-zoo)",
    "sb3-ppo": "SB3 PPO (rl-zoo)",
    "reference": "reference (Spinning Up style)",
}
# Ratios printed at the end: (ours, theirs).
PAIRS = (("reinforce", "reference"), ("a2c", "sb3-a2c"), ("a2c", "sb3-ppo"))


@dataclass
class EpisodeLog:
    """The last-20-episode training mean after every finished episode, and when it was taken."""

    steps: list[int] = field(default_factory=list)  # env steps of the run at that moment
    means: list[float] = field(default_factory=list)
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    target: float = TARGET  # the last-20 mean that counts as "reached"

    def add(self, env_steps: int, episode_return: float) -> bool:
        """Record one finished episode; True when the last-20 mean is now >= the target."""
        self.recent.append(float(episode_return))
        mean = float(np.mean(self.recent))
        self.steps.append(int(env_steps))
        self.means.append(mean)
        return len(self.recent) == WINDOW and mean >= self.target

    def low(self, first: float, last: float) -> float:
        """The lowest recorded mean at env steps in [first, last] (nan if none)."""
        values = [m for s, m in zip(self.steps, self.means, strict=True) if first <= s <= last]
        return min(values) if values else float("nan")


@dataclass(frozen=True)
class Run:
    """One training run's score."""

    seed: int
    steps_to_target: int | None
    seconds_to_target: float | None
    env_steps: int  # of the whole run
    wall_seconds: float  # training loop of the whole run
    final_eval: float  # greedy, at the budget
    late_low: float  # final 20% of the budget
    late_low_run: float  # final 20% of the whole run (differs only for the reference)
    low_after_target: float | None

    @property
    def us_per_step(self) -> float:
        return 1e6 * self.wall_seconds / self.env_steps


def score(
    seed: int,
    log: EpisodeLog,
    reached: tuple[int, float] | None,
    env_steps: int,
    wall_seconds: float,
    final_eval: float,
    budget: int,
) -> Run:
    after = None if reached is None else log.low(reached[0], env_steps)
    return Run(
        seed=seed,
        steps_to_target=None if reached is None else reached[0],
        seconds_to_target=None if reached is None else reached[1],
        env_steps=env_steps,
        wall_seconds=wall_seconds,
        final_eval=final_eval,
        late_low=log.low(LATE_FRACTION * budget, budget),
        late_low_run=log.low(LATE_FRACTION * env_steps, env_steps),
        low_after_target=after,
    )


def greedy_eval(act: Callable[[np.ndarray], np.ndarray], seed: int, env_id: str = ENV_ID) -> float:
    """Mean return of 20 greedy episodes, env i reset with seed 1,000,000 + seed + i.

    ``act`` maps a batch of observations [20, obs_dim] to greedy actions ([20] for CartPole,
    [20, act_dim] for a Box action space, clipped here to its bounds as ``pglib.evaluate``
    does). The same episodes as ``pglib.evaluate(policy, env_id, 20, 1_000_000 + seed)``,
    for any method.
    """
    envs = pglib.make_vector_env(env_id, EVAL_EPISODES)
    space = envs.single_action_space
    try:
        obs, _ = envs.reset(seed=seed + EVAL_SEED_OFFSET)
        returns = np.zeros(EVAL_EPISODES)
        running = np.ones(EVAL_EPISODES, dtype=bool)
        while running.any():
            action = act(obs)
            if isinstance(space, gym.spaces.Box):
                action = np.clip(action, space.low, space.high)
            obs, reward, terminated, truncated, _ = envs.step(action)
            returns += np.where(running, reward, 0.0)
            running &= ~(terminated | truncated)
        return float(returns.mean())
    finally:
        envs.close()


def torch_argmax_act(logits_net: Callable[[torch.Tensor], torch.Tensor]):
    def act(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return logits_net(torch.as_tensor(obs, dtype=torch.float32)).argmax(-1).numpy()

    return act


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# --- pglib -------------------------------------------------------------------------------


@contextlib.contextmanager
def pglib_episode_log(log: EpisodeLog) -> Iterator[None]:
    """Feed every episode pglib's collectors finish into ``log``, at the run's env steps.

    Wraps the collectors' ``collect`` (a list append per call, no change to what they
    return). pglib learns of an episode's return when a collect call returns, so each episode
    is logged at the env steps the run has made by then.
    """
    rollouts = getattr(pglib, "rollouts", pglib)
    patched = []
    total = [0]

    def wrap(cls: type, steps_of: Callable, returns_of: Callable) -> None:
        original = cls.collect

        def collect(self, *args, **kwargs):
            batch = original(self, *args, **kwargs)
            total[0] += steps_of(batch)
            for ret in returns_of(batch):
                log.add(total[0], ret)
            return batch

        cls.collect = collect
        patched.append((cls, original))

    wrap(rollouts.RolloutCollector, lambda r: r.n_steps, lambda r: r.finished_returns)
    if hasattr(rollouts, "EpisodeCollector"):
        wrap(rollouts.EpisodeCollector, lambda b: b.env_steps, lambda b: b.returns)
    try:
        yield
    finally:
        for cls, original in reversed(patched):
            cls.collect = original


def pglib_config(method: str, seed: int, budget: int):
    if method == "reinforce":
        return pglib.REINFORCEConfig(seed=seed, max_steps=budget)
    # Before the trainer split, today's REINFORCEConfig is the A2C trainer.
    a2c = getattr(pglib, "A2CConfig", pglib.REINFORCEConfig)
    return a2c(seed=seed, max_steps=budget)


def run_pglib(method: str, seed: int, budget: int) -> Run:
    return train_pglib(pglib_config(method, seed, budget), budget)


def train_pglib(config, budget: int) -> Run:
    """Train ``config`` with ``pglib.train`` and score it; the target is its target_return."""
    log = EpisodeLog(target=config.target_return)
    with pglib_episode_log(log):
        history = pglib.train(config, progress=False)  # sets one torch thread itself
    if log.steps and log.steps[-1] > history.env_steps[-1]:
        raise RuntimeError("the episode log ran past the trainer's env steps")
    reached = None
    if history.steps_to_target is not None:
        reached = (history.steps_to_target, history.seconds_to_target)
    with one_thread():
        final = greedy_eval(pglib_greedy(history.policy), config.seed, config.env_id)
    return score(
        config.seed, log, reached, history.env_steps[-1], history.wall_seconds[-1], final, budget
    )


def pglib_greedy(policy) -> Callable[[np.ndarray], np.ndarray]:
    """A pglib policy's greedy actions: the categorical's argmax, or the Gaussian's mean."""

    def act(obs: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return policy.distribution(torch.as_tensor(obs)).mode.numpy()

    return act


# --- Stable-Baselines3 -------------------------------------------------------------------


def linear(initial: float) -> Callable[[float], float]:
    """rl-zoo's ``lin_<x>``: x times the fraction of the budget still to go."""
    return lambda progress_remaining: progress_remaining * initial


def sb3_model(method: str, seed: int):
    """rl-zoo's CartPole-v1 settings; everything not listed is Stable-Baselines3's default.

    a2c.yml: n_envs 8, MlpPolicy, ent_coef 0.0 (defaults: n_steps 5, lr 7e-4 constant,
    RMSprop, gamma 0.99, gae_lambda 1.0, vf_coef 0.5, max_grad_norm 0.5, 64x64 tanh).
    ppo.yml: n_envs 8, MlpPolicy, n_steps 32, batch_size 256, gae_lambda 0.8, gamma 0.98,
    n_epochs 20, ent_coef 0.0, learning_rate lin_0.001, clip_range lin_0.2. The linear
    schedules run over the budget given to ``learn``.
    """
    from stable_baselines3 import A2C, PPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(ENV_ID, n_envs=8, seed=seed)  # each env in a Monitor, DummyVecEnv
    if method == "sb3-a2c":
        return A2C("MlpPolicy", env, ent_coef=0.0, seed=seed, device="cpu")
    return PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        seed=seed,
        device="cpu",
    )


def sb3_callback(log: EpisodeLog, clock: dict):
    from stable_baselines3.common.callbacks import BaseCallback

    class EpisodeCallback(BaseCallback):
        """Logs the Monitor's finished episodes and the training-loop clock."""

        def _on_training_start(self) -> None:
            clock["start"] = time.perf_counter()

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                episode = info.get("episode")
                if episode is not None and log.add(self.num_timesteps, episode["r"]):
                    if "reached" not in clock:
                        seconds = time.perf_counter() - clock["start"]
                        clock["reached"] = (self.num_timesteps, seconds)
            return True

        def _on_training_end(self) -> None:
            clock["wall"] = time.perf_counter() - clock["start"]

    return EpisodeCallback()


def run_sb3(method: str, seed: int, budget: int) -> Run:
    return train_sb3(lambda: sb3_model(method, seed), seed, budget)


def train_sb3(
    make_model: Callable, seed: int, budget: int, env_id: str = ENV_ID, target: float = TARGET
) -> Run:
    """Build a Stable-Baselines3 model with ``make_model()``, train it and score it."""
    log, clock = EpisodeLog(target=target), {}
    with one_thread():
        model = make_model()
        model.learn(total_timesteps=budget, callback=sb3_callback(log, clock))
        net = model.policy

        def act(obs: np.ndarray) -> np.ndarray:
            return net.predict(obs, deterministic=True)[0]

        final = greedy_eval(act, seed, env_id)
        model.get_env().close()
    return score(seed, log, clock.get("reached"), model.num_timesteps, clock["wall"], final, budget)


# --- the Spinning-Up-style reference -----------------------------------------------------


def run_reference(seed: int, budget: int, max_steps: int, batch_size: int = 5000) -> Run:
    """Spinning Up's simplest policy gradient with reward-to-go weights, one env, per-step calls.

    Trains for ``max_steps`` (so that the steps to the target can be measured even when it is
    beyond ``budget``), and takes the greedy evaluation at ``budget`` (after the first update
    that reaches it), like the others'.
    """
    with one_thread():
        torch.manual_seed(seed)
        logits_net = nn.Sequential(nn.Linear(4, 32), nn.Tanh(), nn.Linear(32, 2))
        optimizer = torch.optim.Adam(logits_net.parameters(), lr=1e-2)
        env = gym.make(ENV_ID)
        obs, _ = env.reset(seed=seed)
        log = EpisodeLog()
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
                    if log.add(steps, sum(ep_rews)) and reached is None:
                        reached = (steps, time.perf_counter() - start)
                    batch_weights += list(np.cumsum(ep_rews[::-1])[::-1])  # reward-to-go
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
                eval_at_budget = greedy_eval(torch_argmax_act(logits_net), seed)
                start += time.perf_counter() - eval_start  # evaluation is not training time
        seconds = time.perf_counter() - start
        env.close()
        if eval_at_budget is None:
            eval_at_budget = greedy_eval(torch_argmax_act(logits_net), seed)
    return score(seed, log, reached, steps, seconds, eval_at_budget, budget)


# --- tables ------------------------------------------------------------------------------


def fmt(x: float | None, spec: str, none: str = "–") -> str:
    return none if x is None else format(x, spec)


def median_steps(runs: Sequence[Run]) -> float:
    """Median steps to the target over all runs, a run that never reached it counting as
    +inf."""
    return statistics.median(
        r.steps_to_target if r.steps_to_target is not None else float("inf") for r in runs
    )


def median_seconds(runs: Sequence[Run]) -> float:
    return statistics.median(
        r.seconds_to_target if r.seconds_to_target is not None else float("inf") for r in runs
    )


def seed_table(runs: Sequence[Run], label: str = "475", whole_run: bool = True) -> str:
    """One row per seed. ``label`` names the target in the headers; ``whole_run=False``
    leaves out "late low (whole run)", which differs from "late low" only for a run
    longer than the budget (the reference)."""
    whole = " late low (whole run) |" if whole_run else ""
    lines = [
        f"| seed | steps to {label} | s to {label} | env steps | training s | µs/step | "
        f"greedy eval | late low |{whole} low after {label} |",
        "|---|---|---|---|---|---|---|---|" + ("---|" if whole_run else "") + "---|",
    ]
    for r in runs:
        whole = f" {r.late_low_run:.1f} |" if whole_run else ""
        lines.append(
            f"| {r.seed} | {fmt(r.steps_to_target, ',')} | {fmt(r.seconds_to_target, '.2f')} "
            f"| {r.env_steps:,} | {r.wall_seconds:.2f} | {r.us_per_step:.1f} "
            f"| {r.final_eval:.1f} | {r.late_low:.1f} |{whole} "
            f"{fmt(r.low_after_target, '.1f')} |"
        )
    return "\n".join(lines)


def summary_table(
    results: dict[str, list[Run]],
    budget: int,
    ref_steps: int,
    label: str = "475",
    eval_threshold: float = TARGET,
    eval_label: str = "475",
    names: dict[str, str] = NAMES,
) -> str:
    """One row per method; ``label`` names the training target, ``eval_label`` the greedy
    evaluation's threshold ``eval_threshold``."""
    k = budget // 1000
    lines = [
        f"| method | seeds | reached {label} | steps to {label}: median [min–max] "
        f"| s to {label} (median) | µs per env step (median) | greedy eval at {k}k "
        f"≥ {eval_label} | greedy eval (median) | late low, final 20% of {k}k (median) "
        f"| low after {label} (median) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method, runs in results.items():
        hits = [r for r in runs if r.steps_to_target is not None]
        name = names[method]
        if method == "reference":
            name += f", trained {ref_steps // 1000}k"
        steps = "–"
        if hits:
            lo = min(r.steps_to_target for r in hits)
            hi = max(r.steps_to_target for r in hits)
            median = median_steps(runs)
            median_text = "never" if median == float("inf") else f"{median:,.0f}"
            steps = f"{median_text} [{lo:,}–{hi:,}]"
            if len(hits) < len(runs):
                steps += f" ({len(runs) - len(hits)} never)"
        after = [r.low_after_target for r in hits]
        seconds = median_seconds(runs)
        lines.append(
            f"| {name} | {len(runs)} | {len(hits)}/{len(runs)} | {steps} "
            f"| {'–' if seconds == float('inf') else format(seconds, '.2f')} "
            f"| {statistics.median(r.us_per_step for r in runs):.1f} "
            f"| {sum(r.final_eval >= eval_threshold for r in runs)}/{len(runs)} "
            f"| {statistics.median(r.final_eval for r in runs):.1f} "
            f"| {statistics.median(r.late_low for r in runs):.1f} "
            f"| {fmt(statistics.median(after) if after else None, '.1f')} |"
        )
    return "\n".join(lines)


def time_ratios(ours: Sequence[Run], theirs: Sequence[Run]) -> tuple[float, float, float]:
    """Theirs / ours: median steps to the target, median µs per step, median seconds to the
    target (inf or nan where a median never reached it)."""
    steps = median_steps(theirs) / median_steps(ours)
    per_step = statistics.median(r.us_per_step for r in theirs) / statistics.median(
        r.us_per_step for r in ours
    )
    return steps, per_step, median_seconds(theirs) / median_seconds(ours)


def ratio_table(
    results: dict[str, list[Run]],
    label: str = "475",
    pairs: Sequence[tuple[str, str]] = PAIRS,
    names: dict[str, str] = NAMES,
) -> str:
    lines = [
        f"| pglib vs | fewer steps to {label} (median / median) | cheaper steps (µs/step, "
        f"median / median) | less time, derived (product) | less time, measured (median s "
        f"to {label}) |",
        "|---|---|---|---|---|",
    ]
    for ours, theirs in pairs:
        if ours not in results or theirs not in results:
            continue
        steps, per_step, measured = time_ratios(results[ours], results[theirs])
        if not all(map(np.isfinite, (steps, per_step, measured))):
            lines.append(
                f"| {names[ours]} vs {names[theirs]} | – (a median never reached {label}) "
                f"| {per_step:.2f}x | – | – |"
            )
            continue
        lines.append(
            f"| {names[ours]} vs {names[theirs]} | {steps:.2f}x | {per_step:.2f}x "
            f"| {steps * per_step:.1f}x | {measured:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="pglib seeds (default 10)")
    parser.add_argument("--sb3-seeds", type=int, default=10, help="SB3 A2C seeds (default 10)")
    parser.add_argument("--ppo-seeds", type=int, default=5, help="SB3 PPO seeds (default 5)")
    parser.add_argument("--reference-seeds", type=int, default=5, help="default 5")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=150_000, help="env steps per run")
    parser.add_argument(
        "--reference-max-steps",
        type=int,
        default=400_000,
        help="the reference trains this long, to measure its steps to the target",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="default: all"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a check of the script: 2 seeds each, a 30k budget, the reference trained 30k",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = args.sb3_seeds = args.ppo_seeds = args.reference_seeds = 2
        args.budget = args.reference_max_steps = 30_000
    counts = {"reinforce": args.seeds, "a2c": args.seeds, "sb3-a2c": args.sb3_seeds}
    counts |= {"sb3-ppo": args.ppo_seeds, "reference": args.reference_seeds}

    import stable_baselines3

    print(
        f"python {platform.python_version()}, torch {torch.__version__}, gymnasium "
        f"{gym.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
        f"{os.cpu_count()} cores, load average before: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg()),
        flush=True,
    )
    print(f"pglib REINFORCE: {pglib_config('reinforce', 0, args.budget)}", flush=True)
    print(f"pglib A2C: {pglib_config('a2c', 0, args.budget)}", flush=True)
    # Round robin over the methods, seed by seed, so that a change in the machine's load
    # falls on every method alike.
    results: dict[str, list[Run]] = {method: [] for method in args.methods}
    for i in range(max(counts[method] for method in args.methods)):
        for method in args.methods:
            if i >= counts[method]:
                continue
            seed = args.first_seed + i
            if method in ("reinforce", "a2c"):
                run = run_pglib(method, seed, args.budget)
            elif method == "reference":
                run = run_reference(seed, args.budget, args.reference_max_steps)
            else:
                run = run_sb3(method, seed, args.budget)
            results[method].append(run)
            print(
                f"  {NAMES[method]} seed {seed}: steps to 475 {run.steps_to_target}, "
                f"training {run.wall_seconds:.1f} s, greedy eval {run.final_eval:.1f}",
                flush=True,
            )
    for method, runs in results.items():
        print(f"\n{NAMES[method]}, per seed:\n{seed_table(runs)}", flush=True)
    print("load average after: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"\nSummary ({args.budget:,}-step budget):\n")
    print(summary_table(results, args.budget, args.reference_max_steps))
    print("\nRatios, theirs / ours (how many times fewer steps, cheaper steps, less time):\n")
    print(ratio_table(results))


if __name__ == "__main__":
    main()
