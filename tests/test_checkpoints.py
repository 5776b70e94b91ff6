"""Tests for pglib.checkpoints: safetensors checkpoints with a verified pglib header."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
import safetensors.torch
import torch

import pglib
from pglib.checkpoints import load_checkpoint, save_checkpoint


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    policy = pglib.MLPCategoricalPolicy(4, 3, hidden_sizes=(8, 5), activation=torch.nn.ReLU)
    path = tmp_path / "policy.safetensors"
    pglib.save_policy(policy, path)
    return policy, path


def test_save_and_load_round_trip(saved) -> None:
    policy, path = saved
    loaded = pglib.load_policy(path)
    obs = torch.randn(7, 4)
    assert torch.equal(loaded(obs), policy(obs))
    assert isinstance(loaded.logits_net[1], torch.nn.ReLU)
    architecture, tensors = load_checkpoint(path)
    assert architecture == {
        "kind": "MLPCategoricalPolicy",
        "obs_dim": 4,
        "n_actions": 3,
        "hidden_sizes": [8, 5],
        "activation": "ReLU",
    }
    assert set(tensors) == set(policy.state_dict())


def test_the_file_is_plain_safetensors_with_a_pglib_header(saved) -> None:
    _, path = saved
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    metadata = json.loads(data[8 : 8 + size])["__metadata__"]
    assert metadata["pglib_version"] == pglib.__version__
    assert len(metadata["sha256"]) == 64
    safetensors.torch.load(data)  # any safetensors reader can read the weights


def _message(path) -> str:
    with pytest.raises(ValueError) as info:
        pglib.load_policy(path)
    return str(info.value)


def test_flipped_bytes_in_the_weights_are_caught(saved) -> None:
    _, path = saved
    data = bytearray(path.read_bytes())
    for offset in range(len(data) - 64, len(data)):  # the last 64 bytes are weights
        data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    assert "is corrupted: the SHA-256 of its tensors does not match" in _message(path)


def test_truncated_empty_foreign_and_pickled_files_are_named(saved, tmp_path) -> None:
    _, path = saved
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[:-10])
    assert "is corrupted or truncated" in _message(cut)
    cut.write_bytes(data[:20])
    assert "is truncated: the header needs" in _message(cut)
    cut.write_bytes(data[:5])
    assert "is truncated: 5 bytes" in _message(cut)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    assert "is empty (0 bytes)" in _message(empty)
    foreign = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, foreign)
    assert "is a foreign safetensors file" in _message(foreign)
    pickled = tmp_path / "pickled.pt"
    torch.save({"w": torch.zeros(2)}, pickled)
    message = _message(pickled)
    assert "is a pickle (a torch.save file)" in message
    assert "weights_only" not in message  # never pass on torch's advice to unpickle
    assert "does not exist" in _message(tmp_path / "missing.safetensors")


def test_architecture_is_checked_against_the_tensors(tmp_path) -> None:
    path = tmp_path / "wrong.safetensors"
    tensors = dict(pglib.MLPCategoricalPolicy(4, 2, hidden_sizes=(8,)).state_dict())
    architecture = {
        "kind": "MLPCategoricalPolicy",
        "obs_dim": 4,
        "n_actions": 2,
        "hidden_sizes": [16],
        "activation": "Tanh",
    }
    save_checkpoint(path, tensors, architecture)
    assert "does not match its architecture" in _message(path)
    save_checkpoint(path, tensors, {**architecture, "hidden_sizes": [8], "activation": "os"})
    assert "has an invalid architecture: activation must be one of" in _message(path)
    save_checkpoint(path, tensors, {"kind": "ValueNet"})
    assert "holds a 'ValueNet', not an MLPCategoricalPolicy" in _message(path)


def test_a_failed_save_leaves_the_old_file_intact(saved, tmp_path) -> None:
    _, path = saved
    before = path.read_bytes()
    broken = pglib.MLPCategoricalPolicy(4, 3, hidden_sizes=(8, 5), activation=torch.nn.ReLU)
    with torch.no_grad():
        broken.logits_net[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="must contain only finite numbers"):
        pglib.save_policy(broken, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_no_code_path_unpickles() -> None:
    """No pglib module calls torch.load (safetensors.torch.load reads no pickles), so none can
    pass weights_only=False, and no text of pglib suggests it."""
    for source in Path(pglib.__file__).parent.glob("*.py"):
        text = source.read_text(encoding="utf-8")
        assert re.search(r"(?<!safetensors\.)torch\.load\(", text) is None, source.name
        assert "weights_only=False" not in text, source.name


def test_a_language_model_round_trips_with_its_task(tmp_path) -> None:
    torch.manual_seed(0)
    task = pglib.DigitSumTask(min_target=3, max_target=9, max_digits=2)
    model = pglib.TinyLM(task, d_model=16, n_layers=1, n_heads=2)
    path = tmp_path / "lm.safetensors"
    pglib.save_lm(model, path)
    loaded = pglib.load_lm(path)
    assert loaded.task == task and (loaded.d_model, loaded.n_layers, loaded.n_heads) == (16, 1, 2)
    tokens = torch.tensor([[12, 1, 2], [13, 4, 10]])
    assert torch.equal(loaded(tokens), model(tokens))
    architecture, _ = load_checkpoint(path)
    assert architecture == {"kind": "TinyLM", "min_target": 3, "max_target": 9, "max_digits": 2,
                            "d_model": 16, "n_layers": 1, "n_heads": 2}  # fmt: skip
    with pytest.raises(ValueError, match=r"holds a 'TinyLM'.*not an MLPCategoricalPolicy"):
        pglib.load_policy(path)


def test_a_language_model_checkpoint_is_checked_against_its_architecture(tmp_path) -> None:
    model = pglib.TinyLM(pglib.DigitSumTask(max_digits=2, max_target=18), d_model=8, n_heads=2)
    tensors = dict(model.state_dict())
    path = tmp_path / "lm.safetensors"
    fields = {"min_target": 5, "max_target": 18, "max_digits": 2, "n_layers": 2, "n_heads": 2}
    save_checkpoint(path, tensors, {"kind": "TinyLM", **fields, "d_model": 16})
    with pytest.raises(ValueError, match="does not match its architecture"):
        pglib.load_lm(path)
    save_checkpoint(path, tensors, {"kind": "TinyLM", **fields, "d_model": 8, "max_target": 30})
    with pytest.raises(ValueError, match="invalid architecture: max_target must be at most 9"):
        pglib.load_lm(path)
    pglib.save_policy(pglib.MLPCategoricalPolicy(4, 2), path)
    with pytest.raises(ValueError, match="not a TinyLM"):
        pglib.load_lm(path)


def test_the_pretrained_language_model_ships_inside_the_package() -> None:
    assert pglib.PRETRAINED_LM.parent == Path(pglib.__file__).parent / "data"
    pyproject = (Path(pglib.__file__).parent.parent / "pyproject.toml").read_text()
    assert 'pglib = ["data/*.safetensors"]' in pyproject  # package data, for pip installs
    model = pglib.load_pretrained_lm()
    assert model.task == pglib.DigitSumTask() and model.d_model == 64
