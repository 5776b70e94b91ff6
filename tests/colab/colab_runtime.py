"""The chapters in a runtime with Google Colab's preinstalled versions (ipywidgets 7.7.1,
IPython 7.34, numpy 2.0.2, ...; see tests/colab/requirements.txt and tools/colab_venv.py).

The book is installed the way a chapter's install cell does it in Colab: that very cell runs
in the Colab-like kernel, with the repository URL replaced by a copy of this working tree.
Installing must leave every preinstalled version as it was. Then every chapter runs top to
bottom in that kernel, with no error output, and every slider shows its live view.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import default

from tools import colab_venv
from tools.notebooks import CELL_TIMEOUT_S, error_outputs, install_cell_source

ROOT = colab_venv.ROOT
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
# The files that `pip install "pglib @ <url>"` builds the package from.
PACKAGE_FILES = ("pyproject.toml", "README.md", "pglib")
SLIDER_MIMES = {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _versions(frozen: str) -> dict[str, str]:
    """``pip freeze`` text as {normalised name: version or URL}."""
    versions = {}
    for line in frozen.splitlines():
        name, _, version = re.split(r"(==| @ )", line.strip(), maxsplit=1)
        versions[re.sub(r"[-_.]+", "-", name).lower()] = version
    return versions


def _run(nb: nbformat.NotebookNode, env: Path, cwd: Path) -> nbformat.NotebookNode:
    """Execute ``nb`` in the Colab-like kernel, in ``cwd``, going on past errors."""

    class ColabKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _only_the_colab_kernel(self) -> KernelSpecManager:
            return KernelSpecManager(kernel_dirs=[str(colab_venv.kernel_dir(env))])

    NotebookClient(  # it starts the kernel, and shuts it down when done
        nb,
        kernel_name=colab_venv.KERNEL_NAME,
        kernel_manager_class=ColabKernelManager,
        timeout=CELL_TIMEOUT_S,
        allow_errors=True,  # report every failing cell, not only the first
        resources={"metadata": {"path": str(cwd)}},
    ).execute()
    return nb


@pytest.fixture(scope="module")
def colab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, Path]]:
    """The Colab-like venv with the book installed by its install cell; also yields the
    ``pip freeze`` from before the install and a scratch copy of chapters/ to run in."""
    env = colab_venv.ensure()
    # A previous run installed pglib here; take it out, so that the venv is as Colab ships it.
    subprocess.run(
        [colab_venv.python(env), "-m", "pip", "uninstall", "--quiet", "--yes", "pglib"],
        check=True,
        capture_output=True,
    )
    before = colab_venv.freeze(env)
    baseline = (env / "baseline.txt").read_text(encoding="utf-8")
    assert _versions(before) == _versions(baseline), (
        f"the cached venv {env} no longer matches its build; delete it to rebuild"
    )

    scratch = tmp_path_factory.mktemp("colab")
    source = scratch / "repository"  # pip builds in the source folder: never in this tree
    source.mkdir()
    for name in PACKAGE_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            shutil.copy2(ROOT / name, source / name)
    cell = install_cell_source()
    git_url = re.search(r'"pglib @ (git\+[^"]+)"', cell)
    assert git_url, f"the install cell no longer installs pglib from a git URL:\n{cell}"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell.replace(git_url[1], source.as_uri()))]
    _run(nb, env, scratch)
    assert error_outputs(nb) == [], f"the install cell failed: {error_outputs(nb)}"

    chapters = scratch / "chapters"
    shutil.copytree(ROOT / "chapters", chapters)
    yield env, before, chapters


def test_installing_the_book_changes_no_preinstalled_version(
    colab: tuple[Path, str, Path],
) -> None:
    env, before, _ = colab
    old, new = _versions(before), _versions(colab_venv.freeze(env))
    changed = [
        f"{name} {old[name]} -> {new.get(name, 'removed')}"
        for name in old
        if new.get(name) != old[name]
    ]
    assert changed == [], f"installing the book changed preinstalled packages: {changed}"
    assert "pglib" in new, "the install cell did not install pglib"


def _report(chapter: str, nb: nbformat.NotebookNode) -> list[str]:
    return [f"{chapter}, {ANSI.sub('', report)}" for report in error_outputs(nb)]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_chapter_runs_without_error(colab: tuple[Path, str, Path], path: Path) -> None:
    env, _, chapters = colab
    nb = _run(nbformat.read(chapters / path.name, as_version=4), env, chapters)
    errors = _report(path.name, nb)
    assert errors == [], "errors in the Colab-like runtime:\n\n" + "\n\n".join(errors)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and "pglib.slider(" in cell.source:
            shown = [set(output.get("data", {})) for output in cell.outputs]
            assert any(SLIDER_MIMES <= mimes for mimes in shown), (
                f"{path.name}, cell {index}: the slider's output holds {shown}, not one bundle "
                f"with {sorted(SLIDER_MIMES)}"
            )
