"""Discounted returns, reward-to-go and GAE, with episode ends handled.

Every function takes rewards with the time axis first: ``[T]`` for one stream or ``[T, N]``
for ``N`` environments stepped side by side. NumPy arrays and torch tensors both work, and
the result has the type of ``rewards`` (a torch result keeps autograd).

Episode ends follow Gymnasium: ``terminated[t]`` means the episode ended after step ``t``
because the MDP says so (the value of what follows is zero); ``truncated[t]`` means it was
cut after step ``t`` for an outside reason (a time limit, the end of a rollout), so the
future had value that was simply not observed.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

from pglib import _checks

__all__ = ["discounted_return", "reward_to_go", "gae"]

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _time_major_floats(rewards: Array) -> Array:
    """``rewards`` checked to be ``[T]`` or ``[T, N]``, as floating point of the same type."""
    rewards = _checks.real_array("rewards", rewards, ndim=(1, 2))
    if rewards.shape[0] == 0:
        raise ValueError(
            f"rewards must have shape [T] or [T, N] with T >= 1, got shape {tuple(rewards.shape)}"
        )
    if isinstance(rewards, torch.Tensor):
        rewards = rewards if rewards.is_floating_point() else rewards.to(torch.get_default_dtype())
    elif not np.issubdtype(rewards.dtype, np.floating):
        rewards = rewards.astype(np.float64)
    return rewards


def _like(name: str, x: object, rewards: Array) -> Array:
    """Values ``x`` (finite reals of the shape of ``rewards``) in the type, dtype and device
    of ``rewards``."""
    _check_shape(name, x, rewards)
    x = _checks.real_array(name, x, shape=tuple(rewards.shape), sequences=True)
    if isinstance(rewards, torch.Tensor):
        return torch.as_tensor(x, device=rewards.device).to(rewards.dtype)
    return np.asarray(x, dtype=rewards.dtype)


def _flags(name: str, flags: object, rewards: Array) -> Array:
    """Bool flags of the shape of ``rewards``, in its type (and device)."""
    _check_shape(name, flags, rewards)
    flags = _checks.bool_flags(name, flags, tuple(rewards.shape))
    if isinstance(rewards, torch.Tensor):
        return torch.as_tensor(flags, device=rewards.device)
    return np.asarray(flags.cpu() if isinstance(flags, torch.Tensor) else flags)


def _check_shape(name: str, x: object, rewards: Array) -> None:
    if isinstance(x, (np.ndarray, torch.Tensor)) and tuple(x.shape) != tuple(rewards.shape):
        raise ValueError(
            f"{name} must have the shape of rewards {tuple(rewards.shape)}, got {tuple(x.shape)}"
        )


def _episode_flags(
    rewards: Array, terminated: object | None, truncated: object | None
) -> tuple[Array, Array]:
    """Boolean ``terminated`` and ``truncated`` arrays of the type of ``rewards``.

    With neither given, the whole sequence is one episode that terminates after its last step.
    """
    zeros = np.zeros(tuple(rewards.shape), dtype=bool)
    if terminated is None and truncated is None:
        term = _flags("terminated", zeros.copy(), rewards)
        term[-1] = True
        return term, _flags("truncated", zeros, rewards)
    term = _flags("terminated", zeros if terminated is None else terminated, rewards)
    trunc = _flags("truncated", zeros if truncated is None else truncated, rewards)
    last_done = term[-1] | trunc[-1]
    if not bool(last_done.all()):
        raise ValueError(
            "the last step of every column must be flagged terminated or truncated "
            "(a rollout cut mid-episode is a truncation), got an unflagged last step"
        )
    return term, trunc


def _stack(rows: list[Array], like: Array) -> Array:
    return torch.stack(rows) if isinstance(like, torch.Tensor) else np.stack(rows)


def discounted_return(rewards: Array, gamma: float) -> float:
    """The discounted return of one reward sequence: ``[T] -> float``.

    G = Σ_{t=0}^{T-1} γ^t r_t. Introduced in Chapter 2.
    """
    gamma = _checks.unit_interval("gamma", gamma)
    rewards = _time_major_floats(rewards)
    if rewards.ndim != 1:
        raise ValueError(f"rewards must have shape [T], got shape {tuple(rewards.shape)}")
    return float(reward_to_go(rewards, gamma)[0])


def reward_to_go(
    rewards: Array,
    gamma: float,
    *,
    terminated: object | None = None,
    truncated: object | None = None,
    bootstrap: object | None = None,
) -> Array:
    """The discounted return from each step on: ``[T] -> [T]`` or ``[T, N] -> [T, N]``.

    G_t = r_t + γ G_{t+1}, restarted wherever an episode ends. ``terminated[t]`` or
    ``truncated[t]`` (booleans, the shape of ``rewards``) mean the episode ended after step
    ``t``. With both left as ``None``, the sequence is one episode that terminates after its
    last step; with flags given, the last step of every column must be flagged.

    At a terminated step G_t = r_t. At a truncated step G_t = r_t + γ·bootstrap[t], where
    ``bootstrap[t]`` estimates V(s_{t+1}); without ``bootstrap`` the return is simply cut
    there, which biases it low (for positive rewards) because the unseen future counts as 0.
    A step flagged both terminated and truncated counts as terminated.

    Example: ``reward_to_go(np.array([1., 1., 1.]), 0.5)`` is ``[1.75, 1.5, 1.0]``.
    Introduced in Chapter 6.
    """
    gamma = _checks.unit_interval("gamma", gamma)
    rewards = _time_major_floats(rewards)
    term, trunc = _episode_flags(rewards, terminated, truncated)
    boot = _like("bootstrap", 0.0 * rewards if bootstrap is None else bootstrap, rewards)
    keep_going = ~(term | trunc)  # G_{t+1} flows back into G_t only inside an episode
    cut_with_value = trunc & ~term  # only here does V(s_{t+1}) stand in for the future
    rows: list[Array] = []
    future = 0.0 * rewards[-1]
    for t in range(rewards.shape[0] - 1, -1, -1):
        following = keep_going[t] * future + cut_with_value[t] * boot[t]
        future = rewards[t] + gamma * following
        rows.append(future)
    return _stack(rows[::-1], rewards)


def gae(
    rewards: Array,
    values: Array,
    next_values: Array,
    gamma: float,
    lam: float,
    *,
    terminated: object | None = None,
    truncated: object | None = None,
) -> Array:
    """Generalised advantage estimates: ``[T] -> [T]`` or ``[T, N] -> [T, N]``.

    δ_t = r_t + γ (1 − terminated_t) V(s_{t+1}) − V(s_t), with ``values[t]`` = V(s_t) and
    ``next_values[t]`` = V(s_{t+1}); then A_t = δ_t + γλ (1 − done_t) A_{t+1} with
    done = terminated | truncated. λ = 1 gives reward-to-go minus values, bootstrapped at
    truncations, for any values (the sum telescopes); λ = 0 gives the TD error δ_t. Flags as in
    :func:`reward_to_go`. Introduced in Chapter 7
    (Schulman et al., 2016).
    """
    gamma = _checks.unit_interval("gamma", gamma)
    lam = _checks.unit_interval("lam", lam)
    rewards = _time_major_floats(rewards)
    term, trunc = _episode_flags(rewards, terminated, truncated)
    v = _like("values", values, rewards)
    v_next = _like("next_values", next_values, rewards)
    # Flags multiply tensors, never Python floats: γ · (a bool tensor) would be float32.
    delta = rewards + gamma * (v_next * ~term) - v
    keep_going = ~(term | trunc)
    rows: list[Array] = []
    following = 0.0 * rewards[-1]
    for t in range(rewards.shape[0] - 1, -1, -1):
        following = delta[t] + gamma * lam * (following * keep_going[t])
        rows.append(following)
    return _stack(rows[::-1], rewards)
