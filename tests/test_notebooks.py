"""Static checks of the committed chapter notebooks (nbval reruns them in `make test`)."""

import re
from pathlib import Path

import nbformat
import pytest

from tools.notebooks import (
    HASH_KEY,
    HIDDEN_TAG,
    KERNEL_NAME,
    code_hash,
    error_outputs,
    hide_check_cells,
    install_cell_source,
)

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


def test_hide_check_cells_collapses_only_tagged_code_cells() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("assert 1 + 1 == 2", metadata={"tags": [HIDDEN_TAG]}),
        nbformat.v4.new_code_cell("print(2)"),
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["hide-input"]}),
        nbformat.v4.new_markdown_cell("Note", metadata={"tags": [HIDDEN_TAG]}),
    ]
    assert hide_check_cells(nb) == 1
    assert nb.cells[0].metadata["jupyter"] == {"source_hidden": True}
    assert [("jupyter" in cell.metadata) for cell in nb.cells] == [True, False, False, False]
    assert hide_check_cells(nb) == 0  # already collapsed: nothing to change


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_hidden_check_cells_are_collapsed_in_jupyter(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    shown = [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and HIDDEN_TAG in cell.metadata.get("tags", [])
        and cell.metadata.get("jupyter", {}).get("source_hidden") is not True
    ]
    assert shown == [], (
        f"{path.name}: the check cells {shown} (tag {HIDDEN_TAG}) show their source in "
        f"JupyterLab and Colab; run `python tools/notebooks.py tidy chapters/{path.name}`"
    )


# MyST syntax that JupyterLab and Colab show as raw text. A directive opens a fence
# (```{note} or :::{note}); a role is {name} followed by a backtick.
MYST_DIRECTIVE = re.compile(r"^\s*(?:`{3,}|:{3,})\s*\{([\w:-]+)\}", re.MULTILINE)
MYST_ROLE = re.compile(r"\{([\w:-]+)\}`")
# myst-nb's glue roles quote a stored output in the prose; no portable form can do that.
NO_PORTABLE_FORM = re.compile(r"glue(:\w+)?")
PORTABLE_FORMS = (
    "use <details><summary>…</summary> for a solution, bold text for a note, a markdown link "
    "for a citation or another page, $…$ for maths"
)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda path: path.stem)
def test_markdown_reads_well_outside_the_book(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    raw = [
        f"cell {index}: {kind} {{{name}}}"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for kind, pattern in (("directive", MYST_DIRECTIVE), ("role", MYST_ROLE))
        for name in pattern.findall(cell.source)
        if not NO_PORTABLE_FORM.fullmatch(name)
    ]
    assert raw == [], (
        f"{path.name}: MyST syntax shows as raw text in JupyterLab and Colab: {raw}; "
        + PORTABLE_FORMS
    )
