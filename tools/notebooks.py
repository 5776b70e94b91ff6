"""Execute the chapter notebooks in place, the way the book and nbval expect them.

The book is built from the committed outputs (``execute_notebooks: "off"``), and nbval
checks in ``make test`` that those outputs reproduce in a fresh kernel. This script is
how the outputs get there:

    python tools/notebooks.py execute chapters/02_gridworld.ipynb   # run one chapter
    python tools/notebooks.py refresh                              # run only stale chapters
    python tools/notebooks.py install-cell                         # rewrite the Colab cells
    python tools/notebooks.py tidy                                 # collapse the check cells

Each executed notebook records a hash of its code cells in its metadata. ``refresh``
re-executes a notebook whose code changed since then, so ``make book`` never publishes
outputs of code that is no longer there, and it fails on any error output, printing the
failing cell and its traceback.

The book drops every cell tagged ``remove-cell`` (the hidden checks). JupyterLab and Colab
cannot drop them, so ``execute`` and ``tidy`` collapse their source
(``metadata.jupyter.source_hidden``): a reader sees a one-line placeholder, not the checks.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
KERNEL_NAME = "python3"
CELL_TIMEOUT_S = 600  # training cells in chapter 8 take tens of seconds; a hang still ends
HASH_KEY = "code_sha256"
HIDDEN_TAG = "remove-cell"  # the hidden check cells: dropped by the book, collapsed in Jupyter
INSTALL_CELL = """\
# Colab set-up: install pglib from the book's repository when it is missing.
import importlib.util

if importlib.util.find_spec("pglib") is None:
    %pip install --quiet "pglib @ git+{url}@{branch}\""""


def install_cell_source() -> str:
    """The first code cell of every chapter, for the repository named in ``_config.yml``."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repository = config["repository"]
    return INSTALL_CELL.format(url=repository["url"], branch=repository["branch"])


def write_install_cells(paths: list[Path]) -> None:
    """Make the first code cell of each notebook the install cell (outputs are kept)."""
    source = install_cell_source()
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
        if first_code.source != source:
            first_code.source = source
            nbformat.write(nb, path)
            print(f"{path.relative_to(ROOT)}: install cell rewritten")


def chapter_notebooks() -> list[Path]:
    """Every chapter notebook, in file-name order."""
    return sorted(CHAPTERS.glob("*.ipynb"))


def code_hash(nb: nbformat.NotebookNode) -> str:
    """A hash of the code cells' sources: what the committed outputs were computed from."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode("utf-8") + b"\0")
    return digest.hexdigest()


def hide_check_cells(nb: nbformat.NotebookNode) -> int:
    """Collapse the source of every code cell tagged ``remove-cell``; return how many changed."""
    changed = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and HIDDEN_TAG in cell.metadata.get("tags", []):
            jupyter = cell.metadata.setdefault("jupyter", {})
            if jupyter.get("source_hidden") is not True:
                jupyter["source_hidden"] = True
                changed += 1
    return changed


def tidy(paths: list[Path]) -> None:
    """Collapse the check cells of each notebook in place, without executing anything."""
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        changed = hide_check_cells(nb)
        if changed:
            nbformat.write(nb, path)
            print(f"{path.relative_to(ROOT)}: {changed} check cells collapsed")


def execute(path: Path) -> None:
    """Run ``path`` top to bottom in a fresh ``python3`` kernel and save it in place."""
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {
        "name": KERNEL_NAME,
        "display_name": "Python 3",
        "language": "python",
    }
    client = NotebookClient(
        nb,
        kernel_name=KERNEL_NAME,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(CHAPTERS)}},
        # Widget state would be a second, unchecked copy of every slider; the static
        # book shows the precomputed scrubber instead.
        store_widget_state=False,
    )
    started = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as error:
        raise SystemExit(f"{path.relative_to(ROOT)} failed:\n{error}") from None
    nb.metadata.pop("widgets", None)
    hide_check_cells(nb)
    nb.metadata.setdefault("pglib", {})[HASH_KEY] = code_hash(nb)
    nbformat.write(nb, path)
    print(f"executed {path.relative_to(ROOT)} in {time.perf_counter() - started:.1f} s")


def error_outputs(nb: nbformat.NotebookNode) -> list[str]:
    """A report for each code cell whose stored outputs contain an error."""
    reports = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                traceback = "\n".join(output.get("traceback", []))
                reports.append(f"cell {index}:\n{cell.source}\n--- error ---\n{traceback}")
    return reports


def refresh(paths: list[Path]) -> None:
    """Re-execute the notebooks whose code changed, then fail on any stored error."""
    failures = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if nb.metadata.get("pglib", {}).get(HASH_KEY) != code_hash(nb):
            print(f"{path.relative_to(ROOT)}: code changed since its outputs were stored")
            execute(path)
            nb = nbformat.read(path, as_version=4)
        failures += [f"{path.relative_to(ROOT)}, {report}" for report in error_outputs(nb)]
    if failures:
        raise SystemExit("Notebook errors:\n\n" + "\n\n".join(failures))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["execute", "refresh", "install-cell", "tidy"])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every chapter)")
    args = parser.parse_args(argv)
    paths = [path.resolve() for path in args.paths] or chapter_notebooks()
    if args.command == "execute":
        for path in paths:
            execute(path)
    elif args.command == "refresh":
        refresh(paths)
    elif args.command == "tidy":
        tidy(paths)
    else:
        write_install_cells(paths)


if __name__ == "__main__":
    sys.exit(main())
