"""Local Sphinx fixes for Jupyter Book 1 (Sphinx 7.4).

Sphinx 7.x registers a script added after builder initialisation twice, so every page
declares ``THEBE_JS_URL`` twice and the browser logs a SyntaxError. The bug was fixed in
Sphinx 8.2 (sphinx-doc/sphinx#13402); this extension removes the duplicate entries until
Jupyter Book can move to it.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx


def _drop_duplicate_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, str]] = set()
    unique = []
    for script in scripts:
        # An inline script is registered once with filename None and once with "".
        key = (str(script.filename or ""), repr(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    # Run last, after the extensions that add their scripts during this same event.
    app.connect("html-page-context", _drop_duplicate_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
