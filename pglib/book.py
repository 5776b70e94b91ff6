"""Quote a computed value in a chapter's prose, without typing it.

A training run gives other numbers on another CPU, so the prose must never repeat them by
hand. ``glue("steps", f"{n:,}")`` stores the text in the cell's output, and the chapter's
markdown writes ``{glue:text}`steps``` where the text belongs; the book's build (myst-nb)
pastes it there. The output has the format of myst-nb's own ``glue(..., display=False)``, so
a chapter needs no myst-nb import and runs in Colab as it is. Under a kernel the stored value
is invisible; the cell that computes it also prints it.
"""

from __future__ import annotations

import re

from IPython.display import display

__all__ = ["glue"]

#: The MIME prefix under which myst-nb looks for glued values that are not displayed.
GLUE_MIME_PREFIX = "application/papermill.record/"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def glue(name: str, text: str) -> None:
    """Store ``text`` under ``name`` for ``{glue:text}`name``` in the chapter's markdown.

    ``name`` is an identifier (letters, digits and underscores), ``text`` the exact words to
    paste, already formatted (``f"{steps:,}"``). Introduced in Chapter 8.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be an identifier such as 'median_steps', got {name!r}")
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"text must be a non-empty string, got {text!r}")
    # myst-nb reads the value back with ast.literal_eval, so store the string's repr:
    # '46,340' unquoted would come back as the tuple (46, 340).
    display(
        {GLUE_MIME_PREFIX + "text/plain": repr(text)},
        raw=True,
        metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_MIME_PREFIX}},
    )
