"""pglib.interactive: one output that is a live widget under a kernel and a static scrubber."""

import base64
import configparser
import re
from pathlib import Path
from unittest.mock import patch

import matplotlib

matplotlib.use("Agg")

import ipywidgets
import matplotlib.pyplot as plt
import pytest
from matplotlib.figure import Figure

from pglib import MAX_SLIDER_FRAMES, Slider, figure_png, new_figure, slider

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def line_plot(gamma: float) -> Figure:
    fig, ax = new_figure(width=3, height=2)
    ax.plot([0, 1, 2], [1, gamma, gamma**2])
    ax.set_xlabel("t")
    ax.set_ylabel("γ^t")
    return fig


def test_one_bundle_holds_the_live_widget_and_the_static_scrubber() -> None:
    s = slider(line_plot, gamma=[0.5, 0.9], description="discount γ")
    bundle = s._repr_mimebundle_()
    assert set(bundle) == {
        "text/plain",
        "text/html",
        WIDGET_VIEW,
    }
    assert bundle[WIDGET_VIEW]["model_id"]
    assert bundle["text/plain"] == "Slider(gamma: 0.5, 0.9)"
    page = bundle["text/html"]
    assert page.count('type="range"') == 1
    assert 'aria-label="discount γ (gamma) slider"' in page
    assert 'min="0" max="1"' in page
    assert "<output" in page and "<script>" in page
    # Every frame is in the page, and the first one is shown before any script runs.
    for frame in s.frames:
        assert base64.b64encode(frame).decode() in page
    assert re.search(r'<img id="pglib-slider-[0-9a-f]{12}-img" src="data:image/png;base64,', page)


def _view_ipywidgets_displays(widget: ipywidgets.Widget) -> dict[str, object]:
    """The widget-view reference that ipywidgets itself shows for ``widget``, either major."""
    if hasattr(widget, "_repr_mimebundle_"):  # ipywidgets 8
        return widget._repr_mimebundle_()[WIDGET_VIEW]
    shown = []  # ipywidgets 7 has only _ipython_display_, which calls IPython's display
    with patch.object(ipywidgets.widgets.widget, "display", lambda data, raw: shown.append(data)):
        widget._ipython_display_()
    (data,) = shown
    return data[WIDGET_VIEW]


def test_the_bundle_shows_the_same_live_view_as_ipywidgets() -> None:
    s = slider(line_plot, gamma=[0.5, 0.9])
    view = s._repr_mimebundle_()[WIDGET_VIEW]
    assert view == _view_ipywidgets_displays(s.widget())
    assert view["model_id"] == s.widget().model_id


def test_the_live_figure_keeps_its_natural_width() -> None:
    # A stretching column (the flexbox default) widened the figure to the whole output area.
    box = slider(line_plot, gamma=[0.5, 0.9]).widget()
    assert box.layout.align_items == "flex-start"
    assert all(child.layout.width in (None, "32em") for child in box.children)


def test_the_scrubber_loads_nothing_from_outside() -> None:
    page = slider(line_plot, gamma=[0.5, 0.9]).to_html()
    assert "http" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(//|[a-z]+:(?!image/png;base64))""", page)
    assert 'src="data:image/png;base64,' in page


def test_ids_are_stable_for_identical_content_and_change_with_it() -> None:
    first = slider(line_plot, gamma=[0.5, 0.9])
    again = slider(line_plot, gamma=[0.5, 0.9])
    other = slider(line_plot, gamma=[0.5, 0.8])
    assert first.element_id == again.element_id
    assert first.to_html() == again.to_html()
    assert other.element_id != first.element_id
    assert re.fullmatch(r"pglib-slider-[0-9a-f]{12}", first.element_id)


def test_png_bytes_are_reproducible_and_carry_no_version() -> None:
    first, second = line_plot(0.9), line_plot(0.9)
    try:
        png = figure_png(first)
        assert png == figure_png(second)  # two fresh, identical figures: identical bytes
        assert png.startswith(b"\x89PNG") and b"matplotlib" not in png.lower()
    finally:
        plt.close(first)
        plt.close(second)


def test_frames_are_rendered_once_each_and_figures_closed() -> None:
    calls = []

    def plot(lr: float) -> Figure:
        calls.append(lr)
        return line_plot(lr)

    before = len(plt.get_fignums())
    s = slider(plot, lr=[0.1, 0.01, 0.001])
    assert calls == [0.1, 0.01, 0.001]
    assert len(s.frames) == 3 and len(plt.get_fignums()) == before
    assert s.labels == ["0.1", "0.01", "0.001"]


def test_moving_the_live_slider_reruns_the_figure_function() -> None:
    calls = []

    def plot(gamma: float) -> Figure:
        calls.append(gamma)
        return line_plot(gamma)

    s = slider(plot, gamma=[0.5, 0.9])
    control, image = s.widget().children
    assert image.value == s.frames[0]
    control.value = 1
    assert calls == [0.5, 0.9, 0.9]
    assert image.value == s.frames[1]


def test_sanitize_blanks_only_frames_ids_and_tqdm_timings() -> None:
    config = configparser.ConfigParser()
    config.read(SANITIZE, encoding="utf-8")
    rules = [
        (config[section]["regex"], config[section]["replace"]) for section in config.sections()
    ]

    def sanitize(text: str) -> str:
        for pattern, replacement in rules:
            text = re.sub(pattern, replacement, text)
        return text

    one = slider(line_plot, gamma=[0.25, 0.9]).to_html()
    two = slider(line_plot, gamma=[0.35, 0.9]).to_html()
    assert one != two
    # Same structure, different pictures: equal once sanitized, except for the value labels.
    assert sanitize(one).replace("0.25", "X") == sanitize(two).replace("0.35", "X")
    assert "pglib-slider-ID" in sanitize(one) and "FRAME" in sanitize(one)
    bar = "train: 100%|██████████| 50/50 [00:01<00:00, 5.21it/s]"
    assert sanitize(bar) == "train: 100%|██████████| 50/50 [TIME]"
    for stable in ("return 0.729", "V(s1) = 5.905", "[1.75 1.5  1.  ]", "step 12 of 50"):
        assert sanitize(stable) == stable


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match=r"slider takes exactly one parameter, .* got 2"):
        slider(line_plot, gamma=[0.5], lam=[0.9])
    with pytest.raises(ValueError, match=r"slider takes exactly one parameter, .* got 0"):
        slider(line_plot)
    with pytest.raises(ValueError, match="gamma must hold at least one value, got an empty list"):
        slider(line_plot, gamma=[])
    with pytest.raises(ValueError, match="gamma values must be finite, got nan"):
        slider(line_plot, gamma=[0.5, float("nan")])
    with pytest.raises(ValueError, match="gamma values must be finite, got inf"):
        slider(line_plot, gamma=[float("inf")])
    too_many = [i / 100 for i in range(MAX_SLIDER_FRAMES + 1)]
    with pytest.raises(ValueError, match=f"gamma may hold at most {MAX_SLIDER_FRAMES} values"):
        slider(line_plot, gamma=too_many)
    with pytest.raises(ValueError, match=r"gamma must be a list of values, got float: 0\.5"):
        slider(line_plot, gamma=0.5)
    with pytest.raises(ValueError, match="gamma values must be numbers or strings, got None"):
        slider(line_plot, gamma=[None])
    with pytest.raises(
        ValueError, match=r"gamma values must be distinct, got labels \['0.5', '0.5'\]"
    ):
        slider(line_plot, gamma=[0.5, 0.5])
    with pytest.raises(ValueError, match="figure_fn must be callable, got int"):
        Slider(3, "gamma", [0.5])
    with pytest.raises(ValueError, match="figure_fn must return a matplotlib Figure, got NoneType"):
        slider(lambda gamma: None, gamma=[0.5])
