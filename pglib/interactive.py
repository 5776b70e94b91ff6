"""Sliders that work both under a kernel and in the static HTML book.

``slider(plot, gamma=[0.5, 0.9, 0.99])`` calls ``plot(gamma=v)`` once for each value and
returns an object that a notebook displays as one output with two renderings:

- a live ipywidgets view (a selection slider and an ``Image`` widget updated in place), which
  JupyterLab, Jupyter Notebook and Colab show, and which reruns ``plot`` when it moves;
- a self-contained HTML scrubber of the precomputed frames (an ``<input type=range>``, PNG
  data URIs and a few lines of inline JavaScript, with no CDN and no kernel), which the built
  book shows.

The scrubber's element ids come from a hash of its content, so rebuilding the book gives
byte-identical pages.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["MAX_SLIDER_FRAMES", "Slider", "slider", "figure_png"]

#: The most frames one slider may precompute (each is a PNG of roughly 25 KiB in the page).
MAX_SLIDER_FRAMES = 30


def figure_png(fig: Figure) -> bytes:
    """The PNG bytes of ``fig``, reproducible: no software version or date in the metadata."""
    if not isinstance(fig, Figure):
        raise ValueError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _js(value: object) -> str:
    """``value`` as a JavaScript literal that is safe inside an HTML ``<script>`` element."""
    return json.dumps(value).replace("</", "<\\/")


def _label(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_values(name: str, values: Sequence[object]) -> list[object]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ValueError(
            f"{name} must be a list of values, got {type(values).__name__}: {values!r}"
        )
    values = list(values)
    if not values:
        raise ValueError(f"{name} must hold at least one value, got an empty list")
    if len(values) > MAX_SLIDER_FRAMES:
        raise ValueError(
            f"{name} may hold at most {MAX_SLIDER_FRAMES} values (one precomputed frame each), "
            f"got {len(values)}"
        )
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
            raise ValueError(f"{name} values must be numbers or strings, got {value!r}")
        if isinstance(value, numbers.Real) and not math.isfinite(value):
            raise ValueError(f"{name} values must be finite, got {value!r}")
    labels = [_label(value) for value in values]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{name} values must be distinct, got labels {labels}")
    return values


class Slider:
    """A figure with one parameter, shown for each of a list of values. See :func:`slider`.

    Displays as one MIME bundle: ``application/vnd.jupyter.widget-view+json`` (live),
    ``text/html`` (the static scrubber) and ``text/plain``. Introduced in Chapter 2.
    """

    def __init__(
        self,
        figure_fn: Callable[..., Figure],
        name: str,
        values: Sequence[object],
        description: str | None = None,
    ) -> None:
        if not callable(figure_fn):
            raise ValueError(f"figure_fn must be callable, got {type(figure_fn).__name__}")
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"name must be a parameter name such as 'gamma', got {name!r}")
        if description is not None and (not isinstance(description, str) or not description):
            raise ValueError(f"description must be a non-empty string or None, got {description!r}")
        self.figure_fn = figure_fn
        self.name = name
        self.values = _check_values(name, values)
        self.labels = [_label(value) for value in self.values]
        self.description = description or name
        self.frames = [self.render(value) for value in self.values]
        content = json.dumps([name, self.description, self.labels]).encode()
        digest = hashlib.sha256(content + b"".join(self.frames)).hexdigest()
        self.element_id = f"pglib-slider-{digest[:12]}"
        self._widget: widgets.Widget | None = None

    def render(self, value: object) -> bytes:
        """Call ``figure_fn(name=value)``, return the figure as PNG bytes and close it."""
        fig = self.figure_fn(**{self.name: value})
        if not isinstance(fig, Figure):
            raise ValueError(f"figure_fn must return a matplotlib Figure, got {type(fig).__name__}")
        try:
            return figure_png(fig)
        finally:
            plt.close(fig)

    @property
    def aria_label(self) -> str:
        """What a screen reader announces for the slider: the parameter's name."""
        if self.description == self.name:
            return f"{self.name} slider"
        return f"{self.description} ({self.name}) slider"

    def to_html(self) -> str:
        """The self-contained scrubber: range input, value label, frames, inline script."""
        uid = self.element_id
        urls = ["data:image/png;base64," + base64.b64encode(f).decode("ascii") for f in self.frames]
        alt = f"Figure for {self.name} = {self.labels[0]}"
        script = (
            "(function () {"
            f"var frames = {_js(urls)};"
            f"var labels = {_js(self.labels)};"
            f"var input = document.getElementById({_js(uid + '-input')});"
            f"var img = document.getElementById({_js(uid + '-img')});"
            f"var out = document.getElementById({_js(uid + '-value')});"
            "function show() {"
            "var i = Number(input.value);"
            "img.src = frames[i];"
            f"img.alt = {_js('Figure for ' + self.name + ' = ')} + labels[i];"
            "out.textContent = labels[i];"
            "input.setAttribute('aria-valuetext', labels[i]);"
            "}"
            "input.addEventListener('input', show);"
            "input.addEventListener('change', show);"
            "})();"
        )
        return (
            f'<figure class="pglib-slider" id="{uid}" style="margin: 0.5em 0;">'
            f'<img id="{uid}-img" src="{urls[0]}" alt="{html.escape(alt)}" '
            'style="max-width: 100%; height: auto;">'
            '<figcaption style="display: flex; align-items: center; gap: 0.75em;">'
            f'<label for="{uid}-input">{html.escape(self.description)}</label>'
            f'<input type="range" id="{uid}-input" min="0" max="{len(urls) - 1}" step="1" '
            f'value="0" aria-label="{html.escape(self.aria_label)}" '
            f'aria-valuetext="{html.escape(self.labels[0])}" style="flex: 1; max-width: 24em;">'
            f'<output id="{uid}-value" for="{uid}-input">{html.escape(self.labels[0])}</output>'
            "</figcaption>"
            f"<script>{script}</script>"
            "</figure>"
        )

    def widget(self) -> widgets.Widget:
        """The live view: a selection slider that reruns ``figure_fn`` into an Image widget."""
        if self._widget is None:
            image = widgets.Image(value=self.frames[0], format="png")
            control = widgets.SelectionSlider(
                options=list(zip(self.labels, range(len(self.values)), strict=True)),
                value=0,
                description=self.description,
                continuous_update=False,
                style={"description_width": "initial"},
                layout=widgets.Layout(width="32em"),
            )

            def redraw(change: dict[str, Any]) -> None:
                image.value = self.render(self.values[change["new"]])

            control.observe(redraw, names="value")
            # A column flexbox stretches its children to the output's width by default, which
            # blew a 610-px figure up to 964 px; "flex-start" keeps the figure's natural size
            # (the Image widget's own max-width still shrinks it on a narrow screen).
            self._widget = widgets.VBox(
                [control, image], layout=widgets.Layout(align_items="flex-start")
            )
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # ipywidgets 8 gives widgets a _repr_mimebundle_, ipywidgets 7 (Colab's) does not;
        # get_view_spec() is the view reference that both majors display.
        return {
            "application/vnd.jupyter.widget-view+json": self.widget().get_view_spec(),
            "text/html": self.to_html(),
            "text/plain": repr(self),
        }

    def __repr__(self) -> str:
        return f"Slider({self.name}: {', '.join(self.labels)})"


def slider(
    figure_fn: Callable[..., Figure], *, description: str | None = None, **param: Sequence[object]
) -> Slider:
    """A figure that moves with one parameter, in Jupyter and in the static book alike.

    ``slider(plot_returns, gamma=[0.5, 0.9, 0.99], description="discount γ")`` calls
    ``plot_returns(gamma=v)`` (which must return a matplotlib ``Figure``) for each value, at
    most :data:`MAX_SLIDER_FRAMES` of them, finite numbers or strings, all distinct. End a
    cell with the result to display it. Introduced in Chapter 2.
    """
    if len(param) != 1:
        raise ValueError(
            "slider takes exactly one parameter, such as gamma=[0.5, 0.9], "
            f"got {len(param)}: {sorted(param)}"
        )
    ((name, values),) = param.items()
    return Slider(figure_fn, name, values, description)
