"""Safe checkpoints: weights as safetensors, with a verified JSON header.

A checkpoint is a `safetensors <https://huggingface.co/docs/safetensors>`_ file: a JSON header,
then the raw tensor bytes. Loading one never runs code, unlike a pickle (which
``torch.save`` writes). pglib adds three entries to the header's metadata:

- ``architecture``: JSON that says what the tensors belong to, such as
  ``{"kind": "MLPCategoricalPolicy", "obs_dim": 4, ...}``;
- ``pglib_version``: the version that wrote the file;
- ``sha256``: a SHA-256 of every tensor's name, dtype, shape and bytes.

Loading checks, in this order, before anything is built: the file exists and is not empty;
it is not a pickle or a ``torch.save`` archive; its header is complete and valid; it is a
pglib checkpoint; the hash matches the tensors; and, for a policy, the architecture
matches the tensors' names and shapes. Each failure is a ``ValueError`` that says which.
Writing is atomic: a temporary file in the same directory, then a rename, so a failed
write never leaves half a file where a good one was.

Every trainer saves its networks with this module, and the pretrained language model of
Chapters 11-15 ships as one of these files (:data:`PRETRAINED_LM`). Introduced in Chapter 8.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import Tensor, nn

from pglib import _checks
from pglib.lm import TinyLM
from pglib.policies import MLPCategoricalPolicy
from pglib.tasks import DigitSumTask

__all__ = [
    "save_checkpoint",
    "load_checkpoint",
    "save_policy",
    "load_policy",
    "save_lm",
    "load_lm",
    "PRETRAINED_LM",
    "load_pretrained_lm",
]

#: The value of the ``format`` metadata entry that marks a pglib checkpoint.
CHECKPOINT_FORMAT = "pglib-checkpoint-1"
#: The activations a saved policy may use, by name (the loader builds nothing else).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    name: getattr(nn, name) for name in ("Tanh", "ReLU", "ELU", "GELU", "SiLU", "Sigmoid")
}
#: The largest header safetensors allows; a longer one means a corrupted length field.
_MAX_HEADER_BYTES = 100_000_000
_PICKLE_START = b"\x80"  # pickle protocol 2 and later begin with the PROTO opcode
_ZIP_START = b"PK\x03\x04"  # torch.save writes a zip archive of pickles


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.

    Either the whole new file is in place afterwards, or (on any error) the old one is
    untouched and the temporary file is removed.
    """
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over each tensor's name, dtype, shape and bytes, in name order."""
    sha = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        sha.update(json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode())
        sha.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return sha.hexdigest()


def _check_tensors(tensors: object) -> dict[str, Tensor]:
    if not isinstance(tensors, dict) or not tensors:
        raise ValueError(
            f"tensors must be a non-empty dict of name -> tensor, got {_checks.describe(tensors)}"
        )
    for name, tensor in tensors.items():
        if not isinstance(name, str) or not isinstance(tensor, Tensor):
            raise ValueError(
                f"tensors must map strings to torch tensors, got {name!r} -> "
                f"{type(tensor).__name__}"
            )
        if tensor.is_floating_point() and not _checks.is_finite(tensor):
            raise ValueError(f"tensor {name!r} must contain only finite numbers, got NaN or inf")
    return tensors


def _check_out_path(path: object) -> Path:
    _checks.instance("path", path, (str, Path), "a file path (str or pathlib.Path)")
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"path must be a file path, got the directory {str(path)!r}")
    if not path.parent.is_dir():
        raise ValueError(f"path must be in an existing directory, got {str(path)!r}")
    if path.exists() and not path.is_file():
        raise ValueError(f"path must be a regular file, got {str(path)!r}")
    return path


def save_checkpoint(
    path: str | Path, tensors: dict[str, Tensor], architecture: dict[str, Any]
) -> None:
    """Save ``tensors`` (name -> tensor) and ``architecture`` (a JSON-ready dict with a
    ``"kind"`` string) as a pglib safetensors checkpoint, atomically. Introduced in Chapter 8.
    """
    path = _check_out_path(path)
    tensors = _check_tensors(tensors)
    if not isinstance(architecture, dict) or not isinstance(architecture.get("kind"), str):
        raise ValueError(
            'architecture must be a dict with a "kind" string, '
            f"got {_checks.describe(architecture)}"
        )
    try:
        architecture_json = json.dumps(architecture, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"architecture must be JSON-ready, got {error}") from None
    from pglib import __version__  # at call time: pglib/__init__ imports this module

    cpu = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "architecture": architecture_json,
        "pglib_version": __version__,
        "sha256": _digest(cpu),
    }
    atomic_write(path, safetensors.torch.save(cpu, metadata=metadata))


def _read_header(path: Path, data: bytes) -> dict[str, Any]:
    """The safetensors JSON header of ``data``, or a ValueError that says what is wrong."""
    where = f"{str(path)!r}"
    if not data:
        raise ValueError(f"checkpoint {where} is empty (0 bytes)")
    if data.startswith(_ZIP_START) or data.startswith(_PICKLE_START):
        raise ValueError(
            f"checkpoint {where} is a pickle (a torch.save file), not a pglib safetensors "
            "checkpoint; pglib never unpickles files, because unpickling can run arbitrary "
            "code. Save the weights again with pglib.save_policy from code you trust"
        )
    if len(data) < 8:
        raise ValueError(f"checkpoint {where} is truncated: {len(data)} bytes, no complete header")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > _MAX_HEADER_BYTES:
        raise ValueError(
            f"checkpoint {where} is not a safetensors file (its first 8 bytes give a header "
            f"length of {header_size:,} bytes)"
        )
    if 8 + header_size > len(data):
        raise ValueError(
            f"checkpoint {where} is truncated: the header needs {header_size:,} bytes, "
            f"the file has {len(data) - 8:,} after the length field"
        )
    try:
        header = json.loads(data[8 : 8 + header_size])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(
            f"checkpoint {where} is corrupted or not a safetensors file: its header is not JSON"
        ) from None
    if not isinstance(header, dict):
        raise ValueError(f"checkpoint {where} is corrupted: its header is not a JSON object")
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {where} is a foreign safetensors file: it has no pglib header "
            f'(metadata "format" = {CHECKPOINT_FORMAT!r}); pglib loads only files it wrote'
        )
    return header


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """``(architecture, tensors)`` from a checkpoint written by :func:`save_checkpoint`.

    Verifies the header and the SHA-256 of the tensors first; any problem (missing, empty,
    truncated, corrupted, foreign or pickled file) is a ``ValueError`` that says which.
    Introduced in Chapter 8.
    """
    _checks.instance("path", path, (str, Path), "a file path (str or pathlib.Path)")
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist or is not a regular file")
    data = path.read_bytes()
    header = _read_header(path, data)
    metadata = header["__metadata__"]
    try:
        tensors = safetensors.torch.load(data)
    except safetensors.SafetensorError as error:
        raise ValueError(
            f"checkpoint {str(path)!r} is corrupted or truncated: its tensors do not match "
            f"its header ({error})"
        ) from None
    if _digest(tensors) != metadata.get("sha256"):
        raise ValueError(
            f"checkpoint {str(path)!r} is corrupted: the SHA-256 of its tensors does not match "
            "the one recorded when it was saved"
        )
    try:
        architecture = json.loads(metadata.get("architecture", ""))
    except json.JSONDecodeError:
        raise ValueError(
            f"checkpoint {str(path)!r} is corrupted: its architecture entry is not JSON"
        ) from None
    if not isinstance(architecture, dict) or not isinstance(architecture.get("kind"), str):
        raise ValueError(f"checkpoint {str(path)!r} is corrupted: its architecture has no kind")
    return architecture, tensors


def _policy_architecture(policy: MLPCategoricalPolicy) -> dict[str, Any]:
    linears = [m for m in policy.logits_net if isinstance(m, nn.Linear)]
    activations = {type(m) for m in policy.logits_net if not isinstance(m, nn.Linear)}
    names = [name for name, cls in ACTIVATIONS.items() if activations == {cls}]
    if len(linears) > 1 and not names:
        raise ValueError(
            f"the policy's activation must be one of {sorted(ACTIVATIONS)}, "
            f"got {sorted(cls.__name__ for cls in activations)}"
        )
    return {
        "kind": "MLPCategoricalPolicy",
        "obs_dim": policy.obs_dim,
        "n_actions": policy.n_actions,
        "hidden_sizes": [m.out_features for m in linears[:-1]],
        "activation": names[0] if names else "Tanh",
    }


def _expected_shapes(architecture: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The state-dict names and shapes of the policy that ``architecture`` describes."""
    widths = [architecture["obs_dim"], *architecture["hidden_sizes"], architecture["n_actions"]]
    shapes: dict[str, tuple[int, ...]] = {}
    for layer, (n_in, n_out) in enumerate(pairwise(widths)):
        index = 2 * layer  # nn.Sequential alternates Linear and activation modules
        shapes[f"logits_net.{index}.weight"] = (n_out, n_in)
        shapes[f"logits_net.{index}.bias"] = (n_out,)
    return shapes


def _matching_dtype(
    where: str, expected: dict[str, tuple[int, ...]], tensors: dict[str, Tensor]
) -> torch.dtype:
    """The one floating dtype of ``tensors``, after checking that their names and shapes are
    exactly ``expected``: a checkpoint holds the weights of its architecture and nothing else."""
    found = {name: tuple(t.shape) for name, t in tensors.items()}
    dtypes = {t.dtype for t in tensors.values()}
    if found != expected or len(dtypes) != 1 or not next(iter(dtypes)).is_floating_point:
        raise ValueError(
            f"{where} does not match its architecture: expected tensors {expected} of one "
            f"floating dtype, got {found} with dtypes {sorted(str(d) for d in dtypes)}"
        )
    return dtypes.pop()


def save_policy(policy: MLPCategoricalPolicy, path: str | Path) -> None:
    """Save an MLP categorical policy as a checkpoint: its weights, its sizes and activation.

    Read it back with :func:`load_policy`. Introduced in Chapter 8.
    """
    _checks.instance("policy", policy, MLPCategoricalPolicy, "an MLPCategoricalPolicy")
    architecture = _policy_architecture(policy)
    save_checkpoint(path, dict(policy.state_dict()), architecture)


def load_policy(path: str | Path) -> MLPCategoricalPolicy:
    """The policy saved by :func:`save_policy`.

    The checkpoint's hash and architecture are verified (every expected weight present,
    with the right shape and dtype, and nothing else) before the network is built.
    Introduced in Chapter 8.
    """
    architecture, tensors = load_checkpoint(path)
    where = f"checkpoint {str(path)!r}"
    if architecture.get("kind") != "MLPCategoricalPolicy":
        raise ValueError(
            f"{where} holds a {architecture.get('kind')!r}, not an MLPCategoricalPolicy"
        )
    try:
        obs_dim = _checks.positive_int("obs_dim", architecture.get("obs_dim"))
        n_actions = _checks.positive_int("n_actions", architecture.get("n_actions"))
        hidden = architecture.get("hidden_sizes")
        if not isinstance(hidden, list):
            raise ValueError(f"hidden_sizes must be a list, got {_checks.describe(hidden)}")
        hidden_sizes = tuple(_checks.positive_int("hidden size", h) for h in hidden)
        activation = _checks.choice(
            "activation", architecture.get("activation"), tuple(ACTIVATIONS)
        )
    except ValueError as error:
        raise ValueError(f"{where} has an invalid architecture: {error}") from None
    expected = _expected_shapes(
        {"obs_dim": obs_dim, "n_actions": n_actions, "hidden_sizes": hidden_sizes}
    )
    dtype = _matching_dtype(where, expected, tensors)
    policy = MLPCategoricalPolicy(obs_dim, n_actions, hidden_sizes, ACTIVATIONS[activation])
    policy.to(dtype).load_state_dict(tensors)
    return policy


#: The pretrained TinyLM the language-model chapters start from, shipped inside the package.
#: Regenerate it with ``python -m pglib pretrain --out pglib/data/tiny_lm.safetensors``.
PRETRAINED_LM = Path(__file__).parent / "data" / "tiny_lm.safetensors"

#: The architecture fields of a saved TinyLM, besides its kind.
_LM_FIELDS = ("min_target", "max_target", "max_digits", "d_model", "n_layers", "n_heads")


def save_lm(model: TinyLM, path: str | Path) -> None:
    """Save a :class:`pglib.TinyLM` as a checkpoint: its weights, its task and its sizes.

    Read it back with :func:`load_lm`. Introduced in Chapter 11.
    """
    _checks.instance("model", model, TinyLM, "a TinyLM")
    task = model.task
    sizes = (task.min_target, task.max_target, task.max_digits)
    values = (*sizes, model.d_model, model.n_layers, model.n_heads)
    architecture = dict(zip(_LM_FIELDS, values, strict=True))
    save_checkpoint(path, dict(model.state_dict()), {"kind": "TinyLM", **architecture})


def load_lm(path: str | Path) -> TinyLM:
    """The :class:`pglib.TinyLM` saved by :func:`save_lm`.

    The checkpoint's hash and architecture are verified (a valid task and sizes; every
    expected weight present with the right shape, one floating dtype, nothing else) before
    the weights are loaded. Introduced in Chapter 11.
    """
    architecture, tensors = load_checkpoint(path)
    where = f"checkpoint {str(path)!r}"
    if architecture.get("kind") != "TinyLM" or set(architecture) != {"kind", *_LM_FIELDS}:
        raise ValueError(
            f"{where} holds a {architecture.get('kind')!r} with fields {sorted(architecture)}, "
            f"not a TinyLM with fields {sorted(_LM_FIELDS)}"
        )
    try:
        task = DigitSumTask(*(architecture[name] for name in _LM_FIELDS[:3]))
        model = TinyLM(task, *(architecture[name] for name in _LM_FIELDS[3:]))
    except ValueError as error:
        raise ValueError(f"{where} has an invalid architecture: {error}") from None
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    model.to(_matching_dtype(where, expected, tensors)).load_state_dict(tensors)
    return model


def load_pretrained_lm() -> TinyLM:
    """The pretrained :class:`pglib.TinyLM` the language-model chapters start from
    (:data:`PRETRAINED_LM`). Introduced in Chapter 11."""
    return load_lm(PRETRAINED_LM)
