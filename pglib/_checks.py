"""Argument checks shared by every pglib module: one place, one wording.

Each check either returns the value in a normal form or raises a ``ValueError`` whose
sentence names the argument, says what was expected and shows what was received, such as
``gamma must be a real number in [0, 1], got 1.5``. Nothing is clipped or coerced behind
the caller's back: a bool is not a number, an int array is not a flag array, and a complex
number never loses its imaginary part.

Private to pglib: the public functions call these before they compute anything.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)
Function = TypeVar("Function", bound=Callable[..., Any])

#: Absolute tolerance on the sum of a probability vector or of each row of a stochastic matrix.
PROBABILITY_ATOL = 1e-8

#: Floating dtypes too narrow for pglib's sums: float16 overflows at 65,504.
_NARROW_TORCH_FLOATS = (torch.float16, torch.bfloat16)


def describe(value: object) -> str:
    """A short, bounded description of a received value for an error message."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return f"{type(value).__name__} of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def _is_bool(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, torch.Tensor) and value.dtype == torch.bool


def real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a Python float, after checking it is a finite real number in range.

    Accepts every real scalar type: Python ``int`` and ``float``, NumPy integer and floating
    scalars (``np.float32(0.5)``), and 0-d real torch tensors (``torch.tensor(0.5)``).
    Refuses bools, complex numbers, strings, ``None``, arrays with more than one element,
    NaN and ±inf.
    """
    if low == 0 and high is None:  # the common cases read better in words
        kind, where = ("positive real number" if low_open else "non-negative real number"), ""
    else:
        kind, where = "real number", _interval(low, high, low_open, high_open)
    expected = f"{name} must be a {kind}{' ' + where if where else ''}"
    scalar: object = value
    if isinstance(value, torch.Tensor):
        if value.ndim != 0 or value.dtype.is_complex or value.dtype == torch.bool:
            raise ValueError(f"{expected}, got {describe(value)}")
        scalar = value.item()
    if _is_bool(scalar) or not isinstance(scalar, numbers.Real):
        raise ValueError(f"{expected}, got {describe(value)}")
    number = float(scalar)
    if not math.isfinite(number):
        finite = expected.replace(f" must be a {kind}", f" must be a finite {kind}")
        raise ValueError(f"{finite}, got {describe(value)}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise ValueError(f"{expected}, got {describe(value)}")
    return number


def unit_interval(name: str, value: object) -> float:
    """A real number in [0, 1], such as a discount factor or a probability."""
    return real(name, value, low=0.0, high=1.0)


def integer(
    name: str,
    value: object,
    *,
    low: int | None = None,
    high: int | None = None,
    guard: bool = False,
) -> int:
    """``value`` as a Python int, after checking it is an integer (not a bool) in range.

    Accepts Python and NumPy integers and 0-d integer torch tensors. With ``guard``, ``high``
    is a size guard: a larger count would take too long or too much memory, and the message
    says so.
    """
    if low is not None and high is not None and not guard:
        expected = f"{name} must be an integer in [{low}, {high}]"
    elif low in (0, 1):
        expected = f"{name} must be a {('non-negative', 'positive')[low]} integer"
    elif low is not None:
        expected = f"{name} must be an integer >= {low}"
    else:
        expected = f"{name} must be an integer"
    scalar = value
    if isinstance(value, torch.Tensor) and value.ndim == 0 and not value.dtype.is_floating_point:
        scalar = value.item() if value.dtype != torch.bool else value
    if _is_bool(scalar) or not isinstance(scalar, (int, np.integer)):
        raise ValueError(f"{expected}, got {describe(value)}")
    number = int(scalar)
    if (low is not None and number < low) or (high is not None and number > high and not guard):
        raise ValueError(f"{expected}, got {number}")
    if guard and high is not None and number > high:
        raise ValueError(
            f"{name} must be at most {high:,} (a size guard: more would take too long or too "
            f"much memory), got {number:,}"
        )
    return number


def positive_int(name: str, value: object, *, limit: int | None = None) -> int:
    """An integer >= 1 (bools excluded), at most the size guard ``limit`` when given."""
    return integer(name, value, low=1, high=limit, guard=limit is not None)


def boolean(name: str, value: object) -> bool:
    """A Python or NumPy bool, as a Python bool. ``"no"``, 0 and 1 are not booleans."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {describe(value)}")
    return bool(value)


def choice(name: str, value: object, options: Sequence[Any]) -> Any:
    """One of ``options`` (compared with ==, after checking the type matches)."""
    if not any(type(value) is type(option) and value == option for option in options):
        raise ValueError(f"{name} must be one of {tuple(options)}, got {describe(value)}")
    return value


def instance(name: str, value: object, types: type | tuple[type, ...], what: str) -> None:
    """``value`` is an instance of ``types``; ``what`` names the expectation in words."""
    if not isinstance(value, types):
        raise ValueError(f"{name} must be {what}, got {type(value).__name__}")


def _dtype_problem(x: np.ndarray | torch.Tensor, integers: bool) -> str | None:
    """Why the dtype of ``x`` is not one of real numbers, or None when it is."""
    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bool:
            return "bool is not a number type"
        if x.dtype.is_complex:
            return "complex numbers have no order and would lose their imaginary part"
        if x.dtype in _NARROW_TORCH_FLOATS:
            return f"{x.dtype} is too narrow (it overflows to inf); use float32 or float64"
        if not x.dtype.is_floating_point and not integers:
            return "integers are not accepted here; use float32 or float64"
        return None
    kind = x.dtype.kind
    if kind == "b":
        return "bool is not a number type"
    if kind == "c":
        return "complex numbers have no order and would lose their imaginary part"
    if kind == "f" and x.dtype.itemsize < 4:
        return f"{x.dtype} is too narrow (it overflows to inf); use float32 or float64"
    if kind in "iu":
        return None if integers else "integers are not accepted here; use float32 or float64"
    if kind != "f":
        return f"dtype {x.dtype} does not hold real numbers"
    return None


def is_finite(x: np.ndarray | torch.Tensor) -> bool:
    """Whether every entry of a real array or tensor is finite.

    Under a ``torch.func`` transform (``vmap``, ``grad``) a tensor has no concrete values to
    test, so the check passes there; the transformed function's inputs are checked outside.
    """
    if isinstance(x, torch.Tensor):
        if torch._C._are_functorch_transforms_active():
            return True
        return bool(torch.isfinite(x).all())
    return bool(np.isfinite(x).all())


def _shape_text(shape: Sequence[int | str | None]) -> str:
    if all(isinstance(size, int) for size in shape):
        return str(tuple(shape))
    return "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"


def real_array(
    name: str,
    x: object,
    *,
    shape: Sequence[int | str | None] | None = None,
    ndim: int | tuple[int, ...] | None = None,
    nonempty: bool = False,
    integers: bool = True,
    sequences: bool = False,
) -> Any:
    """A NumPy array or torch tensor of finite real numbers, returned unchanged.

    - ``shape``: the expected shape; ``None`` or a string (a symbol such as ``"T"``) at a
      position accepts any length there.
    - ``ndim``: the allowed numbers of dimensions (used when ``shape`` is not given).
    - ``nonempty``: every dimension must have length >= 1.
    - ``integers``: integer dtypes are accepted (floats always are; float16, bool, complex
      and non-numeric dtypes never).
    - ``sequences``: a list or tuple of numbers is accepted too, as ``np.asarray(x)``.
    """
    if sequences and isinstance(x, (list, tuple)):
        try:
            x = np.asarray(x)
        except ValueError as error:  # ragged nested lists
            raise ValueError(
                f"{name} must be a rectangular array of numbers, got {error}"
            ) from None
    if not isinstance(x, (np.ndarray, torch.Tensor)):
        raise ValueError(
            f"{name} must be a NumPy array or a torch tensor of real numbers, "
            f"got {type(x).__name__}"
        )
    problem = _dtype_problem(x, integers)
    if problem is not None:
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype} ({problem})")
    got = tuple(x.shape)
    if shape is not None:
        fits = len(got) == len(shape) and all(
            not isinstance(want, int) or want == have
            for want, have in zip(shape, got, strict=False)
        )
        if not fits:
            raise ValueError(f"{name} must have shape {_shape_text(shape)}, got shape {got}")
    elif ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if len(got) not in allowed:
            raise ValueError(
                f"{name} must have {' or '.join(str(d) for d in allowed)} dimension(s), "
                f"got shape {got}"
            )
    if nonempty and any(size == 0 for size in got):
        raise ValueError(f"{name} must not be empty, got shape {got}")
    if not is_finite(x):
        raise ValueError(f"{name} must contain only finite numbers, got NaN or inf")
    return x


def float_tensor(
    name: str, x: object, *, shape: Sequence[int | str | None] | None = None
) -> torch.Tensor:
    """A non-empty, finite, floating-point torch tensor (of ``shape``, as in
    :func:`real_array`, when given): the input that carries a gradient."""
    real_array(name, x, shape=shape, nonempty=True)
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point torch tensor, got {describe(x)}")
    return x


def detached_like(name: str, x: object, like_name: str, like: torch.Tensor) -> torch.Tensor:
    """``x`` as a tensor of ``like``'s dtype and device, after checking it is finite, has
    ``like``'s shape and carries no gradient (a loss must not differentiate through it)."""
    real_array(name, x, nonempty=True)
    if tuple(x.shape) != tuple(like.shape):
        raise ValueError(
            f"{name} must have the shape of {like_name}, {tuple(like.shape)}, got {tuple(x.shape)}"
        )
    x = torch.as_tensor(x, dtype=like.dtype, device=like.device)
    if x.requires_grad:
        raise ValueError(
            f"{name} must carry no gradient (compute it under torch.no_grad() or call "
            ".detach()): the loss would differentiate through it"
        )
    return x


def log_probabilities(
    name: str, x: torch.Tensor, where: torch.Tensor | None = None
) -> torch.Tensor:
    """A checked real tensor whose entries (those at the True entries of the bool tensor
    ``where``, when given) are log-probabilities, <= 0. A positive entry is most often a
    negative log-likelihood passed with the wrong sign."""
    values = x.detach() if where is None else x.detach()[where]
    if values.numel() and bool((values > 0).any()):
        raise ValueError(
            f"{name} must hold log-probabilities (every entry <= 0; a negative "
            f"log-likelihood has the opposite sign), got a maximum of {float(values.max()):.4g}"
        )
    return x


def to_float64(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """A checked array or tensor as a new float64 NumPy array (a copy: detached, on the CPU)."""
    if isinstance(x, torch.Tensor):
        return np.array(x.detach().cpu().to(torch.float64).numpy(), copy=True)
    return np.array(x, dtype=np.float64, copy=True)


def probability_vector(name: str, p: object, *, size: int | None = None) -> np.ndarray:
    """A probability vector [K] as float64: finite, non-negative, summing to 1 (± 1e-8)."""
    p = to_float64(real_array(name, p, shape=(size,), nonempty=True, sequences=True))
    total = float(p.sum())
    if (p < 0).any() or not math.isclose(total, 1.0, abs_tol=PROBABILITY_ATOL):
        raise ValueError(
            f"{name} must be a probability distribution (non-negative, sum 1), "
            f"got sum {total:.6g} and minimum {p.min():.3g}"
        )
    return p


def row_stochastic(
    name: str, matrix: object, *, shape: Sequence[int | None] | None = None, rows: str = ""
) -> np.ndarray:
    """A matrix (or stack) whose last axis is a probability vector, checked in float64.

    Returns the float64 NumPy copy. ``rows`` names a row in the message, e.g. ``"pi[s, :]"``.
    """
    checked = real_array(name, matrix, shape=shape, nonempty=True, sequences=True)
    values = to_float64(checked)
    if values.ndim < 2:
        raise ValueError(f"{name} must have at least 2 dimensions, got shape {values.shape}")
    row_sums = values.sum(axis=-1)
    off_by = float(np.abs(row_sums - 1.0).max())
    expected = f"every row {rows or name} must be a probability distribution (non-negative, sum 1)"
    if (values < 0).any():
        raise ValueError(f"{expected}, got a negative entry {values.min():.3g}")
    # np.allclose's default relative tolerance (1e-5) also lets float32 rows through.
    if not np.allclose(row_sums, 1.0, atol=PROBABILITY_ATOL):
        # Chapter 2 prints this sentence as it is.
        raise ValueError(f"{expected}, got a row sum off by {off_by:.3g} or a negative entry")
    return values


def bool_flags(name: str, flags: object, shape: tuple[int, ...]) -> np.ndarray | torch.Tensor:
    """A flag array of bool dtype only (an int, float or string array is refused), of ``shape``.

    A list or tuple of Python bools is accepted as ``np.asarray(flags)``.
    """
    if isinstance(flags, (list, tuple)):
        flags = np.asarray(flags)
    if isinstance(flags, torch.Tensor):
        is_bool = flags.dtype == torch.bool
    elif isinstance(flags, np.ndarray):
        is_bool = flags.dtype == np.bool_
    else:
        raise ValueError(
            f"{name} must be a bool NumPy array or torch tensor, got {type(flags).__name__}"
        )
    if not is_bool:
        raise ValueError(
            f"{name} must have dtype bool (flags are True or False, never 0/1, NaN or "
            f"strings), got dtype {flags.dtype}"
        )
    if tuple(flags.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got shape {tuple(flags.shape)}")
    return flags


def long_tensor(name: str, x: object, *, shape: Sequence[int | str | None]) -> torch.Tensor:
    """A torch.long tensor of ``shape`` (as in :func:`real_array`: a symbol accepts any length),
    such as a batch of token ids; returned unchanged."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.long or x.ndim != len(shape):
        raise ValueError(
            f"{name} must be a torch.long tensor {_shape_text(shape)}, got {describe(x)}"
        )
    return real_array(name, x, shape=shape)


def index_array(name: str, x: object, *, high: int) -> np.ndarray:
    """An integer array (not bool) whose entries lie in [0, high)."""
    x = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x)
    if x.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer indices, got dtype {x.dtype}")
    if x.size and (x.min() < 0 or x.max() >= high):
        raise ValueError(f"{name} must lie in [0, {high}), got values {x.min()}..{x.max()}")
    return x


def checked_by(check: Callable[..., None]) -> Callable[[Function], Function]:
    """Run ``check`` on a function's bound arguments (defaults filled in) before the function.

    For the few functions whose source a chapter prints with ``inspect.getsource``: applied
    after the definition (``f = checked_by(_check_f)(f)``, not as a ``@`` decorator), it leaves
    the printed source as the chapter shows it, because ``getsource`` follows ``__wrapped__``.
    """

    def wrap(function: Function) -> Function:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def with_checks(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)  # a wrong call is a TypeError, as usual
            bound.apply_defaults()
            check(**bound.arguments)
            return function(*args, **kwargs)

        return with_checks  # type: ignore[return-value]

    return wrap
