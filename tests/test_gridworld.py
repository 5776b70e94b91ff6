"""pglib.gridworld: layouts, the MDP they define, and the Gymnasium environment."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from pglib import GRID_ACTION_NAMES, GridWorld, GridWorldEnv

UP, RIGHT, DOWN, LEFT, STAY = range(5)


def test_the_3x3_layout_of_the_source_notes() -> None:
    world = GridWorld.zhao_3x3()
    assert (world.n_rows, world.n_cols, world.n_states) == (3, 3, 9)
    assert world.target == 8 and world.forbidden == (5, 6) and world.start == (0,)
    assert [world.label(s) for s in (0, 8)] == ["s1", "s9"]
    assert world.row_col(5) == (1, 2)
    assert [world.cell_kind(s) for s in (0, 5, 8)] == ["normal", "forbidden", "target"]
    assert GRID_ACTION_NAMES == ("up", "right", "down", "left", "stay")


def test_rewards_and_moves_follow_the_rules() -> None:
    mdp = GridWorld.zhao_3x3().to_mdp(0.9)
    next_state = mdp.P.argmax(axis=2)
    assert (mdp.P.max(axis=2) == 1.0).all()  # deterministic moves
    # Leaving the grid: stay put, reward −1.
    assert next_state[0, UP] == 0 and mdp.R[0, UP] == -1.0
    assert next_state[0, LEFT] == 0 and mdp.R[0, LEFT] == -1.0
    # A normal move: reward 0.
    assert next_state[0, RIGHT] == 1 and mdp.R[0, RIGHT] == 0.0
    # Entering a forbidden cell (s2 → s3 is normal, s3 → s6 is forbidden), and staying in one.
    assert next_state[2, DOWN] == 5 and mdp.R[2, DOWN] == -1.0
    assert next_state[5, STAY] == 5 and mdp.R[5, STAY] == -1.0
    # Reaching the target, and staying there.
    assert next_state[7, RIGHT] == 8 and mdp.R[7, RIGHT] == 1.0
    assert next_state[8, STAY] == 8 and mdp.R[8, STAY] == 1.0
    # Bouncing off the wall from the target earns the boundary penalty, not the target reward.
    assert next_state[8, DOWN] == 8 and mdp.R[8, DOWN] == -1.0
    np.testing.assert_array_equal(mdp.rho0, np.eye(9)[0])


def test_the_two_paths_of_the_source_notes() -> None:
    mdp = GridWorld.zhao_3x3().to_mdp(1.0)
    for states, actions, total in (
        ([0, 1, 4, 7, 8], [RIGHT, DOWN, DOWN, RIGHT], 1.0),
        ([0, 3, 6, 7, 8], [DOWN, DOWN, RIGHT, RIGHT], 0.0),
    ):
        for s, a, s_next in zip(states[:-1], actions, states[1:], strict=True):
            assert mdp.P[s, a, s_next] == 1.0
        assert sum(mdp.R[s, a] for s, a in zip(states[:-1], actions, strict=False)) == total


def test_slip_mixes_in_the_uniform_action() -> None:
    world = GridWorld.zhao_3x3().with_rewards(slip=0.5)
    mdp = world.to_mdp(0.9)
    # From s1 the five moves land in s1 (up), s2 (right), s4 (down), s1 (left), s1 (stay).
    np.testing.assert_allclose(mdp.P[0, RIGHT, [0, 1, 3]], [0.5 * 3 / 5, 0.5 + 0.5 / 5, 0.5 / 5])
    assert mdp.R[0, RIGHT] == pytest.approx(0.5 * 0 + 0.5 * (-2 / 5))


def test_the_river_layout() -> None:
    world = GridWorld.river_5x5()
    assert (world.n_rows, world.n_cols, world.target, world.start) == (5, 5, 20, (0,))
    assert world.forbidden == (10, 11, 12, 13)
    assert world.with_rewards(r_forbidden=-10.0).to_mdp(0.9).R[5, DOWN] == -10.0


def test_from_text_builds_the_same_world_as_the_constructor() -> None:
    world = GridWorld.from_text("S F\n. T", r_target=2.0)
    assert world == GridWorld(2, 2, target=3, forbidden=(1,), start=(0,), r_target=2.0)


def test_env_passes_gymnasium_checks_and_truncates() -> None:
    env = GridWorldEnv(GridWorld.zhao_3x3(), max_steps=3, render_mode="ansi")
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert obs == 0
    assert env.render().splitlines()[0] == "@ . ."
    flags = [env.step(STAY)[2:4] for _ in range(3)]
    assert flags == [(False, False), (False, False), (False, True)]


def test_env_transitions_match_P_by_sampling() -> None:
    # With slip 0.3 every (s, a) has a spread of next states. 400 draws per pair give each
    # frequency a standard error of at most 0.025; we allow 0.1 (four standard errors).
    world = GridWorld.zhao_3x3().with_rewards(slip=0.3)
    mdp = world.to_mdp(0.9)
    env = GridWorldEnv(world, max_steps=10**6)
    env.reset(seed=123)
    counts = np.zeros_like(mdp.P)
    reward_sums = np.zeros_like(mdp.R)
    n = 400
    for s in range(world.n_states):
        for a in range(5):
            for _ in range(n):
                env._state = s  # place the agent, then take one step
                s_next, reward, *_ = env.step(a)
                counts[s, a, s_next] += 1
                reward_sums[s, a] += reward
    assert np.abs(counts / n - mdp.P).max() < 0.1
    # Rewards lie in [−1, 1], so the mean of 400 has a standard error of at most 0.05.
    assert np.abs(reward_sums / n - mdp.R).max() < 0.2


def test_validation_errors() -> None:
    with pytest.raises(ValueError, match="n_rows must be a positive integer, got 0"):
        GridWorld(0, 3, target=0)
    with pytest.raises(ValueError, match=r"target must hold states in \[0, 4\), got \[4\]"):
        GridWorld(2, 2, target=4)
    with pytest.raises(ValueError, match=r"forbidden must hold states in \[0, 4\), got \[-1\]"):
        GridWorld(2, 2, target=3, forbidden=(-1,))
    with pytest.raises(ValueError, match="start must name at least one state, got none"):
        GridWorld(2, 2, target=3, start=())
    with pytest.raises(ValueError, match="the target state 3 cannot also be forbidden"):
        GridWorld(2, 2, target=3, forbidden=(3,))
    with pytest.raises(ValueError, match="r_forbidden must be a finite real number, got nan"):
        GridWorld(2, 2, target=3, r_forbidden=float("nan"))
    with pytest.raises(ValueError, match=r"slip must be a real number in \[0, 1\], got 1.5"):
        GridWorld(2, 2, target=3, slip=1.5)
    with pytest.raises(
        ValueError, match=r"layout must be a rectangle of cells, got row lengths \[2, 1\]"
    ):
        GridWorld.from_text("S .\nT")
    with pytest.raises(ValueError, match=r"layout cells must be one of .*, got \['X'\]"):
        GridWorld.from_text("S X\n. T")
    with pytest.raises(ValueError, match="layout must have exactly one target T, got 2"):
        GridWorld.from_text("T .\n. T")
    with pytest.raises(ValueError, match="max_steps must be a positive integer, got 0"):
        GridWorldEnv(GridWorld.zhao_3x3(), max_steps=0)
    with pytest.raises(ValueError, match="render_mode must be None or 'ansi', got 'human'"):
        GridWorldEnv(GridWorld.zhao_3x3(), render_mode="human")
    env = GridWorldEnv(GridWorld.zhao_3x3())
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 4\], got 7"):
        env.step(7)
