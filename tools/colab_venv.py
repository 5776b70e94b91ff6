"""A virtual environment with Google Colab's preinstalled versions, for tests/colab.

    python tools/colab_venv.py        # build it (or find it built) and print its path

The versions are pinned in ``tests/colab/requirements.txt``. The venv is cached under
``build-assets/colab-venv/<key>``, where the key is a hash of that file and of the Python
version, so a second run reuses it and a changed pin builds a new one (older ones are
removed). Its ``pip freeze`` right after the build is kept as ``baseline.txt``: the test
compares the venv with it after installing the book.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINS = ROOT / "tests" / "colab" / "requirements.txt"
CACHE = ROOT / "build-assets" / "colab-venv"
KERNEL_NAME = "colab"  # the kernel spec that runs this venv's Python


def venv_dir() -> Path:
    """Where the venv for the current pins and Python version lives."""
    key = hashlib.sha256(PINS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    return CACHE / key


def python(env: Path) -> Path:
    return env / "bin" / "python"


def freeze(env: Path) -> str:
    """``pip freeze`` of ``env``: one ``name==version`` (or ``name @ url``) a line."""
    return subprocess.run(
        [python(env), "-m", "pip", "freeze", "--all", "--exclude", "pip"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def kernel_dir(env: Path) -> Path:
    """A directory of kernel specs holding one, ``colab``, that runs ``env``'s Python."""
    return env / "kernels"


def build(env: Path) -> None:
    """Create ``env`` and install the pins into it; ``env/.complete`` marks a finished build."""
    if env.exists():
        shutil.rmtree(env)  # a build that was interrupted
    print(f"Building the Colab-like venv in {env.relative_to(ROOT)} (torch makes it ~2 min)")
    venv.create(env, with_pip=True)
    subprocess.run(
        [python(env), "-m", "pip", "install", "--quiet", "--no-input", "-r", PINS], check=True
    )
    (env / "baseline.txt").write_text(freeze(env), encoding="utf-8")
    spec = kernel_dir(env) / KERNEL_NAME
    spec.mkdir(parents=True)
    argv = [str(python(env)), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "Colab-like", "language": "python"}),
        encoding="utf-8",
    )
    (env / ".complete").touch()


def ensure() -> Path:
    """The Colab-like venv for the current pins, built only if it is not there yet."""
    env = venv_dir()
    if not (env / ".complete").is_file():
        for old in CACHE.glob("*"):
            if old != env:
                shutil.rmtree(old)  # each is over a gigabyte; only the current pins matter
        build(env)
    return env


if __name__ == "__main__":
    print(ensure())
