"""Tests for the command line, `python -m pglib train ...` (pglib/__main__.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import pglib
from pglib.__main__ import EVAL_EPISODES, main

PGLIB_TRAIN = [sys.executable, "-m", "pglib", "train"]


@pytest.mark.parametrize("algo", ["reinforce", "a2c", "ppo"])
def test_train_writes_the_json_report(tmp_path, capsys, algo: str) -> None:
    out = tmp_path / "results.json"
    argv = ["train", "--algo", algo, "--seed", "1", "--max-steps", "2000", "--target-return", "20"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {
        "config",
        "steps_to_target",
        "seconds_to_target",
        "wall_seconds",
        "final_eval_return",
        "history",
    }
    assert report["config"]["algo"] == algo
    assert report["config"]["env_id"] == "CartPole-v1"
    history = report["history"]
    assert {"episodes", "steps_used", "mean_return"} <= set(history)
    assert len(history["episodes"]) == len(history["steps_used"]) == len(history["env_steps"])
    assert report["config"]["seed"] == 1
    assert report["config"]["target_return"] == 20
    # The whole budget runs even though the low target is reached early.
    assert report["history"]["env_steps"][-1] >= 2000
    assert report["steps_to_target"] < report["history"]["env_steps"][-1]
    assert report["seconds_to_target"] <= report["wall_seconds"]
    assert 1 <= report["final_eval_return"] <= 500
    assert f"greedy evaluation over {EVAL_EPISODES} episodes" in capsys.readouterr().out


def test_ppo_on_pendulum_starts_from_its_preset(tmp_path) -> None:
    out = tmp_path / "p.json"
    argv = ["train", "--algo", "ppo", "--env", "Pendulum-v1", "--max-steps", "1024"]
    assert main([*argv, "--epochs", "2", "--no-progress", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    expected = {**pglib.PPO_PENDULUM, "epochs": 2}  # the preset, then the options given
    assert {k: report["config"][k] for k in expected} == {
        k: list(v) if isinstance(v, tuple) else v for k, v in expected.items()
    }
    assert {"approx_kl", "clip_fraction", "explained_variance"} <= set(report["history"])
    assert -2000 < report["final_eval_return"] < 0


def test_stop_at_target_stops_early_and_a_missed_target_is_null(tmp_path) -> None:
    out = tmp_path / "r.json"
    argv = ["train", "--max-steps", "20000", "--no-progress", "--out", str(out)]
    assert main([*argv, "--target-return", "20", "--stop-at-target"]) == 0
    report = json.loads(out.read_text())
    assert report["history"]["env_steps"][-1] == report["steps_to_target"] < 20000
    assert main(["train", "--max-steps", "500", "--no-progress", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["steps_to_target"] is None and report["seconds_to_target"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "NoSuchEnv-v0"], "env_id must be a registered Gymnasium environment id"),
        (["--lr", "-0.1"], "lr must be a positive real number, got -0.1"),
        (["--env", "Pendulum-v1"], "needs a Discrete action space; Pendulum-v1 has Box"),
        (["--algo", "ppo", "--env", "CarRacing-v3"], "CarRacing-v3 needs a package"),
        (["--out", "/no/such/dir/r.json"], "--out must be in an existing directory"),
        (
            ["--batch-size", "64"],
            "--batch-size applies to --algo a2c and ppo only, not to --algo reinforce",
        ),
        (
            ["--algo", "a2c", "--episodes-per-update", "4"],
            "--episodes-per-update applies to --algo reinforce only, not to --algo a2c",
        ),
        (["--algo", "a2c", "--gae-lambda", "2"], "gae_lambda must be a real number in [0, 1]"),
        (["--algo", "a2c", "--epochs", "4"], "--epochs applies to --algo ppo only"),
        (["--algo", "ppo", "--clip-eps", "0"], "clip_eps must be a real number in (0, 10]"),
        (["--episodes-per-update", "0"], "episodes_per_update must be a positive integer"),
    ],
)
def test_bad_input_fails_with_a_message(tmp_path, capsys, args: list[str], message: str) -> None:
    argv = ["train", "--no-progress", "--max-steps", "100", "--out", str(tmp_path / "r.json")]
    assert main([*argv, *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_a_directory_is_not_an_output_path(tmp_path, capsys) -> None:
    assert main(["train", "--out", str(tmp_path)]) == 2
    assert "--out must be a file path, got the directory" in capsys.readouterr().err


def test_python_dash_m_exits_non_zero_on_bad_input(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pglib", "train", "--lr", "-1", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "lr must be a positive real number, got -1.0" in result.stderr


def test_an_unwritable_out_fails_before_training(capsys) -> None:
    # /dev/full accepts opening and fails every write: it must be refused up front.
    assert main(["train", "--max-steps", "100000", "--no-progress", "--out", "/dev/full"]) == 2
    err = capsys.readouterr().err
    assert "--out must be a regular file, got '/dev/full'" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_missing_device_is_one_line_with_the_fix(tmp_path, capsys) -> None:
    argv = ["train", "--device", "cuda", "--no-progress", "--out", str(tmp_path / "r.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "pglib train: error: device 'cuda' is not available on this machine (torch finds no "
        "cuda device); use device 'cpu' (--device cpu)"
    )


@pytest.mark.skipif(
    importlib.util.find_spec("Box2D") is not None, reason="the box2d extra is installed"
)
def test_a_missing_environment_extra_is_one_line_with_the_install_command(tmp_path, capsys) -> None:
    argv = ["train", "--env", "LunarLander-v3", "--no-progress", "--out", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("pglib train: error: LunarLander-v3 needs a package that is not")
    assert 'pip install "gymnasium[box2d]"' in err


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))


def test_a_failed_write_keeps_the_old_report_whole(tmp_path) -> None:
    out = tmp_path / "r.json"
    out.write_text('{"old": true}\n')
    result = subprocess.run(  # a 1 KiB file-size limit: the probe fits, the report does not
        [*PGLIB_TRAIN, "--max-steps", "600", "--no-progress", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=_limit_file_size,
    )
    assert result.returncode == 1, result.stderr
    assert f"pglib train: error: could not write {out}" in result.stderr
    assert "Traceback" not in result.stderr
    assert out.read_text() == '{"old": true}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left


def _wait_for_cpu_seconds(pid: int, seconds: float, timeout: float) -> None:
    """Sleep until process ``pid`` has used ``seconds`` of CPU time (Linux /proc)."""
    ticks_per_second = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if (int(stat[11]) + int(stat[12])) / ticks_per_second >= seconds:  # utime + stime
            return
        time.sleep(0.2)
    raise AssertionError(f"the process used less than {seconds} CPU seconds in {timeout} s")


def test_ctrl_c_writes_the_partial_history_and_exits_130(tmp_path) -> None:
    out = tmp_path / "r.json"
    process = subprocess.Popen(
        [*PGLIB_TRAIN, "--max-steps", "100000000", "--no-progress", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Imports take a few CPU seconds, then REINFORCE makes several updates a second. Wait for
    # CPU time, not wall time, so that a busy machine does not interrupt before the first
    # update.
    _wait_for_cpu_seconds(process.pid, 7.0, timeout=180.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pglib train: interrupted after ")
    assert lines[0].endswith(f"env steps; the partial history is in {out}")
    report = json.loads(out.read_text())
    assert report["interrupted"] is True
    assert report["final_eval_return"] is None
    lengths = {len(values) for values in report["history"].values()}
    assert len(lengths) == 1 and lengths.pop() >= 1  # whole updates only
    assert f"after {report['history']['env_steps'][-1]} env steps" in lines[0]


@pytest.mark.parametrize(("algo", "schedule"), [("reinforce", "constant"), ("a2c", "linear")])
def test_options_left_out_keep_the_trainers_own_defaults(tmp_path, algo: str, schedule: str):
    out = tmp_path / "r.json"
    argv = ["train", "--algo", algo, "--max-steps", "300", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    config = json.loads(out.read_text())["config"]
    assert config["lr_schedule"] == schedule
    assert config["value_baseline"] is True and config["stop_at_target"] is False
    assert main([*argv, "--no-baseline", "--lr-schedule", "linear", "--stop-at-target"]) == 0
    config = json.loads(out.read_text())["config"]
    assert config["value_baseline"] is False and config["lr_schedule"] == "linear"
    assert config["stop_at_target"] is True


def test_pretrain_saves_the_model_and_writes_the_report(tmp_path, capsys) -> None:
    out, report_path = tmp_path / "lm.safetensors", tmp_path / "lm.json"
    argv = ["pretrain", "--steps", "20", "--seed", "3", "--no-progress"]
    assert main([*argv, "--out", str(out), "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["config"]["steps"] == 20 and report["config"]["seed"] == 3
    assert report["config"]["task"] == {"min_target": 5, "max_target": 20, "max_digits": 3}
    assert len(report["losses"]) == 20 and len(report["exact_success_per_prompt"]) == 16
    model = pglib.load_lm(out)
    assert report["exact_success"] == pytest.approx(pglib.exact_success(model).mean().item())
    assert f"Model saved to {out}" in capsys.readouterr().out


def test_pretrain_refuses_bad_input_before_training(tmp_path, capsys) -> None:
    out = tmp_path / "lm.safetensors"
    assert main(["pretrain", "--steps", "0", "--out", str(out)]) == 2
    assert "steps must be a positive integer, got 0" in capsys.readouterr().err
    assert main(["pretrain", "--out", str(out), "--report", str(tmp_path)]) == 2
    assert "--report must be a file path, got the directory" in capsys.readouterr().err
    assert not out.exists()


# --- align ---------------------------------------------------------------------------------

ALIGN_SMALL = ["--updates", "3", "--prompts-per-update", "4", "--group-size", "2"]


@pytest.mark.parametrize("method", pglib.GROUP_METHODS)
def test_align_writes_the_json_report(tmp_path, capsys, method: str) -> None:
    out = tmp_path / "align.json"
    argv = ["align", "--method", method, "--seed", "1", *ALIGN_SMALL, "--eval-every", "3"]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {
        "config",
        "base_success",
        "final_success",
        "kl_to_reference",
        "seconds",
        "history",
    }
    assert (
        report["config"]
        == pglib.AlignConfig(
            method, seed=1, updates=3, prompts_per_update=4, group_size=2, eval_every=3
        ).to_dict()
    )
    base = pglib.load_pretrained_lm()
    assert report["base_success"] == {
        "sampled": pytest.approx(pglib.exact_success(base).mean().item()),
        "greedy": pglib.exact_greedy_success(base).mean().item(),
    }
    history = report["history"]
    assert history["eval_update"] == [0, 3] and history["samples"] == [8, 16, 24]
    assert report["final_success"] == {
        "sampled": history["eval_success"][-1],
        "greedy": history["eval_greedy_success"][-1],
    }
    assert report["kl_to_reference"] == history["eval_kl"][-1] > 0
    assert report["seconds"] == history["wall_seconds"][-1]
    printed = capsys.readouterr().out
    assert f"aligned with {method} for 3 updates" in printed and str(out) in printed


@pytest.mark.parametrize(
    ("method", "options", "config"),
    [
        ("dpo", ["--pairs", "16", "--label-noise", "0.1"], dict(pairs=16, label_noise=0.1)),
        ("dpo", ["--online"], dict(online=True)),
        (
            "kto",
            ["--pairs", "16", "--desirable-weight", "3", "--undesirable-weight", "0.5"],
            dict(pairs=16, desirable_weight=3.0, undesirable_weight=0.5),
        ),
        ("kto", ["--online", "--label-noise", "0.2"], dict(online=True, label_noise=0.2)),
    ],
)
def test_align_dpo_and_kto_write_the_same_report(tmp_path, capsys, method, options, config):
    out = tmp_path / "align.json"
    argv = ["align", "--method", method, "--seed", "2", *ALIGN_SMALL, *options]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == {
        "config",
        "base_success",
        "final_success",
        "kl_to_reference",
        "seconds",
        "history",
    }
    expected = pglib.AlignConfig(
        method, seed=2, updates=3, prompts_per_update=4, group_size=2, **config
    )
    assert report["config"] == expected.to_dict()
    history = report["history"]
    online = config.get("online", False)
    assert history["preference_data"] == ([8, 16, 24] if online else [16, 16, 16])
    assert (history["samples"][-1] > 0) == online
    assert report["final_success"]["sampled"] == history["eval_success"][-1]
    assert report["kl_to_reference"] == history["eval_kl"][-1] > 0
    assert report["seconds"] == history["wall_seconds"][-1]
    kind = "pairs" if method == "dpo" else "labelled completions"
    printed = capsys.readouterr().out
    assert f"aligned with {method} for 3 updates" in printed
    assert f" from the policy, {history['preference_data'][-1]} {kind})" in printed


@pytest.mark.parametrize(
    ("method", "options", "config"),
    [
        ("ppo", ["--gae-lambda", "0.9", "--beta", "0.1"], dict(gae_lambda=0.9, beta=0.1)),
        ("rlhf_ppo", ["--pairs", "16", "--label-noise", "0.1"], dict(pairs=16, label_noise=0.1)),
    ],
)
def test_align_ppo_and_rlhf_ppo_write_the_same_report(tmp_path, capsys, method, options, config):
    out = tmp_path / "align.json"
    argv = ["align", "--method", method, "--seed", "2", *ALIGN_SMALL, *options]
    assert main([*argv, "--no-progress", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    keys = {"config", "base_success", "final_success", "kl_to_reference", "seconds", "history"}
    if method == "rlhf_ppo":  # the reward model's data and time, reported on their own
        keys |= {"reward_model_pairs", "reward_model_seconds"}
    assert set(report) == keys
    expected = pglib.AlignConfig(
        method, seed=2, updates=3, prompts_per_update=4, group_size=2, **config
    )
    assert report["config"] == expected.to_dict()
    history = report["history"]
    assert history["samples"] == [8, 16, 24] and len(history["proxy_reward"]) == 3
    assert report["final_success"]["sampled"] == history["eval_success"][-1]
    assert report["kl_to_reference"] == history["eval_kl"][-1] > 0
    assert report["seconds"] == history["wall_seconds"][-1]
    printed = capsys.readouterr().out
    assert f"aligned with {method} for 3 updates" in printed
    if method == "rlhf_ppo":
        assert report["reward_model_pairs"] == 16 and history["preference_data"] == [16] * 3
        seconds = report["reward_model_seconds"]
        assert history["reward_model_seconds"] == [seconds] * 3 and 0 < seconds < report["seconds"]
        assert f"a reward model on 16 pairs, fitted in {seconds:.1f} s" in printed


def test_align_options_left_out_keep_the_methods_presets(tmp_path) -> None:
    out = tmp_path / "r.json"
    argv = ["align", *ALIGN_SMALL, "--eval-every", "3", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    config = json.loads(out.read_text())["config"]
    assert config["method"] == "grpo" and config["aggregation"] == "sequence"
    assert config["beta"] == 0.04 and config["epochs"] == 2
    assert main([*argv, "--aggregation", "constant", "--beta", "0", "--epochs", "1"]) == 0
    config = json.loads(out.read_text())["config"]
    assert config["aggregation"] == "constant" and config["beta"] == 0 and config["epochs"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--group-size", "1"], "pglib align: error: group_size must be an integer in [2,"),
        (["--updates", "0"], "pglib align: error: updates must be a positive integer, got 0"),
        (["--prompts-per-update", "17"], "prompts_per_update must be at most the task's 16"),
        (["--lr", "nan"], "pglib align: error: lr must be a finite positive real number"),
        (["--pairs", "8"], "pglib align: error: pairs does not apply to method 'grpo'"),
        (["--method", "dpo", "--online", "--pairs", "8"], "pairs applies to offline data only"),
        (["--method", "kto", "--label-noise", "0.6"], "label_noise must be a real number in"),
        (["--method", "dpo", "--desirable-weight", "2"], "desirable_weight does not apply"),
        (["--method", "ppo", "--gae-lambda", "2"], "gae_lambda must be a real number in [0, 1]"),
        (["--method", "ppo", "--pairs", "8"], "pairs does not apply to method 'ppo'"),
        (["--method", "rlhf_ppo", "--online"], "online does not apply to method 'rlhf_ppo'"),
        (["--gae-lambda", "0.9"], "gae_lambda does not apply to method 'grpo'"),
    ],
)
def test_align_refuses_bad_input_with_a_message(tmp_path, capsys, args, message: str) -> None:
    out = tmp_path / "r.json"
    assert main(["align", *args, "--no-progress", "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_align_checks_out_before_training(tmp_path, capsys) -> None:
    assert main(["align", "--out", str(tmp_path)]) == 2
    assert "pglib align: error: --out must be a file path, got the directory" in (
        capsys.readouterr().err
    )


def test_align_ctrl_c_writes_the_partial_history_and_exits_130(tmp_path) -> None:
    out = tmp_path / "r.json"
    argv = ["align", "--updates", "1000000", "--no-progress", "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-m", "pglib", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Imports and the first exact evaluation take a few CPU seconds, then GRPO makes about
    # 40 updates a second.
    _wait_for_cpu_seconds(process.pid, 8.0, timeout=180.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pglib align: interrupted after ")
    assert lines[0].endswith(f"updates; the partial history is in {out}")
    report = json.loads(out.read_text())
    assert report["interrupted"] is True
    assert report["final_success"] is None and report["kl_to_reference"] is None
    assert report["base_success"]["sampled"] == pytest.approx(0.145, abs=0.001)
    history = report["history"]
    evaluations = {k: v for k, v in history.items() if k.startswith("eval_")}
    per_update = {k: v for k, v in history.items() if not k.startswith("eval_")}
    assert len({len(v) for v in evaluations.values()}) == 1  # whole evaluations only
    lengths = {len(values) for values in per_update.values() if values}  # grpo's own lists
    assert len(lengths) == 1 and (updates := lengths.pop()) >= 1  # whole updates only
    assert f"after {updates} updates" in lines[0]
