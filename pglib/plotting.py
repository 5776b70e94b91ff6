"""One figure style for the whole book, and the drawings the chapters share.

Chapters call :func:`use_house_style` once; every figure then has the same fonts,
colours and grid. The numerical modules never import this one.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["HOUSE_COLORS", "use_house_style", "new_figure"]

#: Named colours used across the book, so the same idea has the same colour everywhere.
HOUSE_COLORS: dict[str, str] = {
    "primary": "#1f77b4",
    "secondary": "#ff7f0e",
    "good": "#2ca02c",
    "bad": "#d62728",
    "neutral": "#7f7f7f",
    "target": "#8fd694",
    "forbidden": "#f4a261",
    "cell": "#ffffff",
}

_RC_PARAMS: dict[str, object] = {
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "figure.figsize": (6.4, 4.0),
    "figure.constrained_layout.use": True,
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 2.0,
    "image.cmap": "viridis",
    # Deterministic PNG bytes, so precomputed slider frames and their ids reproduce.
    "svg.hashsalt": "pglib",
    "path.simplify": True,
}


def use_house_style() -> None:
    """Apply the book's matplotlib style globally. Introduced in Chapter 1."""
    mpl.rcParams.update(_RC_PARAMS)


def new_figure(
    nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0
) -> tuple[Figure, Axes | list[Axes]]:
    """A house-style figure with ``nrows`` x ``ncols`` axes (a single Axes when both are 1)."""
    if nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be >= 1, got nrows={nrows}, ncols={ncols}")
    if width <= 0 or height <= 0:
        raise ValueError(f"width and height must be positive inches, got {width} x {height}")
    use_house_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    flat = [ax for row in axes for ax in row]
    return fig, flat[0] if len(flat) == 1 else flat
