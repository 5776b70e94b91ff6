"""The command line: ``python -m pglib train --algo reinforce --seed 0 --out results.json``.

``pretrain`` pretrains the language model of Chapter 11 (:func:`pglib.pretrain`), saves it
as a checkpoint at ``--out`` and, with ``--report``, writes a JSON report: the
configuration, the wall time, the loss history, and the exact success (sampled and greedy,
overall and per prompt). ``python -m pglib pretrain --out pglib/data/tiny_lm.safetensors``
regenerates the model the chapters load with :func:`pglib.load_pretrained_lm`.

``align`` fine-tunes that model on its reward with REINFORCE, RLOO, GRPO or Dr. GRPO
(``--method``, Chapters 11 and 12), with PPO on that reward or on a reward model's
(``ppo``, ``rlhf_ppo``, Chapter 13; ``--gae-lambda``, and for the reward model ``--pairs``
and ``--label-noise``), or on preference data labelled by that reward with DPO or KTO
(Chapters 14 and 15; ``--pairs``, ``--online``, ``--label-noise``, and KTO's
``--desirable-weight``, ``--undesirable-weight``) (:func:`pglib.align`), and writes a JSON
file with the
configuration (presets filled in), ``base_success`` and ``final_success`` (exact, over all
prompts: ``{"sampled": .., "greedy": ..}``), ``kl_to_reference`` (the exact KL to the
starting model, in nats, averaged over prompts), the training ``seconds`` and the history;
for ``rlhf_ppo`` also ``reward_model_pairs`` and ``reward_model_seconds`` (drawing the pairs
and fitting the reward model, part of ``seconds``).
``python -m pglib align --method grpo --seed 0 --out grpo.json`` gives a row of
``benchmarks/align.py``'s table.

``train`` runs REINFORCE (``--algo reinforce``, Chapter 8), A2C (``--algo a2c``, Chapter 9)
or PPO (``--algo ppo``, Chapter 10; on Pendulum-v1 it starts from
:data:`pglib.PPO_PENDULUM`) through :func:`pglib.train` for the whole ``--max-steps`` budget
(or until
the target with ``--stop-at-target``), shows a progress bar, prints a summary, and writes a
JSON file with the configuration, when the target was first reached, the wall time, the mean
return of 20 greedy evaluation episodes, and the per-update history. Introduced in Chapter 8.

It never loses a run: ``--out`` is checked (a probe file is written next to it) before
training starts; the report is written atomically (a temporary file in the same directory,
then a rename), so an old report is never left half-overwritten; and Ctrl-C writes the
history so far with ``"interrupted": true`` and exits with status 130 after one line
(``train`` and ``align``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pglib.actor_critic import A2CConfig
from pglib.alignment import AGGREGATIONS
from pglib.checkpoints import atomic_write, save_lm
from pglib.lm import PretrainConfig, exact_greedy_success, exact_success, pretrain
from pglib.lm_training import ALIGN_METHODS, METHOD_PRESETS, AlignConfig, AlignHistory, align
from pglib.ppo import PPO_PENDULUM, PPOConfig
from pglib.reinforce import REINFORCEConfig
from pglib.rollouts import evaluate
from pglib.training import History, TrainerConfig, train

#: Greedy evaluation episodes run at the end of the budget.
EVAL_EPISODES = 20
#: Seed offset of the evaluation environments, so they never replay training resets.
EVAL_SEED_OFFSET = 1_000_000
#: The exit status after Ctrl-C, as a shell reports a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130


#: The trainers, by the name ``--algo`` gives them.
CONFIGS: dict[str, type[TrainerConfig]] = {
    "reinforce": REINFORCEConfig,
    "a2c": A2CConfig,
    "ppo": PPOConfig,
}
#: Options that some trainers lack: option -> (config field, the trainers that have it).
ALGO_OPTIONS = {
    "--episodes-per-update": ("episodes_per_update", ("reinforce",)),
    "--batch-size": ("batch_size", ("a2c", "ppo")),
    "--gae-lambda": ("gae_lambda", ("a2c", "ppo")),
    "--epochs": ("epochs", ("ppo",)),
    "--minibatch-size": ("minibatch_size", ("ppo",)),
    "--clip-eps": ("clip_eps", ("ppo",)),
    "--target-kl": ("target_kl", ("ppo",)),
    "--value-clip": ("value_clip", ("ppo",)),
}
#: Settings a trainer starts from on an environment, before the options given.
PRESETS: dict[tuple[str, str], dict[str, Any]] = {("ppo", "Pendulum-v1"): PPO_PENDULUM}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pglib", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    # An option left out is absent from the namespace, so the trainer's own default applies:
    # REINFORCE and A2C differ in some (the step-size schedule, for one).
    p = commands.add_parser(
        "train",
        help="train a policy and write a JSON report",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument(
        "--algo",
        choices=sorted(CONFIGS),
        default="reinforce",
        help="reinforce: complete episodes (Chapter 8); a2c: actor-critic (Chapter 9); "
        "ppo: clipped surrogate (Chapter 10)",
    )
    p.add_argument(
        "--env",
        dest="env_id",
        help="Gymnasium id (CartPole-v1); a2c and ppo also take Box actions (Pendulum-v1)",
    )
    p.add_argument("--seed", type=int, help="seeds the networks, sampling and envs (0)")
    p.add_argument("--lr", type=float, help="policy Adam step size (0.02)")
    p.add_argument(
        "--lr-schedule",
        choices=["constant", "linear"],
        help="reinforce: constant, a2c: linear decay to 0",
    )
    p.add_argument("--num-envs", type=int, help="environments side by side (8)")
    p.add_argument(
        "--episodes-per-update",
        type=int,
        help=f"reinforce only ({REINFORCEConfig.episodes_per_update})",
    )
    p.add_argument("--batch-size", type=int, help=f"a2c and ppo ({A2CConfig.batch_size})")
    p.add_argument(
        "--gae-lambda",
        type=float,
        help=f"a2c ({A2CConfig.gae_lambda}) and ppo ({PPOConfig.gae_lambda})",
    )
    p.add_argument("--epochs", type=int, help=f"ppo only: passes per batch ({PPOConfig.epochs})")
    p.add_argument("--minibatch-size", type=int, help=f"ppo only ({PPOConfig.minibatch_size})")
    p.add_argument("--clip-eps", type=float, help=f"ppo only: ε ({PPOConfig.clip_eps})")
    p.add_argument("--target-kl", type=float, help="ppo only: KL early stop (off)")
    p.add_argument("--value-clip", type=float, help="ppo only: clip the critic's moves (off)")
    p.add_argument("--gamma", type=float, help="discount factor (0.99)")
    p.add_argument(
        "--no-baseline",
        dest="value_baseline",
        action="store_false",
        help="turn the value baseline off",
    )
    p.add_argument("--entropy-coef", type=float, help="entropy bonus weight (0)")
    p.add_argument("--max-steps", type=int, help="budget in env steps (150000)")
    p.add_argument("--target-return", type=float, help="last-20-episode mean to reach (475)")
    p.add_argument(
        "--stop-at-target", action="store_true", help="stop when the target is first reached"
    )
    p.add_argument("--device", help="torch device (cpu)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", required=True, type=Path, help="where to write the JSON report")
    p = commands.add_parser(
        "pretrain",
        help="pretrain the language model of Chapter 11 and save it",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument("--seed", type=int, help=f"seeds the weights and data ({PretrainConfig.seed})")
    p.add_argument("--steps", type=int, help=f"Adam steps ({PretrainConfig.steps})")
    p.add_argument("--batch-size", type=int, help=f"sequences a step ({PretrainConfig.batch_size})")
    p.add_argument("--lr", type=float, help=f"Adam step size ({PretrainConfig.lr})")
    p.add_argument(
        "--valid-fraction",
        type=float,
        help=f"share of correct completions in the data ({PretrainConfig.valid_fraction})",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", required=True, type=Path, help="where to save the model")
    p.add_argument("--report", type=Path, help="where to write a JSON report (none)")
    p = commands.add_parser(
        "align",
        help="fine-tune the pretrained language model on its reward and write a JSON report",
        argument_default=argparse.SUPPRESS,
    )
    p.add_argument(
        "--method",
        choices=ALIGN_METHODS,
        default="grpo",
        help="reinforce (Chapter 11), rloo, grpo, dr_grpo (Chapter 12), ppo, rlhf_ppo "
        "(Chapter 13), dpo (Chapter 14) or kto (Chapter 15)",
    )
    p.add_argument("--seed", type=int, help=f"seeds the prompts and sampling ({AlignConfig.seed})")
    p.add_argument("--updates", type=int, help=f"the budget in updates ({AlignConfig.updates})")
    p.add_argument("--prompts-per-update", type=int, help=f"({AlignConfig.prompts_per_update})")
    p.add_argument(
        "--group-size", type=int, help=f"G, completions a prompt ({AlignConfig.group_size})"
    )
    p.add_argument("--lr", type=float, help=f"Adam step size ({AlignConfig.lr})")
    presets = {
        name: {m: preset[name] for m, preset in METHOD_PRESETS.items() if name in preset}
        for name in (
            "epochs",
            "clip_eps",
            "beta",
            "aggregation",
            "gae_lambda",
            "pairs",
            "undesirable_weight",
        )
    }
    p.add_argument("--epochs", type=int, help=f"Adam steps a batch {presets['epochs']}")
    p.add_argument("--clip-eps", type=float, help=f"ratio clip ε {presets['clip_eps']}")
    p.add_argument(
        "--beta",
        type=float,
        help=f"grpo: k3 KL penalty weight; ppo, rlhf_ppo: per-token k1's; dpo, kto: β "
        f"{presets['beta']}",
    )
    p.add_argument("--aggregation", choices=AGGREGATIONS, help=f"{presets['aggregation']}")
    p.add_argument(
        "--gae-lambda", type=float, help=f"ppo, rlhf_ppo: GAE's λ {presets['gae_lambda']}"
    )
    p.add_argument(
        "--pairs",
        type=int,
        help=f"dpo, kto offline: pairs / labelled completions from the base; rlhf_ppo: its "
        f"reward model's pairs {presets['pairs']}",
    )
    p.add_argument(
        "--online",
        action="store_true",
        help="dpo, kto: draw every batch from the current policy (off: offline data)",
    )
    p.add_argument(
        "--label-noise", type=float, help="dpo, kto, rlhf_ppo: P(a label is swapped) (0)"
    )
    p.add_argument("--desirable-weight", type=float, help="kto: λ_D (n_undesirable / n_desirable)")
    p.add_argument(
        "--undesirable-weight", type=float, help=f"kto: λ_U {presets['undesirable_weight']}"
    )
    p.add_argument(
        "--max-grad-norm", type=float, help=f"gradient-norm clip ({AlignConfig.max_grad_norm})"
    )
    p.add_argument(
        "--eval-every",
        type=int,
        help=f"updates between exact evaluations ({AlignConfig.eval_every})",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--out", required=True, type=Path, help="where to write the JSON report")
    return parser


def _check_output_path(path: Path, option: str = "--out") -> None:
    """Fail before training, not after it, when the report cannot be written."""
    if path.is_dir():
        raise ValueError(f"{option} must be a file path, got the directory {str(path)!r}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{option} must be in an existing directory, got {str(path)!r}")
    if path.exists() and not path.is_file():  # /dev/full, a FIFO: a rename would replace it
        raise ValueError(f"{option} must be a regular file, got {str(path)!r}")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{option} must be in a writable directory, got {str(path)!r}")
    try:  # a read-only or full file system only shows when something is written
        with tempfile.TemporaryFile(dir=parent) as probe:
            probe.write(b"{}\n")
            probe.flush()
            os.fsync(probe.fileno())
    except OSError as error:
        raise ValueError(
            f"{option} cannot be written: a test write in {str(parent)!r} failed ({error.strerror})"
        ) from None


def _config(args: argparse.Namespace) -> TrainerConfig:
    """The trainer config of ``--algo``, from the options given (the rest keep its defaults)."""
    given = {k: v for k, v in vars(args).items() if k not in ("command", "algo", "out")}
    given.pop("no_progress", None)
    for option, (name, algos) in ALGO_OPTIONS.items():
        if name in given and args.algo not in algos:
            raise ValueError(
                f"{option} applies to --algo {' and '.join(algos)} only, not to --algo {args.algo}"
            )
    env_id = given.get("env_id", CONFIGS[args.algo].env_id)
    return CONFIGS[args.algo](**{**PRESETS.get((args.algo, env_id), {}), **given})


class _Progress:
    """The training history as of the last completed update (a ``train`` callback).

    Ctrl-C can arrive between two appends of one update; remembering how many updates were
    complete lets the partial report keep every list the same length.
    """

    def __init__(self) -> None:
        self.history: History | None = None
        self.updates = 0

    def __call__(self, history: History) -> None:
        self.history = history
        self.updates = len(history.env_steps)

    def report(self, config: TrainerConfig, final_eval_return: float | None) -> dict[str, Any]:
        """The JSON report of the updates completed so far."""
        history: dict[str, Any] = {}
        steps_to_target = seconds_to_target = None
        if self.history is not None:
            history = {k: v[: self.updates] for k, v in self.history.to_dict().items()}
            if self.history.steps_to_target in history["env_steps"]:
                steps_to_target = self.history.steps_to_target
                seconds_to_target = self.history.seconds_to_target
        wall = history.get("wall_seconds") or [0.0]
        return {
            "config": config.to_dict(),
            "steps_to_target": steps_to_target,
            "seconds_to_target": seconds_to_target,
            "wall_seconds": wall[-1],
            "final_eval_return": final_eval_return,
            "history": history,
        }


def _write(path: Path, report: dict[str, Any]) -> None:
    atomic_write(path, (json.dumps(report, indent=1) + "\n").encode("utf-8"))


def _summary(config: TrainerConfig, report: dict[str, Any], out: Path) -> str:
    reached = report["steps_to_target"]
    steps = report["history"]["env_steps"][-1]
    recent = report["history"]["recent_return"][-1]
    return (
        f"trained {config.algo} on {config.env_id} for {steps} env steps "
        f"in {report['wall_seconds']:.1f} s; "
        f"last-20-episode mean return {math.nan if recent is None else recent:.1f}; "
        + (
            f"target {config.target_return:g} first reached after {reached} steps "
            f"({report['seconds_to_target']:.1f} s); "
            if reached is not None
            else f"target {config.target_return} not reached; "
        )
        + f"greedy evaluation over {EVAL_EPISODES} episodes: {report['final_eval_return']:.1f}. "
        f"Report written to {out}"
    )


def _pretrain(args: argparse.Namespace) -> int:
    """``pglib pretrain``: train, save the model, write the report, print a summary."""
    try:
        _check_output_path(args.out)
        report_path = getattr(args, "report", None)
        if report_path is not None:
            _check_output_path(report_path, "--report")
        given = vars(args).items()
        options = {k: v for k, v in given if k not in ("command", "out", "report", "no_progress")}
        config = PretrainConfig(**options)
        result = pretrain(config, progress=not getattr(args, "no_progress", False))
        save_lm(result.model, args.out)
        success, greedy = exact_success(result.model), exact_greedy_success(result.model)
        report = {
            "config": config.to_dict(),
            "seconds": result.seconds,
            "exact_success": float(success.mean()),
            "exact_greedy_success": float(greedy.mean()),
            "exact_success_per_prompt": success.tolist(),
            "greedy_success_per_prompt": greedy.tolist(),
            "losses": result.losses,
        }
        if report_path is not None:
            _write(report_path, report)
    except ValueError as error:
        print(f"pglib pretrain: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the disk filled up or the file system turned read-only
        print(f"pglib pretrain: error: could not write: {error}", file=sys.stderr)
        return 1
    print(
        f"pretrained for {config.steps} steps in {result.seconds:.1f} s; final loss "
        f"{result.losses[-1]:.3f}; exact success {report['exact_success']:.3f} (per prompt "
        f"{success.min():.3f}..{success.max():.3f}), greedy "
        f"{report['exact_greedy_success']:.3f}. Model saved to {args.out}"
    )
    return 0


class _AlignProgress:
    """The history as of the last completed update (an ``align`` callback), for Ctrl-C."""

    def __init__(self) -> None:
        self.history: dict[str, Any] = {}

    def __call__(self, history: AlignHistory) -> None:
        self.history = history.to_dict()


def _align_report(config: AlignConfig, history: dict[str, Any], final: bool) -> dict[str, Any]:
    """The JSON report: the exact success before training and, when ``final``, after it."""

    def success(i: int) -> dict[str, float] | None:
        if not history.get("eval_success"):
            return None
        return {"sampled": history["eval_success"][i], "greedy": history["eval_greedy_success"][i]}

    wall = history.get("wall_seconds") or [0.0]
    reward_model = {}
    if config.method == "rlhf_ppo":  # None before the first update
        reward_model = {
            f"reward_model_{key}": (history.get(name) or [None])[-1]
            for key, name in (("pairs", "preference_data"), ("seconds", "reward_model_seconds"))
        }
    return {
        "config": config.to_dict(),
        "base_success": success(0),
        "final_success": success(-1) if final else None,
        "kl_to_reference": history["eval_kl"][-1] if final else None,
        "seconds": wall[-1],
        **reward_model,
        "history": history,
    }


def _align(args: argparse.Namespace) -> int:
    """``pglib align``: train, write the report, print a summary (Ctrl-C keeps the history)."""
    progress = _AlignProgress()
    try:
        _check_output_path(args.out)
        options = {k: v for k, v in vars(args).items() if k not in ("command", "out")}
        show = not options.pop("no_progress", False)
        config = AlignConfig(**options)
        try:
            history = align(config, progress, progress=show)
        except KeyboardInterrupt:
            report = {**_align_report(config, progress.history, False), "interrupted": True}
            _write(args.out, report)
            updates = len(progress.history.get("samples", []))
            print(
                f"\npglib align: interrupted after {updates} updates; the partial history "
                f"is in {args.out}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        report = _align_report(config, history.to_dict(), True)
        _write(args.out, report)
    except ValueError as error:
        print(f"pglib align: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the disk filled up or the file system turned read-only
        print(f"pglib align: error: could not write {args.out}: {error}", file=sys.stderr)
        return 1
    base, final = report["base_success"], report["final_success"]
    data = f"{history.samples[-1]} completions"
    if config.method == "rlhf_ppo":
        data += (
            f" from the policy; a reward model on {history.preference_data[-1]} pairs, fitted "
            f"in {history.reward_model_seconds[-1]:.1f} s"
        )
    elif history.preference_data:
        kind = "pairs" if config.method == "dpo" else "labelled completions"
        data += f" from the policy, {history.preference_data[-1]} {kind}"
    print(
        f"aligned with {config.method} for {config.updates} updates "
        f"({data}) in {report['seconds']:.1f} s; exact success "
        f"{base['sampled']:.3f} -> {final['sampled']:.3f} (greedy {base['greedy']:.3f} -> "
        f"{final['greedy']:.3f}); exact KL to the reference {report['kl_to_reference']:.3f} "
        f"nats. Report written to {args.out}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit status:
    0 on success, 2 on bad input (with the reason on stderr), 1 when the report cannot be
    written, 130 after Ctrl-C (with the partial report written). Introduced in Chapter 8."""
    args = _parser().parse_args(argv)
    if args.command == "pretrain":
        return _pretrain(args)
    if args.command == "align":
        return _align(args)
    progress = _Progress()
    try:
        _check_output_path(args.out)
        config = _config(args)
        try:
            history = train(config, progress, progress=not getattr(args, "no_progress", False))
            progress(history)
            final = evaluate(
                history.policy, config.env_id, EVAL_EPISODES, config.seed + EVAL_SEED_OFFSET
            )
        except KeyboardInterrupt:
            report = {**progress.report(config, None), "interrupted": True}
            _write(args.out, report)
            steps = report["history"]["env_steps"][-1] if progress.updates else 0
            print(
                f"\npglib train: interrupted after {steps} env steps; the partial history "
                f"is in {args.out}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
        report = progress.report(config, float(final.mean()))
        _write(args.out, report)
    except ValueError as error:
        print(f"pglib train: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the disk filled up or the file system turned read-only
        print(f"pglib train: error: could not write {args.out}: {error}", file=sys.stderr)
        return 1
    print(_summary(config, report, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
