"""One figure style for the whole book, and the drawings the chapters share.

Chapters call :func:`use_house_style` once; every figure then has the same fonts,
colours and grid. The numerical modules never import this one.
"""

from __future__ import annotations

import html
import itertools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from pglib import _checks

if TYPE_CHECKING:
    from pglib.gridworld import GridWorld

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


#: Size guards: more axes, or a larger figure (in inches, at 100 dpi), would take minutes to draw.
MAX_AXES = 100
MAX_FIGURE_INCHES = 50.0


def use_house_style() -> None:
    """Apply the book's matplotlib style globally. Introduced in Chapter 1."""
    mpl.rcParams.update(_RC_PARAMS)


def new_figure(
    nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float = 4.0
) -> tuple[Figure, Axes | list[Axes]]:
    """A house-style figure with ``nrows`` x ``ncols`` axes (a single Axes when both are 1)."""
    nrows = _checks.positive_int("nrows", nrows, limit=MAX_AXES)
    ncols = _checks.positive_int("ncols", ncols, limit=MAX_AXES)
    _checks.positive_int("nrows * ncols", nrows * ncols, limit=MAX_AXES)
    for name, inches in (("width", width), ("height", height)):
        _checks.real(f"{name} (inches)", inches, low=0.0, high=MAX_FIGURE_INCHES, low_open=True)
    use_house_style()
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False)
    flat = [ax for row in axes for ax in row]
    return fig, flat[0] if len(flat) == 1 else flat


# --- Grid-world drawings (Chapters 2 and 3) ---------------------------------------------

__all__ += ["plot_gridworld", "plot_grid_path"]

_ARROW_DIRECTIONS = ((0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0))  # up, right, down, left


def _check_world_and_axes(world: object, ax: object) -> None:
    from pglib.gridworld import GridWorld  # plotting serves gridworld, never the reverse

    _checks.instance("world", world, GridWorld, "a GridWorld")
    if ax is not None:
        _checks.instance("ax", ax, Axes, "a matplotlib Axes or None")


def _grid_axes(world: GridWorld, ax: Axes | None) -> Axes:
    if ax is None:
        width = 1.1 * world.n_cols + 0.6
        _, ax = new_figure(width=width, height=1.1 * world.n_rows + 0.6)
    ax.set_xlim(-0.5, world.n_cols - 0.5)
    ax.set_ylim(world.n_rows - 0.5, -0.5)  # row 0 at the top, as in the layout
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    return ax


def plot_gridworld(
    world: GridWorld,
    *,
    values: np.ndarray | None = None,
    policy: np.ndarray | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    value_format: str = "{:.2f}",
) -> Axes:
    """Draw a grid world: cells coloured by kind and labelled s1, s2, ...

    - ``values`` [S]: colour the cells as a heat map (darker blue = higher value) and print
      each value; target and forbidden cells then show their kind as a coloured border.
    - ``policy`` [S, 5]: for each cell an arrow per move action, its length proportional to
      the action's probability (drawn from just outside the centre), and a dot for "stay"
      whose area is proportional to its probability.

    Returns the Axes (a new figure when ``ax`` is None). Introduced in Chapter 2.
    """
    _check_world_and_axes(world, ax)
    n = world.n_states
    if values is not None and np.shape(values) != (n,):
        raise ValueError(f"values must have shape [S] = ({n},), got {np.shape(values)}")
    if policy is not None and np.shape(policy) != (n, len(_ARROW_DIRECTIONS) + 1):
        raise ValueError(f"policy must have shape [S, 5] = ({n}, 5), got {np.shape(policy)}")
    if values is not None:  # a NaN would be drawn as the lowest value without a word
        _checks.real_array("values", values, sequences=True)
        _check_format("value_format", value_format, 0.0)
    if policy is not None:  # arrow lengths are probabilities: the rows must sum to 1
        _checks.row_stochastic("policy", policy, rows="policy[s, :]")
    if title is not None:
        _checks.instance("title", title, str, "a string or None")
    ax = _grid_axes(world, ax)
    kind_colors = {
        "target": HOUSE_COLORS["target"],
        "forbidden": HOUSE_COLORS["forbidden"],
        "normal": HOUSE_COLORS["cell"],
    }
    if values is not None:
        values = np.asarray(values, dtype=float)
        low, span = float(values.min()), max(float(np.ptp(values)), 1e-12)
        cmap = mpl.colormaps["Blues"]
    border_colors = {"target": HOUSE_COLORS["good"], "forbidden": HOUSE_COLORS["secondary"]}
    for s in range(n):
        row, col = world.row_col(s)
        kind = world.cell_kind(s)
        shade = 0.0 if values is None else 0.05 + 0.7 * (values[s] - low) / span
        face = kind_colors[kind] if values is None else cmap(shade)
        ink = "white" if shade > 0.5 else "#222222"
        ax.add_patch(
            mpl.patches.Rectangle(
                (col - 0.5, row - 0.5), 1, 1, facecolor=face, edgecolor="#555555", lw=1
            )
        )
        if values is not None and kind != "normal":
            ax.add_patch(
                mpl.patches.Rectangle(
                    (col - 0.44, row - 0.44),
                    0.88,
                    0.88,
                    fill=False,
                    edgecolor=border_colors[kind],
                    lw=3,
                )
            )
        ax.text(col - 0.38, row - 0.38, world.label(s), ha="left", va="top", fontsize=8, color=ink)
        if values is not None:
            text = value_format.format(values[s])
            if policy is None:
                ax.text(col, row, text, ha="center", va="center", fontsize=10, color=ink)
            else:  # the centre belongs to the arrows
                ax.text(col + 0.38, row - 0.38, text, ha="right", va="top", fontsize=8, color=ink)
        if policy is not None:
            for a, (dx, dy) in enumerate(_ARROW_DIRECTIONS):
                p = float(policy[s, a])
                if p > 1e-3:
                    ax.annotate(
                        "",
                        xy=(col + (0.1 + 0.3 * p) * dx, row + (0.1 + 0.3 * p) * dy),
                        xytext=(col + 0.1 * dx, row + 0.1 * dy),  # clear of the "stay" dot
                        arrowprops={
                            "arrowstyle": "-|>",
                            "color": ink,
                            "lw": 1.5,
                            "shrinkA": 0,
                            "shrinkB": 0,
                            "mutation_scale": 6 + 6 * p,
                        },
                    )
            p_stay = float(policy[s, len(_ARROW_DIRECTIONS)])
            if p_stay > 1e-3:
                ax.plot(col, row, "o", color=ink, markersize=9 * np.sqrt(p_stay))
    if values is None:
        handles = [
            mpl.patches.Patch(facecolor=kind_colors[k], edgecolor="#555555", label=k)
            for k in ("target", "forbidden")
        ]
    else:
        handles = [
            mpl.patches.Patch(facecolor="none", edgecolor=border_colors[k], lw=3, label=k)
            for k in ("target", "forbidden")
        ]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=9)
    if title is not None:
        ax.set_title(title)
    return ax


def plot_grid_path(
    world: GridWorld,
    states: Sequence[int],
    *,
    ax: Axes,
    color: str = HOUSE_COLORS["primary"],
    label: str | None = None,
    offset: float = 0.0,
) -> Axes:
    """Draw a path of states through the grid as arrows between cell centres.

    ``offset`` shifts the path (in cells) so that two paths over the same cells stay
    visible. Introduced in Chapter 2.
    """
    _check_world_and_axes(world, ax)
    _checks.instance("ax", ax, Axes, "a matplotlib Axes")
    if isinstance(states, (str, bytes)) or not isinstance(states, (Sequence, np.ndarray)):
        raise ValueError(f"states must be a list of states, got {_checks.describe(states)}")
    if len(states) < 1:
        raise ValueError("states must hold at least one state, got none")
    bad = [
        s
        for s in states
        if isinstance(s, (bool, np.bool_))
        or not (isinstance(s, (int, np.integer)) and 0 <= s < world.n_states)
    ]
    if bad:
        raise ValueError(f"states must lie in [0, {world.n_states}), got {bad}")
    offset = _checks.real("offset", offset)
    points = [(col + offset, row + offset) for row, col in (world.row_col(s) for s in states)]
    xs, ys = zip(*points, strict=True)
    ax.plot(xs, ys, "-", color=color, lw=2, alpha=0.8, label=label)
    ax.plot(xs[0], ys[0], "o", color=color, markersize=7)
    for start, end in itertools.pairwise(points):
        if start != end:
            ax.annotate(
                "",
                xy=end,
                xytext=start,
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": color,
                    "lw": 2,
                    "shrinkA": 4,
                    "shrinkB": 4,
                    "mutation_scale": 14,
                },
            )
    return ax


# --- Labelled tables of arrays (Chapters 2 and 3) ----------------------------------------

__all__ += ["ArrayTable"]


class ArrayTable:
    """A 2-D array with row and column labels, shown as an HTML table in notebooks and the
    book, and as aligned text otherwise (which is what nbval compares).

    ``ArrayTable(mdp.R, rows=["s1", ...], cols=["up", ...], fmt="{:+.0f}", corner="r(s, a)")``.
    Introduced in Chapter 2.
    """

    def __init__(
        self,
        values: np.ndarray,
        *,
        rows: Sequence[str],
        cols: Sequence[str],
        fmt: str = "{:.3f}",
        corner: str = "",
    ) -> None:
        values = np.asarray(values)
        for name, labels in (("rows", rows), ("cols", cols)):
            if isinstance(labels, str) or not all(isinstance(label, str) for label in labels):
                raise ValueError(
                    f"{name} must be a list of strings, got {_checks.describe(labels)}"
                )
        _checks.instance("corner", corner, str, "a string")
        if values.ndim != 2 or values.shape != (len(rows), len(cols)):
            raise ValueError(
                f"values must have shape [len(rows), len(cols)] = {(len(rows), len(cols))}, "
                f"got {values.shape}"
            )
        self.values = values
        self.rows, self.cols, self.corner = list(rows), list(cols), corner
        _checks.instance("fmt", fmt, str, "a format string such as '{:.3f}'")
        self.cells = [[_format(fmt, v, "fmt") for v in row] for row in values.tolist()]

    def __repr__(self) -> str:
        grid = [[self.corner, *self.cols]] + [
            [r, *cells] for r, cells in zip(self.rows, self.cells, strict=True)
        ]
        widths = [max(len(line[j]) for line in grid) for j in range(len(grid[0]))]
        return "\n".join(
            "  ".join(
                cell.ljust(w) if j == 0 else cell.rjust(w)
                for j, (cell, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
            for line in grid
        )

    def _repr_html_(self) -> str:
        esc = html.escape
        pad = "padding: 0.15em 0.7em;"
        head = "".join(
            f'<th style="{pad} text-align: right;">{esc(c)}</th>' for c in [self.corner, *self.cols]
        )
        body = "".join(
            f'<tr><th style="{pad} text-align: left;">{esc(r)}</th>'
            + "".join(f'<td style="{pad} text-align: right;">{esc(c)}</td>' for c in cells)
            + "</tr>"
            for r, cells in zip(self.rows, self.cells, strict=True)
        )
        return (
            '<table class="pglib-table" style="font-variant-numeric: tabular-nums;">'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


def _format(fmt: str, value: object, name: str) -> str:
    """``fmt.format(value)``, or a ValueError that names the argument."""
    try:
        return fmt.format(value)
    except (ValueError, TypeError, IndexError, KeyError) as error:
        raise ValueError(
            f"{name} must format one value, such as '{{:.2f}}', got {fmt!r} ({error})"
        ) from None


def _check_format(name: str, fmt: object, example: object) -> None:
    _checks.instance(name, fmt, str, "a format string such as '{:.2f}'")
    _format(fmt, example, name)


__all__ += ["plot_learning_curves"]


def plot_learning_curves(
    runs: dict[str, Sequence[tuple[Sequence[float], Sequence[float]]]],
    *,
    ax: Axes | None = None,
    target: float | None = None,
    max_steps: float | None = None,
    ylabel: str = "return (mean of the last 20 episodes)",
) -> Figure:
    """Median and full range (min to max) over seeds of several learning curves, one per label.

    ``runs[label]`` lists one (env steps [U], return [U]) pair per seed, such as
    ``(history.env_steps, history.recent_return)``. NaN returns (no finished episode yet) are
    dropped; each curve is interpolated linearly onto 200 common step values from 0 to
    ``max_steps`` (default: the shortest run), holding its first and last values outside its
    range. The band spans the lowest to the highest seed at each step, so it never leaves the
    range the returns can take (a mean ± std band pokes above CartPole's ceiling of 500).
    ``target`` draws a dashed line. The legend goes below the axes, outside them; with ``ax``
    given, it is left to the caller (a figure of several panels wants one legend, not one per
    panel). Introduced in Chapter 8.
    """
    if (
        not isinstance(runs, dict)
        or not runs
        or any(isinstance(c, (str, bytes)) or not isinstance(c, Sequence) for c in runs.values())
        or any(len(curves) == 0 for curves in runs.values())
    ):
        raise ValueError(
            "runs must map each label to a list of at least one curve, "
            f"got {_checks.describe(runs)}"
        )
    if ax is not None:
        _checks.instance("ax", ax, Axes, "a matplotlib Axes or None")
    if target is not None:
        target = _checks.real("target", target)
    if max_steps is not None:
        max_steps = _checks.real("max_steps", max_steps, low=0.0, low_open=True)
    _checks.instance("ylabel", ylabel, str, "a string")
    checked = {
        label: [_checked_curve(label, curve) for curve in curves] for label, curves in runs.items()
    }
    own_figure = ax is None
    if ax is None:
        _, ax = new_figure(height=4.8)
    fig = ax.figure
    if max_steps is None:
        max_steps = min(float(np.max(steps)) for curves in checked.values() for steps, _ in curves)
    grid = np.linspace(0.0, max_steps, 200)
    for label, curves in checked.items():
        rows = []
        for steps, returns in curves:
            seen = ~np.isnan(returns)
            rows.append(np.interp(grid, steps[seen], returns[seen]))
        seeds = "1 seed" if len(rows) == 1 else f"median and range of {len(rows)} seeds"
        (line,) = ax.plot(grid, np.median(rows, axis=0), label=f"{label} ({seeds})")
        low, high = np.min(rows, axis=0), np.max(rows, axis=0)
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, lw=0)
    if target is not None:
        ax.axhline(target, color=HOUSE_COLORS["neutral"], ls="--", lw=1, label=f"target {target:g}")
    ax.set_xlabel("environment steps")
    ax.set_ylabel(ylabel)
    ax.set_xlim(0, max_steps)
    if own_figure:
        # Below the axes: inside them, the long labels cover the curves wherever they are put.
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", frameon=False)
    return fig


def _checked_curve(label: object, curve: object) -> tuple[np.ndarray, np.ndarray]:
    """One (steps, returns) pair as float arrays: steps finite and strictly increasing (the
    interpolation would silently draw unsorted steps wrongly), returns finite or NaN."""
    if not (isinstance(curve, (tuple, list)) and len(curve) == 2):
        raise ValueError(
            f"each curve of {label!r} must be a pair (steps, returns), "
            f"got {_checks.describe(curve)}"
        )
    steps = _checks.to_float64(_checks.real_array("steps", curve[0], ndim=1, sequences=True))
    returns = np.asarray(curve[1])
    if returns.dtype.kind not in "iuf" or returns.shape != steps.shape:
        raise ValueError(
            f"each curve needs steps and returns of one shape [U] of real numbers, got "
            f"{steps.shape} and {returns.shape} (dtype {returns.dtype}) for {label!r}"
        )
    returns = returns.astype(float)
    if np.isinf(returns).any():
        raise ValueError(f"returns of {label!r} must be finite or NaN (no episode yet), got inf")
    if not (~np.isnan(returns)).any():
        raise ValueError(f"a curve of {label!r} has no return that is not NaN")
    not_rising = np.flatnonzero(np.diff(steps) <= 0)
    if not_rising.size:
        k = int(not_rising[0])
        raise ValueError(
            f"steps of {label!r} must be strictly increasing, got {steps[k]:g} then "
            f"{steps[k + 1]:g} at index {k + 1}"
        )
    return steps, returns
