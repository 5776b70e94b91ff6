"""Grid worlds: layouts, the tabular MDP each one defines, and a Gymnasium environment.

Cells are numbered row by row from the top left: the cell in row ``r`` and column ``c`` of
an ``n_rows`` x ``n_cols`` grid is state ``r * n_cols + c``, labelled ``s{state + 1}`` as in
the source notes. Actions are 0 up, 1 right, 2 down, 3 left, 4 stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from pglib import _checks
from pglib.mdp import TabularMDP

__all__ = ["GRID_ACTION_NAMES", "GRID_ACTION_MOVES", "GridWorld", "GridWorldEnv"]

#: Action names, by index.
GRID_ACTION_NAMES: tuple[str, ...] = ("up", "right", "down", "left", "stay")
#: (row change, column change) of each action, by index.
GRID_ACTION_MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1), (0, 0))

_LAYOUT_CHARS = {".": "normal", "S": "start", "F": "forbidden", "T": "target"}
#: A size guard: the MDP of a world holds S x 5 x S float64 transition probabilities
#: (2,500 cells make 250 MB).
MAX_GRID_CELLS = 2_500
#: The fields :meth:`GridWorld.with_rewards` and :meth:`GridWorld.from_text` may set.
_REWARD_FIELDS = ("r_boundary", "r_forbidden", "r_target", "r_other", "slip")


def _check_move(self: GridWorld, state: object, action: object) -> None:
    """The arguments of :meth:`GridWorld.move`."""
    self.check_state(state)
    _checks.integer("action", action, low=0, high=len(GRID_ACTION_MOVES) - 1)


@dataclass(frozen=True)
class GridWorld:
    """A grid-world layout and its reward values.

    - ``n_rows``, ``n_cols``: the grid size; ``target``: the target state;
      ``forbidden``: the forbidden states (they can be entered, at a cost);
      ``start``: the states the agent starts in, uniformly.
    - A move that would leave the grid keeps the agent in place with reward ``r_boundary``.
      Otherwise the agent moves, and the reward depends on the cell it lands in (staying
      included): ``r_target`` for the target, ``r_forbidden`` for a forbidden cell,
      ``r_other`` otherwise.
    - ``slip``: the probability that the action is replaced by one drawn uniformly from all
      five (0 gives deterministic moves).

    Introduced in Chapter 2.
    """

    n_rows: int
    n_cols: int
    target: int
    forbidden: tuple[int, ...] = ()
    start: tuple[int, ...] = (0,)
    r_boundary: float = -1.0
    r_forbidden: float = -1.0
    r_target: float = 1.0
    r_other: float = 0.0
    slip: float = 0.0
    _cells: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("n_rows", "n_cols"):
            _checks.positive_int(name, getattr(self, name))
        n = _checks.positive_int("n_rows * n_cols", self.n_rows * self.n_cols, limit=MAX_GRID_CELLS)
        for name, states in (
            ("target", (self.target,)),
            ("forbidden", self.forbidden),
            ("start", self.start),
        ):
            if isinstance(states, (str, bytes)) or not isinstance(states, (Sequence, np.ndarray)):
                raise ValueError(
                    f"{name} must be a tuple of states, got {_checks.describe(states)}"
                )
            bad = [
                s
                for s in states
                if isinstance(s, (bool, np.bool_))
                or not (isinstance(s, (int, np.integer)) and 0 <= s < n)
            ]
            if bad:
                raise ValueError(f"{name} must hold states in [0, {n}), got {bad}")
        if not len(self.start):
            raise ValueError("start must name at least one state, got none")
        if self.target in self.forbidden:
            raise ValueError(f"the target state {self.target} cannot also be forbidden")
        for name in ("r_boundary", "r_forbidden", "r_target", "r_other"):
            _checks.real(name, getattr(self, name))
        _checks.unit_interval("slip", self.slip)
        object.__setattr__(self, "forbidden", tuple(sorted(set(self.forbidden))))
        object.__setattr__(self, "start", tuple(sorted(set(self.start))))
        kinds = ["forbidden" if s in self.forbidden else "normal" for s in range(n)]
        kinds[self.target] = "target"
        object.__setattr__(self, "_cells", tuple(kinds))

    @classmethod
    def from_text(cls, layout: str, **rewards: Any) -> GridWorld:
        """A layout drawn as text, one row per line, cells separated by spaces:
        ``.`` normal, ``S`` start (a normal cell), ``F`` forbidden, ``T`` target (exactly one).

        Extra keyword arguments (``r_forbidden=-10``, ``slip=0.1``, ...) go to the constructor.
        """
        _checks.instance("layout", layout, str, "a string")
        _check_reward_fields(rewards)
        rows = [line.split() for line in layout.strip().splitlines()]
        if not rows or any(len(row) != len(rows[0]) for row in rows):
            raise ValueError(
                f"layout must be a rectangle of cells, got row lengths {[len(r) for r in rows]}"
            )
        cells = [char for row in rows for char in row]
        unknown = sorted(set(cells) - set(_LAYOUT_CHARS))
        if unknown:
            raise ValueError(f"layout cells must be one of {sorted(_LAYOUT_CHARS)}, got {unknown}")
        targets = [s for s, char in enumerate(cells) if char == "T"]
        if len(targets) != 1:
            raise ValueError(f"layout must have exactly one target T, got {len(targets)}")
        starts = tuple(s for s, char in enumerate(cells) if char == "S") or (0,)
        forbidden = tuple(s for s, char in enumerate(cells) if char == "F")
        return cls(len(rows), len(rows[0]), targets[0], forbidden, starts, **rewards)

    @classmethod
    def zhao_3x3(cls) -> GridWorld:
        """The 3x3 world of the source notes (after Zhao, *Mathematical Foundations of RL*):
        start s1, forbidden s6 and s7, target s9. Introduced in Chapter 2."""
        return cls.from_text(
            """
            S . .
            . . F
            F . T
            """
        )

    @classmethod
    def river_5x5(cls) -> GridWorld:
        """A 5x5 world where a river of forbidden cells separates the start (s1) from the target
        (s21) below it; the only dry crossing is at the far right. Crossing the river costs
        ``r_forbidden`` once; walking round it costs eight extra steps. Introduced in Chapter 3."""
        return cls.from_text(
            """
            S . . . .
            . . . . .
            F F F F .
            . . . . .
            T . . . .
            """
        )

    @property
    def n_states(self) -> int:
        """The number of cells."""
        return self.n_rows * self.n_cols

    def check_state(self, state: object) -> int:
        """``state`` as an int, after checking it is an integer in [0, S); a ValueError if not.
        Introduced in Chapter 2."""
        return _checks.integer("state", state, low=0, high=self.n_states - 1)

    def cell_kind(self, state: int) -> str:
        """``"target"``, ``"forbidden"`` or ``"normal"``."""
        return self._cells[self.check_state(state)]

    def label(self, state: int) -> str:
        """The cell's name in the source notes: ``s1`` for state 0."""
        return f"s{self.check_state(state) + 1}"

    def row_col(self, state: int) -> tuple[int, int]:
        """(row, column) of ``state``, counted from the top left."""
        return divmod(self.check_state(state), self.n_cols)

    def move(self, state: int, action: int) -> tuple[int, float]:
        """``(next state, reward)`` when ``action`` is carried out in ``state`` (no slip)."""
        row, col = self.row_col(state)
        d_row, d_col = GRID_ACTION_MOVES[action]
        row, col = row + d_row, col + d_col
        if not (0 <= row < self.n_rows and 0 <= col < self.n_cols):
            return state, self.r_boundary
        nxt = row * self.n_cols + col
        kind = self._cells[nxt]
        reward = {"target": self.r_target, "forbidden": self.r_forbidden}.get(kind, self.r_other)
        return nxt, reward

    # The chapters print move's source; its arguments are checked by this wrapper.
    move = _checks.checked_by(_check_move)(move)

    def to_mdp(self, gamma: float) -> TabularMDP:
        """The tabular MDP: P [S, 5, S], R [S, 5] (expected reward), ``gamma``, ρ0 uniform on
        ``start``. With ``slip`` > 0, each action is replaced by a uniform random one with that
        probability. Introduced in Chapter 2."""
        n, n_actions = self.n_states, len(GRID_ACTION_MOVES)
        P_move = np.zeros((n, n_actions, n))
        R_move = np.zeros((n, n_actions))
        for s in range(n):
            for a in range(n_actions):
                nxt, reward = self.move(s, a)
                P_move[s, a, nxt] = 1.0
                R_move[s, a] = reward
        P = (1 - self.slip) * P_move + self.slip * P_move.mean(axis=1, keepdims=True)
        R = (1 - self.slip) * R_move + self.slip * R_move.mean(axis=1, keepdims=True)
        rho0 = np.zeros(n)
        rho0[list(self.start)] = 1.0 / len(self.start)
        return TabularMDP(P=P, R=R, gamma=gamma, rho0=rho0)

    def with_rewards(self, **rewards: float) -> GridWorld:
        """The same layout with some reward values (or ``slip``) changed."""
        _check_reward_fields(rewards)
        return replace(self, **rewards)


def _check_reward_fields(rewards: dict[str, Any]) -> None:
    unknown = sorted(set(rewards) - set(_REWARD_FIELDS))
    if unknown:
        raise ValueError(f"reward keywords must be among {_REWARD_FIELDS}, got {unknown}")


class GridWorldEnv(gym.Env[np.int64, np.int64]):
    """A Gymnasium environment that samples the MDP of a :class:`GridWorld`.

    Observations and actions are integers (``Discrete``). The task never terminates (the
    agent can stay at the target and keep collecting reward); an episode is truncated after
    ``max_steps`` steps. Introduced in Chapter 2.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"]}

    def __init__(
        self, world: GridWorld, *, max_steps: int = 100, render_mode: str | None = None
    ) -> None:
        _checks.instance("world", world, GridWorld, "a GridWorld")
        max_steps = _checks.positive_int("max_steps", max_steps)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.world = world
        self.max_steps = max_steps
        self.render_mode = render_mode
        self.observation_space = gym.spaces.Discrete(world.n_states)
        self.action_space = gym.spaces.Discrete(len(GRID_ACTION_MOVES))
        self._state = 0
        self._steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.int64, dict[str, Any]]:
        """Start a new episode in a state drawn uniformly from ``world.start`` (ρ0)."""
        if seed is not None:
            seed = _checks.integer("seed", seed, low=0)
        if options is not None:
            _checks.instance("options", options, dict, "a dict or None")
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.world.start))
        self._steps = 0
        return np.int64(self._state), {}

    def step(self, action: int) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        """Take ``action`` (replaced by a uniform random action with probability ``slip``)."""
        action = _checks.integer("action", action, low=0, high=int(self.action_space.n) - 1)
        if self.np_random.random() < self.world.slip:
            action = int(self.np_random.integers(self.action_space.n))
        self._state, reward = self.world.move(self._state, int(action))
        self._steps += 1
        return np.int64(self._state), float(reward), False, self._steps >= self.max_steps, {}

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the grid as text, the agent shown as ``@``."""
        if self.render_mode != "ansi":
            return None
        symbols = {"target": "T", "forbidden": "F", "normal": "."}
        cells = [symbols[self.world.cell_kind(s)] for s in range(self.world.n_states)]
        cells[self._state] = "@"
        cols = self.world.n_cols
        return "\n".join(
            " ".join(cells[r * cols : (r + 1) * cols]) for r in range(self.world.n_rows)
        )
