"""The command line: ``python -m pglib train --env CartPole-v1 --seed 0 --out results.json``.

``train`` runs REINFORCE (:func:`pglib.train`) for the whole ``--max-steps`` budget (or until
the target with ``--stop-at-target``), shows a progress bar, prints a summary, and writes a
JSON file with the configuration, when the target was first reached, the wall time, the mean
return of 20 greedy evaluation episodes, and the per-update history. Introduced in Chapter 8.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pglib.reinforce import REINFORCEConfig, evaluate, train

#: Greedy evaluation episodes run at the end of the budget.
EVAL_EPISODES = 20
#: Seed offset of the evaluation environments, so they never replay training resets.
EVAL_SEED_OFFSET = 1_000_000


def _parser() -> argparse.ArgumentParser:
    defaults = REINFORCEConfig()
    parser = argparse.ArgumentParser(prog="pglib", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("train", help="train REINFORCE and write a JSON report")
    p.add_argument("--env", default=defaults.env_id, help="Gymnasium id (Discrete actions)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--lr", type=float, default=defaults.lr, help="policy Adam step size")
    p.add_argument("--lr-schedule", choices=["constant", "linear"], default=defaults.lr_schedule)
    p.add_argument("--num-envs", type=int, default=defaults.num_envs)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--gamma", type=float, default=defaults.gamma)
    p.add_argument("--no-baseline", action="store_true", help="turn the value baseline off")
    p.add_argument("--entropy-coef", type=float, default=defaults.entropy_coef)
    p.add_argument("--max-steps", type=int, default=defaults.max_steps)
    p.add_argument("--target-return", type=float, default=defaults.target_return)
    p.add_argument(
        "--stop-at-target", action="store_true", help="stop when the target is first reached"
    )
    p.add_argument("--device", default=defaults.device)
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", required=True, type=Path, help="where to write the JSON report")
    return parser


def _check_output_path(path: Path) -> None:
    """Fail before training, not after it, when the report cannot be written."""
    if path.is_dir():
        raise ValueError(f"--out must be a file path, got the directory {str(path)!r}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"--out must be in an existing directory, got {str(path)!r}")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"--out must be in a writable directory, got {str(path)!r}")


def _report(args: argparse.Namespace) -> dict[str, Any]:
    config = REINFORCEConfig(
        env_id=args.env,
        num_envs=args.num_envs,
        seed=args.seed,
        lr=args.lr,
        lr_schedule=args.lr_schedule,
        gamma=args.gamma,
        batch_size=args.batch_size,
        value_baseline=not args.no_baseline,
        entropy_coef=args.entropy_coef,
        max_steps=args.max_steps,
        target_return=args.target_return,
        stop_at_target=args.stop_at_target,
        device=args.device,
    )
    history = train(config, progress=not args.no_progress)
    final = evaluate(history.policy, config.env_id, EVAL_EPISODES, config.seed + EVAL_SEED_OFFSET)
    return {
        "config": config.to_dict(),
        "steps_to_target": history.steps_to_target,
        "seconds_to_target": history.seconds_to_target,
        "wall_seconds": history.wall_seconds[-1],
        "final_eval_return": float(final.mean()),
        "history": history.to_dict(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status:
    0 on success, 2 on bad input (with the reason on stderr). Introduced in Chapter 8."""
    args = _parser().parse_args(argv)
    try:
        _check_output_path(args.out)
        report = _report(args)
    except ValueError as error:
        print(f"pglib train: error: {error}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    reached = report["steps_to_target"]
    steps = report["history"]["env_steps"][-1]
    recent = report["history"]["recent_return"][-1]
    print(
        f"trained {args.env} for {steps} env steps in {report['wall_seconds']:.1f} s; "
        f"last-20-episode mean return {math.nan if recent is None else recent:.1f}; "
        + (
            f"target {args.target_return:g} first reached after {reached} steps "
            f"({report['seconds_to_target']:.1f} s); "
            if reached is not None
            else f"target {args.target_return} not reached; "
        )
        + f"greedy evaluation over {EVAL_EPISODES} episodes: {report['final_eval_return']:.1f}. "
        f"Report written to {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
