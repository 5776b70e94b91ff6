"""Static checks of the committed chapter notebooks (nbval reruns them in `make test`)."""

from pathlib import Path

import nbformat
import pytest

from tools.notebooks import HASH_KEY, KERNEL_NAME, code_hash, error_outputs, install_cell_source

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "chapters").glob("*.ipynb"))


def test_there_are_chapters() -> None:
    assert len(CHAPTERS) >= 1


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_first_code_cell_installs_pglib_for_colab(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert first_code.source == install_cell_source(), (
        f"{path.name}: the first code cell is not the install cell for the repository in "
        "_config.yml; run `python tools/notebooks.py install-cell`"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_committed_executed_in_order_in_a_python3_kernel(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == KERNEL_NAME
    counts = [cell.execution_count for cell in nb.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name} was not run top to bottom in a fresh kernel: execution counts {counts}; "
        f"run `python tools/notebooks.py execute chapters/{path.name}`"
    )
    assert nb.metadata.get("pglib", {}).get(HASH_KEY) == code_hash(nb), (
        f"{path.name}: code changed after its outputs were stored; re-execute it"
    )
    assert error_outputs(nb) == []
    assert "widgets" not in nb.metadata, (
        f"{path.name} stores widget state; execute with tools/notebooks.py"
    )


def _headings(markdown: str) -> list[str]:
    """The '# ' lines of a markdown cell, ignoring fenced code blocks."""
    headings, fenced = [], False
    for line in markdown.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        elif not fenced and line.startswith("# "):
            headings.append(line)
    return headings


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_one_title_per_chapter(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    titles = [
        line for cell in nb.cells if cell.cell_type == "markdown" for line in _headings(cell.source)
    ]
    assert len(titles) == 1, f"{path.name} should have exactly one '# ' title, found {titles}"
