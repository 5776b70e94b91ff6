"""The package surface: version, re-exports and docstrings."""

import inspect
import re

import pglib


def test_version_is_a_release_string() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", pglib.__version__)


def test_every_public_name_is_exported_once() -> None:
    names = [name for name in pglib.__all__ if name != "__version__"]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    assert duplicates == [], f"public names defined in more than one module: {duplicates}"
    missing = [name for name in names if not hasattr(pglib, name)]
    assert missing == [], f"names in __all__ that pglib does not define: {missing}"


def test_every_public_name_has_a_docstring() -> None:
    undocumented = []
    for name in pglib.__all__:
        obj = getattr(pglib, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        if not (obj.__doc__ or "").strip():
            undocumented.append(name)
        if inspect.isclass(obj):
            for method_name, method in vars(obj).items():
                if method_name.startswith("_") or not inspect.isfunction(method):
                    continue
                if not (method.__doc__ or "").strip():
                    undocumented.append(f"{name}.{method_name}")
    assert undocumented == [], f"public names without a docstring: {undocumented}"
