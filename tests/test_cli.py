"""Tests for the command line, `python -m pglib train ...` (pglib/__main__.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pglib.__main__ import EVAL_EPISODES, main


def test_train_writes_the_json_report(tmp_path, capsys) -> None:
    out = tmp_path / "results.json"
    argv = ["train", "--seed", "1", "--max-steps", "2000", "--target-return", "20"]
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
    assert report["config"]["env_id"] == "CartPole-v1"
    assert report["config"]["seed"] == 1
    assert report["config"]["target_return"] == 20
    # The whole budget runs even though the low target is reached early.
    assert report["history"]["env_steps"][-1] >= 2000
    assert report["steps_to_target"] < report["history"]["env_steps"][-1]
    assert report["seconds_to_target"] <= report["wall_seconds"]
    assert 1 <= report["final_eval_return"] <= 500
    assert f"greedy evaluation over {EVAL_EPISODES} episodes" in capsys.readouterr().out


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
        (["--lr", "-0.1"], "lr must be a positive number, got -0.1"),
        (["--env", "Pendulum-v1"], "needs a Discrete action space; Pendulum-v1 has Box"),
        (["--out", "/no/such/dir/r.json"], "--out must be in an existing directory"),
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
    assert "lr must be a positive number, got -1.0" in result.stderr
