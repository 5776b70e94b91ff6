"""What the chapters need from the book: computed values in the prose, and checked claims.

**Glue.** A training run gives other numbers on another CPU, so the prose must never repeat
them by hand. ``glue("steps", f"{n:,}")`` stores the text in the cell's output, and the chapter's
markdown writes ``{glue:text}`steps``` where the text belongs; the book's build (myst-nb)
pastes it there. The output has the format of myst-nb's own ``glue(..., display=False)``, so
a chapter needs no myst-nb import and runs in Colab as it is. Under a kernel the stored value
is invisible; the cell that computes it also prints it.

**Claims.** A claim about training ("every seed reaches 475") is asserted in a hidden cell
with :func:`check_claim`, so that a machine on which it fails says what the text promised and
what was measured there.
"""

from __future__ import annotations

import re

import numpy as np
from IPython.display import display

__all__ = ["glue", "check_claim"]

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


def check_claim(claim: str, holds: bool, measured: str) -> None:
    """Fail with ``claim`` and ``measured`` unless ``holds``: a checked sentence of the prose.

    ``claim`` states what the text promises, with its margin ("α = 0.1 ends at least 50 below
    α = 0.02, median of 5 seeds"); ``measured`` gives the numbers this run produced. Raises
    ``AssertionError`` (a failed check, not bad input). Introduced in Chapter 8.
    """
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"claim must be a non-empty sentence, got {claim!r}")
    if not isinstance(measured, str) or not measured.strip():
        raise ValueError(f"measured must be a non-empty string, got {measured!r}")
    if not isinstance(holds, (bool, np.bool_)):
        raise ValueError(f"holds must be a bool (the claim's verdict), got {holds!r}")
    if not holds:
        raise AssertionError(f"The text claims: {claim}. Measured here: {measured}.")
