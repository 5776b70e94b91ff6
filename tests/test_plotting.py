"""pglib.plotting: the house style and the grid-world drawings."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.patches import Rectangle
from matplotlib.text import Annotation

from pglib import (
    HOUSE_COLORS,
    ArrayTable,
    GridWorld,
    new_figure,
    plot_grid_path,
    plot_gridworld,
    use_house_style,
    value_iteration,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _arrows(ax) -> list[Annotation]:
    return [child for child in ax.get_children() if isinstance(child, Annotation)]


def test_house_style_and_new_figure() -> None:
    use_house_style()
    assert matplotlib.rcParams["axes.spines.top"] is False
    fig, axes = new_figure(1, 2)
    assert len(axes) == 2 and fig.get_size_inches().tolist() == [6.4, 4.0]
    with pytest.raises(ValueError, match="nrows must be a positive integer, got 0"):
        new_figure(0, 1)


def test_cells_are_coloured_by_kind_and_labelled() -> None:
    world = GridWorld.zhao_3x3()
    ax = plot_gridworld(world)
    cells = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(cells) == 9
    faces = [matplotlib.colors.to_hex(p.get_facecolor()) for p in cells]
    assert faces[8] == HOUSE_COLORS["target"]
    assert faces[5] == faces[6] == HOUSE_COLORS["forbidden"]
    assert faces[0] == HOUSE_COLORS["cell"]
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"s{i}" for i in range(1, 10)]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["target", "forbidden"]


def test_values_are_printed_and_policies_drawn_as_arrows_and_dots() -> None:
    world = GridWorld.zhao_3x3()
    V, pi = value_iteration(world.to_mdp(0.9))
    ax = plot_gridworld(world, values=V, policy=pi, value_format="{:.1f}")
    assert "7.3" in [t.get_text() for t in ax.texts]  # V*(s1) = 0.9³ / 0.1 = 7.29
    assert len(_arrows(ax)) == 8  # one arrow in every cell but the target, where it stays
    stay_dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(stay_dots) == 1
    # A stochastic policy: arrow length grows with probability.
    policy = np.zeros((9, 5))
    policy[:, 1], policy[:, 2] = 0.25, 0.75
    ax = plot_gridworld(world, policy=policy)
    lengths = [np.hypot(*np.subtract(a.xy, a.xyann)) for a in _arrows(ax)[:2]]
    assert lengths[1] > lengths[0]


def test_paths_are_drawn_through_cell_centres() -> None:
    world = GridWorld.zhao_3x3()
    ax = plot_gridworld(world)
    plot_grid_path(world, [0, 1, 4, 7, 8], ax=ax, label="path")
    line = ax.lines[0]
    np.testing.assert_array_equal(line.get_xdata(), [0, 1, 1, 1, 2])
    np.testing.assert_array_equal(line.get_ydata(), [0, 0, 1, 2, 2])
    assert len(_arrows(ax)) == 4


def test_validation_errors() -> None:
    world = GridWorld.zhao_3x3()
    with pytest.raises(ValueError, match=r"values must have shape \[S\] = \(9,\), got \(4,\)"):
        plot_gridworld(world, values=np.zeros(4))
    with pytest.raises(
        ValueError, match=r"policy must have shape \[S, 5\] = \(9, 5\), got \(9, 4\)"
    ):
        plot_gridworld(world, policy=np.zeros((9, 4)))
    ax = plot_gridworld(world)
    with pytest.raises(ValueError, match="states must hold at least one state, got none"):
        plot_grid_path(world, [], ax=ax)
    with pytest.raises(ValueError, match=r"states must lie in \[0, 9\), got \[9\]"):
        plot_grid_path(world, [0, 9], ax=ax)


def test_array_table_as_text_and_html() -> None:
    table = ArrayTable(
        np.array([[1.0, -0.5], [2.0, 0.25]]),
        rows=["s1", "s2"],
        cols=["a", "b"],
        fmt="{:.2f}",
        corner="Q",
    )
    assert repr(table) == "Q      a      b\ns1  1.00  -0.50\ns2  2.00   0.25"
    page = table._repr_html_()
    assert page.count("<tr>") == 3 and ">s2</th>" in page and ">-0.50</td>" in page
    with pytest.raises(
        ValueError,
        match=r"values must have shape \[len\(rows\), len\(cols\)\] = \(2, 2\), got \(2, 3\)",
    ):
        ArrayTable(np.zeros((2, 3)), rows=["s1", "s2"], cols=["a", "b"])


def test_learning_curves_draw_the_median_inside_a_min_max_band() -> None:
    from pglib import plot_learning_curves

    steps = [0, 100, 200]
    seeds = [
        (steps, [0.0, 400.0, 500.0]),
        (steps, [0.0, 500.0, 500.0]),
        (steps, [10.0, 20.0, 30.0]),
    ]
    fig = plot_learning_curves({"run": seeds}, max_steps=200)
    ax = fig.axes[0]
    (line,) = ax.get_lines()
    assert line.get_label() == "run (median and range of 3 seeds)"
    np.testing.assert_allclose(line.get_ydata()[[0, -1]], [0.0, 500.0])
    (band,) = ax.collections
    ys = band.get_paths()[0].vertices[:, 1]
    assert ys.min() == 0.0 and ys.max() == 500.0  # never above the best seed


def test_learning_curves_leave_the_legend_to_the_caller_who_passes_axes() -> None:
    from pglib import new_figure, plot_learning_curves

    seeds = [([0, 100], [1.0, 2.0])]
    alone = plot_learning_curves({"run": seeds})
    assert len(alone.legends) == 1  # its own figure: one legend below the axes
    fig, ax = new_figure()
    assert plot_learning_curves({"run": seeds}, ax=ax) is fig
    assert fig.legends == []  # a panel of the caller's figure: no figure legend per call
    assert ax.get_legend_handles_labels()[1] == ["run (1 seed)"]
    plt.close("all")
