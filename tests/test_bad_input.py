"""pglib's input contract, for every public callable: bad input is a ValueError that says what
was expected, never a crash inside numpy or torch, a silent clip or a NaN.

``ROWS`` maps each public name in ``pglib.__all__`` (and each public method, as
``"Class.method"``) to its bad inputs: (call, message fragment) pairs. A meta-test fails when
a public callable has no row, so a new function cannot skip the contract. Hypothesis
properties then check the two halves of the contract over many inputs: NaN or inf in is a
ValueError, and finite valid input gives a finite answer.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import hypothesis.strategies as st
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from hypothesis import given, settings

import pglib
from pglib.rollouts import EpisodeCollector, RolloutCollector

NAN, INF = float("nan"), float("inf")
WORLD = pglib.GridWorld.zhao_3x3()
MDP = WORLD.to_mdp(0.9)
UNIFORM = np.full((9, 5), 0.2)
THETA = torch.zeros(9, 5, dtype=torch.float64)
TRAJ = pglib.sample_trajectories(MDP, UNIFORM, 3, 4, np.random.default_rng(0))
ONES = np.ones(3)
ONE_STEP_TO_5 = pglib.Trajectory(np.array([[0, 5]]), np.array([[0]]), np.zeros((1, 1)))
POLICY = pglib.MLPCategoricalPolicy(4, 2, hidden_sizes=(4,))
GAUSSIAN = pglib.DiagonalGaussianPolicy(4, 2, hidden_sizes=(4,))
TABULAR = pglib.TabularSoftmaxPolicy(THETA)
TASK = pglib.DigitSumTask()
LM = pglib.TinyLM(TASK, d_model=8, n_layers=1, n_heads=2)
SEQ = torch.tensor([[12, 4, 10, 11, 11]])
SEQ_MASK = torch.tensor([[True, True, False, False]])
NO = torch.tensor([False])
SCALAR = pglib.ScalarLM(TASK, d_model=8, n_layers=1, n_heads=2)
#: One valid pair (chosen and rejected: SEQ) for the reward-model functions.
PAIRS = pglib.PreferencePairs(SEQ, SEQ, SEQ_MASK, SEQ_MASK, NO)
#: Valid [1, 4] log-probs (policy, reference) and [1] scores for token_rewards.
TOKEN_BATCH = (-torch.ones(1, 4), -torch.ones(1, 4), torch.ones(1))
STATS = pglib.gradient_statistics(torch.randn(4, 9, 5, generator=torch.Generator().manual_seed(0)))

#: Valid [2] summed log-probs for dpo_loss (and the first two for kto_loss).
PAIR_LOGPS = (-torch.ones(2), -torch.ones(2), -torch.ones(2), -torch.ones(2))
#: logp, old_logp, ref_logp (None), advantages and mask of a valid [2, 3] batch for grpo_loss.
GRPO_BATCH = (torch.zeros(2, 3), torch.zeros(2, 3), None, torch.ones(2), torch.ones(2, 3) > 0)


def _figure(**_: object) -> plt.Figure:
    fig, _ax = pglib.new_figure()
    return fig


def _rollout() -> pglib.Rollout:
    collector = RolloutCollector(pglib.make_vector_env("CartPole-v1", 2), seed=0)
    return collector.collect(POLICY, 3)


def _slider_returning(result: object) -> pglib.Slider:
    slider = pglib.slider(_figure, gamma=[0.5])
    slider.figure_fn = lambda **_: result
    return slider


def _env() -> pglib.GridWorldEnv:
    env = pglib.GridWorldEnv(WORLD)
    env.reset(seed=0)
    return env


def _history() -> pglib.History:
    return pglib.History(config=pglib.REINFORCEConfig(), policy=POLICY, value=None)


def _episodes() -> pglib.EpisodeBatch:
    return EpisodeCollector(pglib.make_vector_env("CartPole-v1", 2), seed=0).collect(POLICY, 1)


def _episode_fields(**change: object) -> dict[str, object]:
    base = _episodes()
    fields = {name: getattr(base, name) for name in base.__dataclass_fields__}
    return {**fields, **change}


def _rollout_fields(**change: object) -> dict[str, object]:
    base = _rollout()
    fields = {name: getattr(base, name) for name in base.__dataclass_fields__}
    return {**fields, **change}


def _bad_checkpoint(tmp: Path, data: bytes) -> Path:
    path = tmp / "bad.safetensors"
    path.write_bytes(data)
    return path


TMP = Path(__import__("tempfile").mkdtemp(prefix="pglib-bad-input-"))

Case = tuple[Callable[[], object], str]

#: Callables that take no argument: nothing can be passed wrongly.
NO_ARGUMENTS = ()

ROWS: dict[str, tuple[Case, ...]] = {
    # --- episodes ---------------------------------------------------------------------------
    "Episode": (
        (
            lambda: pglib.Episode(np.zeros((3, 1)), np.zeros(2), np.array([1.0, NAN]), True, False),
            "rewards must contain only finite numbers",
        ),
        (
            lambda: pglib.Episode(np.zeros((2, 1)), np.zeros(1), np.array([True]), True, False),
            "rewards must hold real numbers, got dtype bool",
        ),
        (
            lambda: pglib.Episode(np.zeros((2, 1)), np.zeros(1), np.ones(1), "yes", False),
            "terminated must be True or False, got 'yes'",
        ),
        (
            lambda: pglib.Episode(np.zeros((2, 1)), np.zeros(2), np.ones(1), True, False),
            "T actions and T + 1 observations",
        ),
    ),
    "Episode.length": NO_ARGUMENTS,
    "Episode.total_reward": NO_ARGUMENTS,
    "run_episode": (
        (lambda: pglib.run_episode("CartPole-v1", lambda o: 0, seed=0), "env must be a single"),
        (lambda: pglib.run_episode(_env(), 3, seed=0), "policy must be a callable"),
        (
            lambda: pglib.run_episode(_env(), lambda o: 0, seed=1.5),
            "seed must be a non-negative integer, got 1.5",
        ),
        (
            lambda: pglib.run_episode(_env(), lambda o: 0, seed=0, max_steps=True),
            "max_steps must be a positive integer, got True",
        ),
        (
            lambda: pglib.run_episode(_env(), lambda o: 1.5, seed=0, max_steps=5),
            "must return an action in",
        ),
    ),
    # --- gridworld --------------------------------------------------------------------------
    "GridWorld": (
        (lambda: pglib.GridWorld(0, 3, 0), "n_rows must be a positive integer, got 0"),
        (lambda: pglib.GridWorld(3, 3, True), r"target must hold states in [0, 9), got [True]"),
        (lambda: pglib.GridWorld(3, 3, 8, r_target=1j), "r_target must be a real number"),
        (lambda: pglib.GridWorld(3, 3, 8, slip=NAN), "slip must be a finite real number"),
        (lambda: pglib.GridWorld(3, 3, 8, forbidden=5), "forbidden must be a tuple of states"),
        (lambda: pglib.GridWorld(1000, 1000, 0), "n_rows * n_cols must be at most 2,500"),
    ),
    "GridWorld.n_states": NO_ARGUMENTS,
    "GridWorld.check_state": (
        (lambda: WORLD.check_state(-1), "state must be an integer in [0, 8], got -1"),
        (lambda: WORLD.check_state(1.0), "state must be an integer in [0, 8], got 1.0"),
    ),
    "GridWorld.cell_kind": (
        (lambda: WORLD.cell_kind(-1), "state must be an integer in [0, 8], got -1"),
        (lambda: WORLD.cell_kind(9), "state must be an integer in [0, 8], got 9"),
    ),
    "GridWorld.label": ((lambda: WORLD.label("s1"), "state must be an integer"),),
    "GridWorld.row_col": ((lambda: WORLD.row_col(np.float64(2)), "state must be an integer"),),
    "GridWorld.move": (
        (lambda: WORLD.move(0, -1), "action must be an integer in [0, 4], got -1"),
        (lambda: WORLD.move(0, 1.5), "action must be an integer in [0, 4], got 1.5"),
        (lambda: WORLD.move(9, 0), "state must be an integer in [0, 8], got 9"),
    ),
    "GridWorld.to_mdp": (
        (lambda: WORLD.to_mdp(1.5), "gamma must be a real number in [0, 1], got 1.5"),
        (lambda: WORLD.to_mdp(True), "gamma must be a real number in [0, 1], got True"),
    ),
    "GridWorld.with_rewards": (
        (lambda: WORLD.with_rewards(n_rows=4), "reward keywords must be among"),
        (lambda: WORLD.with_rewards(r_other=NAN), "r_other must be a finite real number"),
    ),
    "GridWorldEnv": (
        (lambda: pglib.GridWorldEnv("3x3"), "world must be a GridWorld, got str"),
        (lambda: pglib.GridWorldEnv(WORLD, max_steps=0), "max_steps must be a positive integer"),
    ),
    "GridWorldEnv.reset": (
        (lambda: pglib.GridWorldEnv(WORLD).reset(seed=-1), "seed must be a non-negative integer"),
        (lambda: pglib.GridWorldEnv(WORLD).reset(options=[1]), "options must be a dict or None"),
    ),
    "GridWorldEnv.step": (
        (lambda: _env().step(1.5), "action must be an integer in [0, 4], got 1.5"),
        (lambda: _env().step(5), "action must be an integer in [0, 4], got 5"),
    ),
    "GridWorldEnv.render": NO_ARGUMENTS,
    # --- mdp --------------------------------------------------------------------------------
    "TabularMDP": (
        (lambda: pglib.TabularMDP(MDP.P + 0j, MDP.R, 0.9, MDP.rho0), "P must hold real numbers"),
        (
            lambda: pglib.TabularMDP(MDP.P, MDP.R.astype(bool), 0.9, MDP.rho0),
            "R must hold real numbers, got dtype bool",
        ),
        (
            lambda: pglib.TabularMDP(MDP.P, MDP.R, 0.9, np.full(9, NAN)),
            "rho0 must contain only finite numbers",
        ),
        (lambda: pglib.TabularMDP(MDP.P, MDP.R, True, MDP.rho0), "gamma must be a real number"),
        (
            lambda: pglib.TabularMDP(-MDP.P, MDP.R, 0.9, MDP.rho0),
            "every row P[s, a, :] must be a probability distribution",
        ),
    ),
    "TabularMDP.n_states": NO_ARGUMENTS,
    "TabularMDP.n_actions": NO_ARGUMENTS,
    "Trajectory": (
        (
            lambda: pglib.Trajectory(np.array([0.5, 1.0]), np.array([0]), np.zeros(1)),
            "states must hold integer indices, got dtype float64",
        ),
        (
            lambda: pglib.Trajectory(np.array([0, 1]), np.array([0]), np.array([NAN])),
            "rewards must contain only finite numbers",
        ),
        (
            lambda: pglib.Trajectory(np.array([0, 1]), np.array([0, 0]), np.zeros(2)),
            "a trajectory needs states [..., T+1]",
        ),
    ),
    "evaluate_policy": (
        (
            lambda: pglib.evaluate_policy(MDP, np.tile([2.0, -1, 0, 0, 0], (9, 1))),
            "every row pi[s, :] must be a probability distribution",
        ),
        (lambda: pglib.evaluate_policy("mdp", UNIFORM), "mdp must be a TabularMDP, got str"),
        (
            lambda: pglib.evaluate_policy(MDP, torch.ones(9, 5, dtype=torch.long)),
            "pi must hold real numbers, got dtype torch.int64",
        ),
    ),
    "evaluate_policy_iterative": (
        (
            lambda: pglib.evaluate_policy_iterative(MDP, UNIFORM, max_sweeps=0),
            "max_sweeps must be a positive integer, got 0",
        ),
        (
            lambda: pglib.evaluate_policy_iterative(MDP, UNIFORM, tol=NAN),
            "tol must be a finite positive real number",
        ),
    ),
    "q_values": (
        (
            lambda: pglib.q_values(MDP, torch.zeros(9, dtype=torch.long)),
            "V must hold real numbers, got dtype torch.int64",
        ),
        (lambda: pglib.q_values(MDP, np.full(9, NAN)), "V must contain only finite numbers"),
        (lambda: pglib.q_values(MDP, [0.0] * 9), "V must be a NumPy array or a torch tensor"),
    ),
    "advantages": ((lambda: pglib.advantages(MDP, UNIFORM[:3]), "pi must have shape (9, 5)"),),
    "greedy_policy": (
        (lambda: pglib.greedy_policy(np.array([[1.0, NAN]])), "Q must contain only finite"),
        (lambda: pglib.greedy_policy(np.array([[1 + 1j, 0]])), "Q must hold real numbers"),
        (lambda: pglib.greedy_policy(np.zeros((2, 0))), "Q must not be empty"),
    ),
    "value_iteration": (
        (lambda: pglib.value_iteration(MDP, tol=-1), "tol must be a positive real number"),
        (lambda: pglib.value_iteration(MDP, max_sweeps=0), "max_sweeps must be a positive"),
        (lambda: pglib.value_iteration(None), "mdp must be a TabularMDP, got NoneType"),
    ),
    "policy_iteration": (
        (lambda: pglib.policy_iteration(MDP, max_iterations=0), "max_iterations must be a"),
        (lambda: pglib.policy_iteration({}), "mdp must be a TabularMDP, got dict"),
    ),
    "sample_trajectory": (
        (
            lambda: pglib.sample_trajectory(MDP, UNIFORM, 2.5, np.random.default_rng(0)),
            "horizon must be a non-negative integer, got 2.5",
        ),
        (lambda: pglib.sample_trajectory(MDP, UNIFORM, 3, 0), "rng must be a numpy.random"),
    ),
    "sample_trajectories": (
        (
            lambda: pglib.sample_trajectories(MDP, UNIFORM, 10**9, 10, np.random.default_rng(0)),
            "n * (horizon + 1) must be at most 50,000,000",
        ),
        (
            lambda: pglib.sample_trajectories(MDP, UNIFORM, 3, True, np.random.default_rng(0)),
            "n must be a positive integer, got True",
        ),
    ),
    "trajectory_log_prob": (
        (lambda: pglib.trajectory_log_prob(MDP, UNIFORM, "traj"), "traj must be a Trajectory"),
        (
            lambda: pglib.trajectory_log_prob(
                MDP, UNIFORM, pglib.Trajectory(np.array([0, 9]), np.array([0]), np.zeros(1))
            ),
            "traj.states must lie in [0, 9), got values 0..9",
        ),
    ),
    # --- returns ----------------------------------------------------------------------------
    "discounted_return": (
        (lambda: pglib.discounted_return(ONES, np.complex128(0.5)), "gamma must be a real"),
        (
            lambda: pglib.discounted_return(np.array([True, False]), 0.5),
            "rewards must hold real numbers, got dtype bool",
        ),
    ),
    "reward_to_go": (
        (
            lambda: pglib.reward_to_go(ONES, 0.5, terminated=np.array(["no", "no", "yes"])),
            "terminated must have dtype bool",
        ),
        (
            lambda: pglib.reward_to_go(ONES, 0.5, terminated=np.array([0.0, NAN, 1.0])),
            "terminated must have dtype bool",
        ),
        (lambda: pglib.reward_to_go(ONES.astype(np.float16), 0.5), "float16 is too narrow"),
        (lambda: pglib.reward_to_go(ONES + 1j, 0.5), "rewards must hold real numbers"),
        (lambda: pglib.reward_to_go(ONES, True), "gamma must be a real number in [0, 1]"),
    ),
    "gae": (
        (lambda: pglib.gae(ONES, ONES, ONES, 0.9, 1.5), "lam must be a real number in [0, 1]"),
        (
            lambda: pglib.gae(ONES, np.array([NAN, 0, 0]), ONES, 0.9, 0.9),
            "values must contain only finite numbers",
        ),
    ),
    # --- policies ---------------------------------------------------------------------------
    "mlp": (
        (lambda: pglib.mlp([4, 2.5]), "every layer width must be a positive integer, got 2.5"),
        (lambda: pglib.mlp([4, True]), "every layer width must be a positive integer, got True"),
        (lambda: pglib.mlp([4, 10**6]), "every layer width must be at most 65,536"),
        (lambda: pglib.mlp([4, 2], activation=torch.tanh), "activation must be a torch.nn.Module"),
        (lambda: pglib.mlp(4), "sizes must be a list of layer widths"),
    ),
    "TabularSoftmaxPolicy": (
        (lambda: pglib.TabularSoftmaxPolicy(torch.full((2, 2), -INF)), "logits must contain only"),
        (lambda: pglib.TabularSoftmaxPolicy(np.ones((2, 2)) + 1j), "logits must hold real"),
    ),
    "TabularSoftmaxPolicy.n_states": NO_ARGUMENTS,
    "TabularSoftmaxPolicy.n_actions": NO_ARGUMENTS,
    "TabularSoftmaxPolicy.distribution": (
        (lambda: TABULAR.distribution(torch.tensor([-1])), "states must lie in [0, 9)"),
        (lambda: TABULAR.distribution(torch.tensor([True])), "states must hold integer indices"),
    ),
    "TabularSoftmaxPolicy.probs": NO_ARGUMENTS,
    "MLPCategoricalPolicy": (
        (lambda: pglib.MLPCategoricalPolicy(4.0, 2), "obs_dim must be a positive integer, got 4.0"),
        (lambda: pglib.MLPCategoricalPolicy(4, 2, hidden_sizes=8), "hidden_sizes must be a tuple"),
    ),
    "MLPCategoricalPolicy.forward": (
        (lambda: POLICY(torch.full((3, 4), NAN)), "observations must contain only finite"),
        (lambda: POLICY(torch.zeros(3, 5)), "observations must have shape [obs_dim]"),
    ),
    "MLPCategoricalPolicy.distribution": (
        (lambda: POLICY.distribution(np.full(4, INF)), "observations must contain only finite"),
    ),
    "MLPCategoricalPolicy.sample": (
        (lambda: POLICY.sample(torch.full((3, 4), NAN)), "observations must contain only finite"),
        (
            lambda: POLICY.sample(torch.zeros(3, 4, dtype=torch.complex64)),
            "observations must hold real numbers",
        ),
    ),
    "DiagonalGaussianPolicy.sample": (
        (lambda: GAUSSIAN.sample(torch.full((3, 4), INF)), "observations must contain only finite"),
        (lambda: GAUSSIAN.sample(torch.zeros(3, 2)), "observations must have shape [obs_dim]"),
    ),
    "DiagonalGaussianPolicy": (
        (lambda: pglib.DiagonalGaussianPolicy(4, 0), "act_dim must be a positive integer, got 0"),
        (
            lambda: pglib.DiagonalGaussianPolicy(4, 2, log_std_init=NAN),
            "log_std_init must be a finite real number",
        ),
    ),
    "DiagonalGaussianPolicy.forward": (
        (lambda: GAUSSIAN(np.array(["a", "b", "c", "d"])), "observations must hold real numbers"),
    ),
    "DiagonalGaussianPolicy.distribution": (
        (lambda: GAUSSIAN.distribution(torch.full((4,), NAN)), "observations must contain only"),
    ),
    # --- gradients --------------------------------------------------------------------------
    "exact_policy_gradient": (
        (lambda: pglib.exact_policy_gradient(MDP, torch.full((9, 5), NAN)), "logits must contain"),
        (lambda: pglib.exact_policy_gradient(MDP, [[0.0] * 5] * 9), "logits must be a NumPy"),
        (lambda: pglib.exact_policy_gradient("mdp", THETA), "mdp must be a TabularMDP"),
    ),
    "discounted_visitation": (
        (
            lambda: pglib.discounted_visitation(MDP, np.tile([2.0, -1, 0, 0, 0], (9, 1))),
            "every row pi[s, :] must be a probability distribution",
        ),
    ),
    "visitation_counts": (
        (lambda: pglib.visitation_counts(MDP, UNIFORM, 10**9), "horizon must be at most 1,000,000"),
        (lambda: pglib.visitation_counts(MDP, np.full((9, 5), NAN), 3), "pi must contain only"),
    ),
    "policy_gradient_theorem": (
        (
            lambda: pglib.policy_gradient_theorem(MDP, THETA, state_weights=np.full(9, NAN)),
            "state_weights must contain only finite numbers",
        ),
    ),
    "horizon_for_tolerance": (
        (lambda: pglib.horizon_for_tolerance(0.9, 1.0), "tol must be a real number in (0, 1)"),
        (lambda: pglib.horizon_for_tolerance(NAN, 0.1), "gamma must be a finite real number"),
    ),
    "estimator_weights": (
        (
            lambda: pglib.estimator_weights(
                MDP, THETA, TRAJ, "reward_to_go_baseline", baseline=np.full(9, NAN)
            ),
            "baseline must contain only finite numbers",
        ),
        (
            lambda: pglib.estimator_weights(MDP, THETA, TRAJ, "q", discount_weights="no"),
            "discount_weights must be True or False",
        ),
        (lambda: pglib.estimator_weights(MDP, THETA, "traj", "q"), "traj must be a Trajectory"),
    ),
    "trajectory_gradients": (
        (
            lambda: pglib.trajectory_gradients(THETA, TRAJ, torch.full((4, 3), NAN)),
            "weights must contain only finite numbers",
        ),
        (
            lambda: pglib.trajectory_gradients(THETA[:2], ONE_STEP_TO_5, torch.ones(1, 1)),
            "traj.states must lie in [0, 2)",
        ),
    ),
    "sample_gradient_estimates": (
        (lambda: pglib.sample_gradient_estimates(MDP, THETA, 1), "n_trajectories must be an"),
        (
            lambda: pglib.sample_gradient_estimates(MDP, THETA, 10**7),
            "n_trajectories must be at most 1,000,000",
        ),
        (
            lambda: pglib.sample_gradient_estimates(MDP, THETA, 4, weighting="sum"),
            "weighting must be one of",
        ),
        (lambda: pglib.sample_gradient_estimates(MDP, THETA, 4, seed=-1), "seed must be a non"),
    ),
    "optimal_constant_baseline": (
        (lambda: pglib.optimal_constant_baseline(MDP, THETA, 4, tol=2.0), "tol must be a real"),
    ),
    "GradientStatistics": (
        (
            lambda: pglib.GradientStatistics(torch.zeros(2), -torch.ones(2), 0.0, 4),
            "standard_error must be >= 0",
        ),
        (
            lambda: pglib.GradientStatistics(torch.zeros(2), torch.ones(2), NAN, 4),
            "total_variance must be a finite non-negative real number",
        ),
    ),
    "gradient_statistics": (
        (lambda: pglib.gradient_statistics(torch.tensor([[NAN], [0.0]])), "samples must contain"),
        (lambda: pglib.gradient_statistics(torch.ones(1, 3)), "samples must have shape [N, ...]"),
    ),
    "relative_error": (
        (lambda: pglib.relative_error(torch.tensor([NAN]), torch.ones(1)), "estimate must contain"),
        (lambda: pglib.relative_error(torch.ones(2), torch.zeros(2)), "exact is the zero vector"),
    ),
    "relative_error_curve": (
        (
            lambda: pglib.relative_error_curve(torch.ones(4, 2), torch.ones(2), np.array([1.5])),
            "ns must hold integer sample counts",
        ),
        (
            lambda: pglib.relative_error_curve(torch.ones(4, 2), torch.ones(2), np.array([5])),
            "ns must be a non-empty list of sample counts in [1, 4]",
        ),
    ),
    "bias_in_standard_errors": (
        (lambda: pglib.bias_in_standard_errors(STATS, torch.full((9, 5), NAN)), "exact must"),
        (lambda: pglib.bias_in_standard_errors({}, torch.zeros(9, 5)), "stats must be a"),
    ),
    "angle_degrees": (
        (
            lambda: pglib.angle_degrees(torch.tensor([NAN, 0.0]), torch.tensor([1.0, 0.0])),
            "u must contain only finite numbers",
        ),
        (
            lambda: pglib.angle_degrees(torch.tensor([INF, 0.0]), torch.tensor([0.0, 1.0])),
            "u must contain only finite numbers",
        ),
        (lambda: pglib.angle_degrees(torch.zeros(2), torch.ones(2)), "the angle with a zero"),
    ),
    # --- training, reinforce, actor_critic ---------------------------------------------------
    "TrainerConfig": (
        (lambda: pglib.TrainerConfig(), "TrainerConfig holds the shared fields only"),
    ),
    "TrainerConfig.to_dict": NO_ARGUMENTS,
    "REINFORCEConfig": (
        (lambda: pglib.REINFORCEConfig(episodes_per_update=0), "episodes_per_update must be a"),
        (lambda: pglib.REINFORCEConfig(lr=True), "lr must be a positive real number, got True"),
        (lambda: pglib.REINFORCEConfig(value_baseline="no"), "value_baseline must be True or"),
        (lambda: pglib.REINFORCEConfig(gamma=np.float32(NAN)), "gamma must be a finite real"),
        (lambda: pglib.REINFORCEConfig(num_envs=10**6), "num_envs must be at most 1,024"),
    ),
    "A2CConfig": (
        (lambda: pglib.A2CConfig(num_envs=1, batch_size=1), "batch_size must be at least 2"),
        (lambda: pglib.A2CConfig(batch_size=100), "batch_size must be a multiple of num_envs"),
        (lambda: pglib.A2CConfig(gae_lambda=1.5), "gae_lambda must be a real number in [0, 1]"),
        (lambda: pglib.A2CConfig(bootstrap_cuts=1), "bootstrap_cuts must be True or False"),
        (lambda: pglib.A2CConfig(max_grad_norm=INF), "max_grad_norm must be a finite"),
    ),
    "a2c_targets": (
        (lambda: pglib.a2c_targets("rollout", pglib.A2CConfig()), "rollout must be a Rollout"),
        (lambda: pglib.a2c_targets(_rollout(), {}), "config must be an A2CConfig"),
        (lambda: pglib.a2c_targets(_rollout(), pglib.A2CConfig(), 3), "value must be a callable"),
    ),
    "episode_returns": (
        (lambda: pglib.episode_returns(_rollout(), 0.9), "batch must be an EpisodeBatch"),
        (lambda: pglib.episode_returns(_episodes(), NAN), "gamma must be a finite real number"),
        (lambda: pglib.episode_returns(_episodes(), 0.9, value=3), "value must be a callable"),
    ),
    "policy_gradient_loss": (
        (
            lambda: pglib.policy_gradient_loss(
                torch.nn.Linear(4, 2),
                torch.zeros(2, 4),
                torch.zeros(2, dtype=torch.long),
                torch.ones(2),
            ),
            "policy must be an MLPCategoricalPolicy, a DiagonalGaussianPolicy or a Tabular",
        ),
        (
            lambda: pglib.policy_gradient_loss(
                POLICY,
                torch.zeros(2, 4),
                torch.zeros(2, dtype=torch.long),
                torch.tensor([1.0, NAN]),
            ),
            "weights must contain only finite numbers",
        ),
        (
            lambda: pglib.policy_gradient_loss(
                POLICY, torch.zeros(2, 4), torch.zeros(3, dtype=torch.long), torch.ones(2)
            ),
            "actions must have shape (2,) for this policy",
        ),
        (
            lambda: pglib.policy_gradient_loss(
                TABULAR, torch.zeros(2, dtype=torch.long), torch.tensor([0, 5]), torch.ones(2)
            ),
            "actions must",
        ),
        (
            lambda: pglib.policy_gradient_loss(
                POLICY, torch.zeros(3, 4), torch.zeros(2, dtype=torch.long), torch.ones(2)
            ),
            "observations must be an array with 2 rows",
        ),
        (
            lambda: pglib.policy_gradient_loss(
                POLICY,
                torch.zeros(2, 4),
                torch.zeros(2, dtype=torch.long),
                torch.ones(2, requires_grad=True),
            ),
            "weights must carry no gradient",
        ),
    ),
    "History": ((lambda: pglib.History({}, POLICY, None), "config must be a trainer config"),),
    "History.to_dict": NO_ARGUMENTS,
    "PPOHistory": ((lambda: pglib.PPOHistory(pglib.PPOConfig(), 3, None), "policy must be an"),),
    "PPOHistory.to_dict": NO_ARGUMENTS,
    "Rollout": (
        (
            lambda: pglib.Rollout(**_rollout_fields(rewards=np.full((3, 2), NAN))),
            "rewards must contain only finite numbers",
        ),
        (
            lambda: pglib.Rollout(**_rollout_fields(valid=np.ones((3, 2)))),
            "valid must have dtype bool",
        ),
    ),
    "Rollout.n_steps": NO_ARGUMENTS,
    "EpisodeBatch": (
        (
            lambda: pglib.EpisodeBatch(**_episode_fields(rewards=np.array([NAN]))),
            "rewards must contain only finite numbers",
        ),
        (
            lambda: pglib.EpisodeBatch(**_episode_fields(lengths=[1])),
            "lengths must give the steps between consecutive episode ends",
        ),
    ),
    "EpisodeBatch.n_steps": NO_ARGUMENTS,
    "EpisodeCollector": (
        (lambda: EpisodeCollector(gym.make("CartPole-v1"), seed=0), "envs must be a gymnasium"),
        (
            lambda: EpisodeCollector(pglib.make_vector_env("CartPole-v1", 1), seed=1.5),
            "seed must be a non-negative integer",
        ),
    ),
    "EpisodeCollector.collect": (
        (
            lambda: EpisodeCollector(pglib.make_vector_env("CartPole-v1", 1), 0).collect(POLICY, 0),
            "min_episodes must be a positive integer, got 0",
        ),
        (
            lambda: EpisodeCollector(pglib.make_vector_env("CartPole-v1", 1), 0).collect(
                pglib.MLPCategoricalPolicy(3, 2), 2
            ),
            "the policy (MLPCategoricalPolicy, obs_dim=3, n_actions=2) does not",
        ),
    ),
    "RolloutCollector": (
        (lambda: RolloutCollector(gym.make("CartPole-v1"), seed=0), "envs must be a gymnasium"),
        (
            lambda: RolloutCollector(pglib.make_vector_env("CartPole-v1", 1), seed=-1),
            "seed must be a non-negative integer",
        ),
    ),
    "RolloutCollector.collect": (
        (
            lambda: RolloutCollector(pglib.make_vector_env("CartPole-v1", 1), 0).collect(POLICY, 0),
            "n_steps must be a positive integer, got 0",
        ),
        (
            lambda: RolloutCollector(pglib.make_vector_env("CartPole-v1", 1), 0).collect(
                pglib.MLPCategoricalPolicy(3, 2), 2
            ),
            "the policy (MLPCategoricalPolicy, obs_dim=3, n_actions=2) does not",
        ),
    ),
    "make_vector_env": (
        (lambda: pglib.make_vector_env(3, 1), "env_id must be a Gymnasium environment id"),
        (lambda: pglib.make_vector_env("CartPole-v1", 10**6), "num_envs must be at most 1,024"),
    ),
    "train": (
        (lambda: pglib.train({"env_id": "CartPole-v1"}), "config must be a trainer config"),
        (lambda: pglib.train(pglib.REINFORCEConfig(), callback=3), "callback must be callable"),
    ),
    "train_many": (
        (lambda: pglib.train_many([]), "configs must be a non-empty list of trainer configs"),
        (lambda: pglib.train_many([pglib.A2CConfig(), 3]), "configs[1] must be a trainer config"),
        (lambda: pglib.train_many([pglib.REINFORCEConfig()], processes=0), "processes must be"),
    ),
    "evaluate": (
        (lambda: pglib.evaluate(POLICY, "CartPole-v1", 0, seed=0), "n_episodes must be a"),
        (
            lambda: pglib.evaluate(POLICY, "CartPole-v1", 2, seed=0, greedy="yes"),
            "greedy must be True or False",
        ),
        (lambda: pglib.evaluate(torch.nn.Linear(4, 2), "CartPole-v1", 1, 0), "policy must be an"),
    ),
    # --- ppo --------------------------------------------------------------------------------
    "SurrogateStats": (
        (lambda: pglib.SurrogateStats(NAN, 0.0, 1.0), "approx_kl must be a finite real number"),
        (lambda: pglib.SurrogateStats(0.0, 1.5, 1.0), "clip_fraction must be a real number in"),
        (lambda: pglib.SurrogateStats(0.0, 0.0, -1.0), "mean_ratio must be a non-negative real"),
    ),
    "clipped_surrogate": (
        (
            lambda: pglib.clipped_surrogate(
                torch.tensor([NAN, 0.0]), torch.zeros(2), torch.ones(2), 0.2
            ),
            "logp must contain only finite numbers",
        ),
        (
            lambda: pglib.clipped_surrogate(torch.zeros(2), torch.zeros(3), torch.ones(2), 0.2),
            "old_logp must have the shape of logp, (2,), got (3,)",
        ),
        (
            lambda: pglib.clipped_surrogate(torch.zeros(2), torch.zeros(2), torch.ones(2), INF),
            "clip_eps must be a finite real number",
        ),
        (
            lambda: pglib.clipped_surrogate(np.zeros(2), np.zeros(2), np.ones(2), 0.2),
            "logp must be a floating-point torch tensor",
        ),
    ),
    "minibatches": (
        (lambda: pglib.minibatches(0, 4), "n must be a positive integer"),
        (lambda: pglib.minibatches(8, 2.5), "size must be a positive integer"),
        (lambda: pglib.minibatches(8, 2, generator=0), "generator must be a torch.Generator"),
    ),
    "orthogonal_init": (
        (lambda: pglib.orthogonal_init(torch.nn.Linear(2, 2), 1.0), "network must be a torch.nn"),
        (lambda: pglib.orthogonal_init(pglib.mlp([2, 2]), NAN), "output_gain must be a finite"),
        (
            lambda: pglib.orthogonal_init(torch.nn.Sequential(torch.nn.Tanh()), 1.0),
            "network must contain at least one torch.nn.Linear",
        ),
    ),
    "PPOConfig": (
        (lambda: pglib.PPOConfig(epochs=0), "epochs must be a positive integer"),
        (lambda: pglib.PPOConfig(minibatch_size=512), "minibatch_size must be at most batch_size"),
        (lambda: pglib.PPOConfig(clip_eps=0.0), "clip_eps must be a real number in (0, 10]"),
        (lambda: pglib.PPOConfig(clip_schedule="cosine"), "clip_schedule must be one of"),
        (lambda: pglib.PPOConfig(target_kl=NAN), "target_kl must be a finite"),
        (lambda: pglib.PPOConfig(value_clip=-1.0), "value_clip must be a positive real"),
        (lambda: pglib.PPOConfig(orthogonal_init="yes"), "orthogonal_init must be True or False"),
        (lambda: pglib.PPOConfig(log_std_init=INF), "log_std_init must be a finite"),
    ),
    "make_policy": (
        (
            lambda: pglib.make_policy(
                pglib.make_vector_env("CartPole-v1", 1), "CartPole-v1", (4,), NAN
            ),
            "log_std_init must be a finite",
        ),
        (
            lambda: pglib.make_policy(
                pglib.make_vector_env("CartPole-v1", 1), "CartPole-v1", (0,), 0.0
            ),
            "every layer width must be a positive integer",
        ),
    ),
    "value_loss": (
        (
            lambda: pglib.value_loss(torch.zeros(2), torch.zeros(2), torch.tensor([1.0, INF])),
            "returns must contain only finite numbers",
        ),
        (
            lambda: pglib.value_loss(torch.zeros(2), torch.zeros(2), torch.ones(2), clip_eps=-1),
            "clip_eps must be a positive real number, got -1",
        ),
        (
            lambda: pglib.value_loss(torch.zeros(2), torch.zeros(2, 1), torch.ones(2)),
            "old_values must have the shape of values, (2,), got (2, 1)",
        ),
    ),
    "clipped_surrogate_terms": (
        (
            lambda: pglib.clipped_surrogate_terms(
                torch.zeros(2), torch.zeros(2), torch.ones(2, requires_grad=True), 0.2
            ),
            "advantages must carry no gradient",
        ),
        (
            lambda: pglib.clipped_surrogate_terms(torch.zeros(2), torch.zeros(2), ONES[:2], -0.2),
            "clip_eps must be a real number in (0, 10]",
        ),
    ),
    # --- alignment --------------------------------------------------------------------------
    "group_advantages": (
        (lambda: pglib.group_advantages(torch.zeros(3, 1)), "rewards must hold G >= 2"),
        (lambda: pglib.group_advantages(torch.zeros(4)), "rewards must have shape [B, G]"),
        (lambda: pglib.group_advantages(torch.zeros(2, 2), "ppo"), "method must be one of"),
        (lambda: pglib.group_advantages(torch.zeros(2, 2), eps=0.0), "eps must be a positive"),
        (
            lambda: pglib.group_advantages(torch.zeros(2, 2, dtype=torch.long)),
            "rewards must be a floating-point torch tensor",
        ),
    ),
    "kl_estimate": (
        (lambda: pglib.kl_estimate(torch.zeros(2), torch.zeros(2), "k4"), "estimator must be"),
        (
            lambda: pglib.kl_estimate(torch.tensor([-1.0, 0.5]), torch.zeros(2)),
            "logp must hold log-probabilities (every entry <= 0",
        ),
        (
            lambda: pglib.kl_estimate(torch.zeros(2), torch.tensor([NAN, 0.0])),
            "ref_logp must contain only finite numbers",
        ),
        (
            lambda: pglib.kl_estimate(torch.zeros(2), torch.zeros(3)),
            "ref_logp must have the shape of logp, (2,), got (3,)",
        ),
    ),
    "grpo_loss": (
        (
            lambda: pglib.grpo_loss(*GRPO_BATCH, aggregation="constant"),
            "max_completion_length must be given with aggregation='constant'",
        ),
        (
            lambda: pglib.grpo_loss(*GRPO_BATCH, max_completion_length=2),
            "max_completion_length must be at least the mask's length T = 3, got 2",
        ),
        (lambda: pglib.grpo_loss(*GRPO_BATCH, beta=0.1), "ref_logp must be a tensor when beta"),
        (lambda: pglib.grpo_loss(*GRPO_BATCH, beta=-0.1), "beta must be a non-negative real"),
        (lambda: pglib.grpo_loss(*GRPO_BATCH, aggregation="mean"), "aggregation must be one of"),
        (lambda: pglib.grpo_loss(*GRPO_BATCH, clip_eps=0.0), "clip_eps must be a real number"),
        (
            lambda: pglib.grpo_loss(*GRPO_BATCH[:3], torch.zeros(2, 3), GRPO_BATCH[4]),
            "advantages must have the shape of logp[:, 0], (2,), got (2, 3)",
        ),
        (
            lambda: pglib.grpo_loss(*GRPO_BATCH[:4], torch.ones(2, 3)),
            "mask must have dtype bool",
        ),
        (
            lambda: pglib.grpo_loss(*GRPO_BATCH[:4], torch.ones(2, 4, dtype=torch.bool)),
            "mask must have shape (2, 3)",
        ),
        (
            lambda: pglib.grpo_loss(torch.zeros(6), *GRPO_BATCH[1:]),
            "logp must have shape [B, T], got shape (6,)",
        ),
        (
            lambda: pglib.grpo_loss(GRPO_BATCH[0], torch.full((2, 3), 0.5), *GRPO_BATCH[2:]),
            "old_logp must hold log-probabilities",
        ),
    ),
    "bradley_terry_loss": (
        (
            lambda: pglib.bradley_terry_loss(torch.zeros(2), torch.zeros(3)),
            "rejected_rewards must have shape (2,), got shape (3,)",
        ),
        (
            lambda: pglib.bradley_terry_loss(torch.zeros(2, 1), torch.zeros(2, 1)),
            "chosen_rewards must have shape [B]",
        ),
        (
            lambda: pglib.bradley_terry_loss(torch.tensor([INF, 0.0]), torch.zeros(2)),
            "chosen_rewards must contain only finite numbers",
        ),
    ),
    "dpo_loss": (
        (lambda: pglib.dpo_loss(*PAIR_LOGPS, beta=0.0), "beta must be a positive real number"),
        (
            lambda: pglib.dpo_loss(*PAIR_LOGPS[:3], torch.zeros(2, requires_grad=True)),
            "ref_rejected_logps must carry no gradient",
        ),
        (
            lambda: pglib.dpo_loss(torch.ones(2), *PAIR_LOGPS[1:]),
            "policy_chosen_logps must hold log-probabilities",
        ),
        (
            lambda: pglib.dpo_loss(*PAIR_LOGPS[:2], torch.zeros(3), PAIR_LOGPS[3]),
            "ref_chosen_logps must have the shape of policy_chosen_logps, (2,), got (3,)",
        ),
    ),
    "kto_loss": (
        (
            lambda: pglib.kto_loss(*PAIR_LOGPS[:2], np.array([1, 0]), 0.0),
            "desirable must have dtype bool",
        ),
        (
            lambda: pglib.kto_loss(*PAIR_LOGPS[:2], np.array([True, False]), -0.1),
            "reference_point must be a non-negative real number",
        ),
        (
            lambda: pglib.kto_loss(*PAIR_LOGPS[:2], np.ones(2) > 0, 0.0, desirable_weight=0),
            "desirable_weight must be a positive real number",
        ),
        (
            lambda: pglib.kto_loss(*PAIR_LOGPS[:2], np.ones(2) > 0, 0.0, undesirable_weight=NAN),
            "undesirable_weight must be a finite",
        ),
        (
            lambda: pglib.kto_loss(*PAIR_LOGPS[:2], np.ones(2) > 0, 0.0, beta=-1),
            "beta must be a positive real number",
        ),
    ),
    "kto_reference_point": (
        (
            lambda: pglib.kto_reference_point(torch.zeros(2), torch.tensor([0.0, 2.0])),
            "ref_logps must hold log-probabilities",
        ),
        (lambda: pglib.kto_reference_point([0.0], [0.0]), "policy_logps must be a NumPy array"),
        (
            lambda: pglib.kto_reference_point(np.zeros(2), np.zeros(2)),
            "policy_logps must be a floating-point torch tensor",
        ),
    ),
    # --- tasks ------------------------------------------------------------------------------
    "DigitSumTask": (
        (lambda: pglib.DigitSumTask(max_digits=0), "max_digits must be a positive integer, got 0"),
        (lambda: pglib.DigitSumTask(min_target=1.5), "min_target must be a positive integer"),
        (lambda: pglib.DigitSumTask(9, 5), "max_target must be an integer >= 9, got 5"),
        (lambda: pglib.DigitSumTask(max_target=40), "max_target must be at most 9 × max_digits"),
    ),
    "DigitSumTask.targets": NO_ARGUMENTS,
    "DigitSumTask.vocab_size": NO_ARGUMENTS,
    "DigitSumTask.completion_length": NO_ARGUMENTS,
    "DigitSumTask.token_names": NO_ARGUMENTS,
    "DigitSumTask.prompts": NO_ARGUMENTS,
    "DigitSumTask.all_digit_strings": NO_ARGUMENTS,
    "DigitSumTask.decode": (
        (lambda: TASK.decode([[12, 4]]), "tokens must be a torch tensor of token ids, got list"),
        (lambda: TASK.decode(torch.tensor([12, 4])), "tokens must be a torch.long tensor [B, L]"),
        (lambda: TASK.decode(torch.tensor([[28]])), "tokens must lie in [0, 28), got values 28"),
    ),
    "DigitSumTask.reward": (
        (lambda: TASK.reward(SEQ.float()), "tokens must be a torch.long tensor [B, L]"),
        (lambda: TASK.reward(SEQ[:, :1]), "tokens must hold a prompt token and at least one"),
        (lambda: TASK.reward(torch.tensor([[4, 10]])), "tokens[:, 0] must be prompt tokens"),
        (lambda: TASK.reward(torch.tensor([[12, -1]])), "tokens must lie in [0, 28)"),
    ),
    "DigitSumTask.correct_completions": (
        (lambda: TASK.correct_completions(4), "target must be an integer in [5, 20], got 4"),
        (lambda: TASK.correct_completions(5.0), "target must be an integer in [5, 20], got 5.0"),
    ),
    "DigitSumTask.pretraining_batch": (
        (lambda: TASK.pretraining_batch(0, torch.Generator()), "batch_size must be a positive"),
        (lambda: TASK.pretraining_batch(4, 0), "generator must be a torch.Generator, got int"),
        (
            lambda: TASK.pretraining_batch(4, torch.Generator(), valid_fraction=1.5),
            "valid_fraction must be a real number in [0, 1], got 1.5",
        ),
    ),
    # --- lm ---------------------------------------------------------------------------------
    "TinyLM": (
        (lambda: pglib.TinyLM("digits"), "task must be a DigitSumTask, got str"),
        (lambda: pglib.TinyLM(TASK, d_model=0), "d_model must be a positive integer, got 0"),
        (lambda: pglib.TinyLM(TASK, d_model=10, n_heads=4), "d_model must be a multiple of"),
        (lambda: pglib.TinyLM(TASK, n_layers=100), "n_layers must be at most 16"),
    ),
    "TinyLM.forward": (
        (lambda: LM(SEQ), "tokens must be a torch.long tensor [B, L] with 1 <= L <= 4"),
        (lambda: LM(torch.tensor([[12, 40]])), "tokens must lie in [0, 28), got values 12..40"),
        (lambda: LM(torch.zeros((2, 0), dtype=torch.long)), "with 1 <= L <= 4"),
    ),
    "generate": (
        (lambda: pglib.generate(LM, TASK.prompts(), 0, generator=torch.Generator()), "max_new"),
        (lambda: pglib.generate(LM, TASK.prompts(), 4, generator=0), "generator must be a"),
        (
            lambda: pglib.generate(LM, TASK.prompts()[:, 0], 4, generator=torch.Generator()),
            "prompts must be a torch.long tensor [B, L]",
        ),
        (
            lambda: pglib.generate(torch.nn.Linear(2, 2), TASK.prompts(), 4, generator=None),
            "model must be a TinyLM, got Linear",
        ),
    ),
    "greedy_decode": (
        (lambda: pglib.greedy_decode(LM, TASK.prompts(), 5), "max_new_tokens must be at most 4"),
        (lambda: pglib.greedy_decode(LM, TASK.prompts().float(), 4), "prompts must be a torch"),
    ),
    "sequence_logprobs": (
        (lambda: pglib.sequence_logprobs(LM, SEQ, SEQ_MASK.long()), "mask must have dtype bool"),
        (lambda: pglib.sequence_logprobs(LM, SEQ, SEQ_MASK[:, :2].T), "mask must have shape"),
        (
            lambda: pglib.sequence_logprobs(LM, SEQ, torch.ones(1, 5, dtype=torch.bool)),
            "mask must be [B, T] with 1 <= T <= 4",
        ),
        (lambda: pglib.sequence_logprobs(LM, SEQ + 30, SEQ_MASK), "tokens must lie in [0, 28)"),
    ),
    "prefix_tree": (
        (lambda: pglib.prefix_tree("model"), "model must be a TinyLM, got str"),
        (lambda: pglib.prefix_tree(POLICY), "model must be a TinyLM"),
    ),
    "exact_success": ((lambda: pglib.exact_success("model"), "model must be a TinyLM, got str"),),
    "exact_greedy_success": ((lambda: pglib.exact_greedy_success(None), "model must be a TinyLM"),),
    "exact_kl": (
        (lambda: pglib.exact_kl(LM, 3), "reference must be a TinyLM, got int"),
        (
            lambda: pglib.exact_kl(LM, pglib.TinyLM(pglib.DigitSumTask(5, 9, max_digits=2))),
            "reference must be a model of the same task as model",
        ),
    ),
    "PretrainConfig": (
        (lambda: pglib.PretrainConfig(steps=0), "steps must be a positive integer, got 0"),
        (lambda: pglib.PretrainConfig(lr=NAN), "lr must be a finite positive real number"),
        (lambda: pglib.PretrainConfig(valid_fraction=-0.1), "valid_fraction must be a real"),
        (lambda: pglib.PretrainConfig(task=3), "task must be a DigitSumTask, got int"),
        (lambda: pglib.PretrainConfig(d_model=30, n_heads=4), "d_model must be a multiple of"),
    ),
    "PretrainConfig.to_dict": NO_ARGUMENTS,
    "PretrainResult": (
        (lambda: pglib.PretrainResult(LM, [1.0, NAN], 1.0), "every loss must be a finite real"),
        (lambda: pglib.PretrainResult(LM, [1.0], -1.0), "seconds must be a non-negative real"),
        (lambda: pglib.PretrainResult(None, [], 1.0), "model must be a TinyLM"),
    ),
    "pretrain": (
        (lambda: pglib.pretrain({"steps": 1}), "config must be a PretrainConfig, got dict"),
        (lambda: pglib.pretrain(pglib.PretrainConfig(), progress=1), "progress must be True"),
    ),
    # --- reward_model -----------------------------------------------------------------------
    "ScalarLM": (
        (lambda: pglib.ScalarLM("digits"), "task must be a DigitSumTask, got str"),
        (lambda: pglib.ScalarLM(TASK, d_model=10, n_heads=4), "d_model must be a multiple of"),
        (lambda: pglib.ScalarLM(TASK, n_layers=0), "n_layers must be a positive integer, got 0"),
        (lambda: pglib.ScalarLM.from_lm(SCALAR), "lm must be a TinyLM, got ScalarLM"),
        (lambda: pglib.ScalarLM.from_lm(None), "lm must be a TinyLM, got NoneType"),
    ),
    "ScalarLM.forward": (
        (lambda: SCALAR(SEQ.float()), "tokens must be a torch.long tensor [B, L]"),
        (lambda: SCALAR(torch.zeros(1, 6, dtype=torch.long)), "with 1 <= L <= 5"),
        (lambda: SCALAR(SEQ + 20), "tokens must lie in [0, 28)"),
    ),
    "reward_scores": (
        (lambda: pglib.reward_scores(LM, SEQ, SEQ_MASK), "model must be a ScalarLM, got TinyLM"),
        (lambda: pglib.reward_scores(SCALAR, SEQ, SEQ_MASK.long()), "mask must"),
        (lambda: pglib.reward_scores(SCALAR, SEQ, SEQ_MASK & False), "at least one token"),
        (lambda: pglib.reward_scores(SCALAR, SEQ, SEQ_MASK[:, :0]), "mask must be a non-empty"),
        (
            lambda: pglib.reward_scores(SCALAR, SEQ, torch.ones(1, 5, dtype=torch.bool)),
            "mask must be [B, T] with B = 1 and T < 5",
        ),
        (lambda: pglib.reward_scores(SCALAR, SEQ[0], SEQ_MASK), "tokens must be a torch.long"),
    ),
    "preference_accuracy": (
        (lambda: pglib.preference_accuracy(LM, PAIRS), "model must be a ScalarLM, got TinyLM"),
        (lambda: pglib.preference_accuracy(SCALAR, (SEQ, SEQ)), "pairs must be a PreferencePairs"),
    ),
    "RewardModelConfig": (
        (lambda: pglib.RewardModelConfig(epochs=0), "epochs must be a positive integer, got 0"),
        (lambda: pglib.RewardModelConfig(batch_size=1.5), "batch_size must be a positive integer"),
        (lambda: pglib.RewardModelConfig(lr=0.0), "lr must be a positive real number, got 0.0"),
        (lambda: pglib.RewardModelConfig(held_out=1.0), "held_out must be a real number in [0, 1)"),
        (lambda: pglib.RewardModelConfig(held_out=NAN), "held_out must be a finite real number"),
        (lambda: pglib.RewardModelConfig(seed=-1), "seed must be a non-negative integer, got -1"),
    ),
    "RewardModelConfig.to_dict": NO_ARGUMENTS,
    "RewardModelResult": (
        (lambda: pglib.RewardModelResult(LM, [], 0.5, 0.5, 1, 0, 1.0), "model must be a ScalarLM"),
        (
            lambda: pglib.RewardModelResult(SCALAR, [NAN], 0.5, 0.5, 1, 0, 1.0),
            "every loss must be a finite real",
        ),
        (
            lambda: pglib.RewardModelResult(SCALAR, [], 1.5, 0.5, 1, 0, 1.0),
            "train_accuracy must be a real number in [0, 1], got 1.5",
        ),
        (
            lambda: pglib.RewardModelResult(SCALAR, [], 0.5, 0.5, 0, 0, 1.0),
            "train_pairs must be a positive integer, got 0",
        ),
        (
            lambda: pglib.RewardModelResult(SCALAR, [], 0.5, 0.5, 1, 0, -1.0),
            "seconds must be a non-negative real",
        ),
    ),
    "train_reward_model": (
        (
            lambda: pglib.train_reward_model((SEQ, SEQ)),
            "pairs must be a PreferencePairs, got tuple",
        ),
        (lambda: pglib.train_reward_model(PAIRS, {"epochs": 1}), "config must be a RewardModel"),
        (lambda: pglib.train_reward_model(PAIRS, base=SCALAR), "base must be a TinyLM or None"),
        (lambda: pglib.train_reward_model(PAIRS, progress="no"), "progress must be True"),
        (
            lambda: pglib.train_reward_model(PAIRS, pglib.RewardModelConfig(held_out=0.9)),
            "pairs must leave at least one training pair after holding out 0.9 of them, got 1",
        ),
    ),
    "token_rewards": (
        (lambda: pglib.token_rewards(*TOKEN_BATCH[:3], SEQ_MASK.float(), 0.1), "mask must"),
        (lambda: pglib.token_rewards(*TOKEN_BATCH[:3], SEQ_MASK & False, 0.1), "at least one"),
        (
            lambda: pglib.token_rewards(TOKEN_BATCH[0][:, :3], *TOKEN_BATCH[1:3], SEQ_MASK, 0.1),
            "logp must have shape (1, 4), got shape (1, 3)",
        ),
        (
            lambda: pglib.token_rewards(
                TOKEN_BATCH[0], TOKEN_BATCH[1] * NAN, TOKEN_BATCH[2], SEQ_MASK, 0.1
            ),
            "ref_logp must contain only finite numbers",
        ),
        (
            lambda: pglib.token_rewards(*TOKEN_BATCH[:2], torch.zeros(2), SEQ_MASK, 0.1),
            "scores must have the shape of logp[:, 0], (1,), got (2,)",
        ),
        (lambda: pglib.token_rewards(*TOKEN_BATCH[:3], SEQ_MASK, -0.1), "beta must be a non-neg"),
    ),
    "token_advantages": (
        (lambda: pglib.token_advantages(*TOKEN_BATCH[:2], SEQ_MASK.long(), 0.95), "mask must"),
        (
            lambda: pglib.token_advantages(TOKEN_BATCH[0].long(), TOKEN_BATCH[1], SEQ_MASK, 0.95),
            "rewards must be a floating-point torch tensor",
        ),
        (
            lambda: pglib.token_advantages(TOKEN_BATCH[0], TOKEN_BATCH[1][:, :2], SEQ_MASK, 0.95),
            "values must have the shape of rewards, (1, 4), got (1, 2)",
        ),
        (
            lambda: pglib.token_advantages(*TOKEN_BATCH[:2], SEQ_MASK, 1.5),
            "lam must be a real number in [0, 1], got 1.5",
        ),
        (
            lambda: pglib.token_advantages(*TOKEN_BATCH[:2], SEQ_MASK, 0.9, gamma=NAN),
            "gamma must be a finite real number",
        ),
    ),
    # --- preferences ------------------------------------------------------------------------
    "PreferencePairs": (
        (lambda: pglib.PreferencePairs(SEQ.float(), SEQ, SEQ_MASK, SEQ_MASK, NO), "chosen must"),
        (lambda: pglib.PreferencePairs(SEQ, SEQ[:, :3], SEQ_MASK, SEQ_MASK, NO), "rejected must"),
        (
            lambda: pglib.PreferencePairs(SEQ, SEQ, SEQ_MASK, SEQ_MASK[:, :2], NO),
            "rejected_mask must have shape (1, 4), got shape (1, 2)",
        ),
        (lambda: pglib.PreferencePairs(SEQ, SEQ, SEQ_MASK, SEQ_MASK, NO.long()), "flipped must"),
        (
            lambda: pglib.PreferencePairs(SEQ, SEQ + 1, SEQ_MASK, SEQ_MASK, NO),
            "chosen and rejected must share each pair's prompt token",
        ),
        (lambda: pglib.PreferencePairs(SEQ[:, :1], SEQ[:, :1], NO, NO, NO), "at least one"),
    ),
    "sample_preference_pairs": (
        (lambda: pglib.sample_preference_pairs(POLICY, 4, generator=torch.Generator()), "model"),
        (
            lambda: pglib.sample_preference_pairs(LM, 0, generator=torch.Generator()),
            "n_pairs must be a positive integer, got 0",
        ),
        (
            lambda: pglib.sample_preference_pairs(
                LM, 4, label_noise=0.6, generator=torch.Generator()
            ),
            "label_noise must be a real number in [0, 0.5], got 0.6",
        ),
        (
            lambda: pglib.sample_preference_pairs(
                LM, 4, label_noise=NAN, generator=torch.Generator()
            ),
            "label_noise must be a finite real number",
        ),
        (lambda: pglib.sample_preference_pairs(LM, 4, generator=0), "generator must be a torch"),
        (
            lambda: pglib.sample_preference_pairs(LM, 10**7, generator=torch.Generator()),
            "n_pairs must be at most 1,000,000",
        ),
    ),
    "LabelledCompletions": (
        (lambda: pglib.LabelledCompletions(SEQ, SEQ_MASK.long(), NO, NO), "mask must have dtype"),
        (lambda: pglib.LabelledCompletions(SEQ[0], SEQ_MASK, NO, NO), "tokens must be a torch"),
        (lambda: pglib.LabelledCompletions(SEQ, SEQ_MASK, NO.repeat(2), NO), "desirable must"),
        (lambda: pglib.LabelledCompletions(SEQ, SEQ_MASK, NO, [0]), "flipped must be a bool"),
    ),
    "sample_labelled_completions": (
        (lambda: pglib.sample_labelled_completions(LM, 0, generator=None), "n must be a positive"),
        (
            lambda: pglib.sample_labelled_completions(
                LM, 4, label_noise=-0.1, generator=torch.Generator()
            ),
            "label_noise must be a real number in [0, 0.5], got -0.1",
        ),
        (lambda: pglib.sample_labelled_completions(LM, 4, generator=1), "generator must be a"),
        (lambda: pglib.sample_labelled_completions("lm", 4, generator=None), "model must be a"),
    ),
    # --- lm_training ------------------------------------------------------------------------
    "AlignConfig": (
        (lambda: pglib.AlignConfig("ipo"), "method must be one of"),
        (lambda: pglib.AlignConfig(group_size=1), "group_size must be an integer in [2,"),
        (lambda: pglib.AlignConfig(updates=0), "updates must be a positive integer, got 0"),
        (lambda: pglib.AlignConfig(lr=NAN), "lr must be a finite positive real number"),
        (lambda: pglib.AlignConfig(beta=-0.1), "beta must be a non-negative real"),
        (
            lambda: pglib.AlignConfig(clip_eps=0.0),
            "clip_eps must be a positive real number, got 0.0",
        ),
        (lambda: pglib.AlignConfig(epochs=0), "epochs must be a positive integer, got 0"),
        (lambda: pglib.AlignConfig(aggregation="mean"), "aggregation must be one of"),
        (lambda: pglib.AlignConfig(max_grad_norm=INF), "max_grad_norm must be a finite"),
        (lambda: pglib.AlignConfig(eval_every=0.5), "eval_every must be a positive integer"),
        (lambda: pglib.AlignConfig(seed=-1), "seed must be a non-negative integer, got -1"),
        (
            lambda: pglib.AlignConfig(prompts_per_update=1000, group_size=1000),
            "prompts_per_update × group_size must be at most",
        ),
        (lambda: pglib.AlignConfig("dpo", beta=0.0), "beta must be a positive real number"),
        (lambda: pglib.AlignConfig("dpo", online="yes"), "online must be True or False"),
        (lambda: pglib.AlignConfig("dpo", pairs=0), "pairs must be a positive integer, got 0"),
        (lambda: pglib.AlignConfig("kto", pairs=10**7), "pairs must be at most 1,000,000"),
        (lambda: pglib.AlignConfig("kto", online=True, pairs=8), "pairs applies to offline"),
        (lambda: pglib.AlignConfig("dpo", label_noise=0.7), "label_noise must be a real number"),
        (lambda: pglib.AlignConfig("kto", label_noise=NAN), "label_noise must be a finite"),
        (lambda: pglib.AlignConfig("kto", desirable_weight=0), "desirable_weight must be a"),
        (lambda: pglib.AlignConfig("kto", undesirable_weight=-1.0), "undesirable_weight must"),
        (lambda: pglib.AlignConfig("dpo", desirable_weight=1.0), "does not apply to method"),
        (lambda: pglib.AlignConfig("grpo", online=False), "online does not apply to method"),
        (lambda: pglib.AlignConfig("dpo", aggregation="token"), "aggregation does not apply"),
        (lambda: pglib.AlignConfig("ppo", gae_lambda=1.5), "gae_lambda must be a real number"),
        (lambda: pglib.AlignConfig("rlhf_ppo", gae_lambda=NAN), "gae_lambda must be a finite"),
        (lambda: pglib.AlignConfig("grpo", gae_lambda=0.9), "gae_lambda does not apply to"),
        (lambda: pglib.AlignConfig("ppo", pairs=64), "pairs does not apply to method 'ppo'"),
        (lambda: pglib.AlignConfig("ppo", aggregation="token"), "aggregation does not apply"),
        (lambda: pglib.AlignConfig("rlhf_ppo", pairs=0), "pairs must be a positive integer"),
        (lambda: pglib.AlignConfig("rlhf_ppo", label_noise=-0.1), "label_noise must be a real"),
        (lambda: pglib.AlignConfig("rlhf_ppo", online=True), "online does not apply to method"),
        (lambda: pglib.AlignConfig("ppo", beta=-1.0), "beta must be a non-negative real"),
    ),
    "AlignConfig.advantage": NO_ARGUMENTS,
    "AlignConfig.to_dict": NO_ARGUMENTS,
    "AlignHistory": (
        (lambda: pglib.AlignHistory({}, LM, LM), "config must be an AlignConfig, got dict"),
        (lambda: pglib.AlignHistory(pglib.AlignConfig(), POLICY, LM), "model must be a TinyLM"),
        (lambda: pglib.AlignHistory(pglib.AlignConfig(), LM, None), "reference must be a TinyLM"),
        (
            lambda: pglib.AlignHistory(pglib.AlignConfig(), LM, LM, reward_model=LM),
            "reward_model must be a ScalarLM or None, got TinyLM",
        ),
    ),
    "AlignHistory.to_dict": NO_ARGUMENTS,
    "align": (
        (lambda: pglib.align({"method": "grpo"}), "config must be an AlignConfig, got dict"),
        (lambda: pglib.align(pglib.AlignConfig(), 3), "callback must be callable or None"),
        (lambda: pglib.align(pglib.AlignConfig(), base=POLICY), "base must be a TinyLM or None"),
        (lambda: pglib.align(pglib.AlignConfig(), progress="no"), "progress must be True"),
        (
            lambda: pglib.align(pglib.AlignConfig(prompts_per_update=17), base=LM),
            "prompts_per_update must be at most the task's 16 prompts, got 17",
        ),
        (
            lambda: pglib.align(pglib.AlignConfig("rlhf_ppo"), reward_model=LM),
            "reward_model must be a ScalarLM or None, got TinyLM",
        ),
        (
            lambda: pglib.align(pglib.AlignConfig("ppo"), reward_model=SCALAR),
            "reward_model applies to method 'rlhf_ppo' only; leave it None for 'ppo'",
        ),
        (
            lambda: pglib.align(
                pglib.AlignConfig("rlhf_ppo", prompts_per_update=4),
                base=pglib.TinyLM(pglib.DigitSumTask(5, 9, max_digits=2)),
                reward_model=SCALAR,
            ),
            "reward_model must be a model of base's task",
        ),
    ),
    # --- checkpoints ------------------------------------------------------------------------
    "save_checkpoint": (
        (
            lambda: pglib.save_checkpoint(TMP / "c", {"w": torch.full((2,), NAN)}, {"kind": "x"}),
            "tensor 'w' must contain only finite numbers",
        ),
        (
            lambda: pglib.save_checkpoint(TMP / "c", {"w": torch.zeros(2)}, {"size": 3}),
            'architecture must be a dict with a "kind" string',
        ),
        (
            lambda: pglib.save_checkpoint(TMP, {"w": torch.zeros(2)}, {"kind": "x"}),
            "path must be a file path, got the directory",
        ),
    ),
    "load_checkpoint": (
        (lambda: pglib.load_checkpoint(_bad_checkpoint(TMP, b"")), "is empty (0 bytes)"),
        (lambda: pglib.load_checkpoint(_bad_checkpoint(TMP, b"\x80\x04K\x01.")), "is a pickle"),
        (lambda: pglib.load_checkpoint(3), "path must be a file path"),
    ),
    "save_policy": (
        (lambda: pglib.save_policy(torch.nn.Linear(2, 2), TMP / "p"), "policy must be an MLP"),
    ),
    "load_policy": (
        (
            lambda: pglib.load_policy(_bad_checkpoint(TMP, b"\x08" + b"\x00" * 7 + b"{}")),
            "is truncated",
        ),
        (lambda: pglib.load_policy(TMP / "missing"), "does not exist"),
    ),
    "save_lm": (
        (lambda: pglib.save_lm(POLICY, TMP / "lm"), "model must be a TinyLM, got MLPCategorical"),
        (lambda: pglib.save_lm(LM, TMP), "path must be a file path, got the directory"),
    ),
    "load_lm": (
        (lambda: pglib.load_lm(TMP / "missing"), "does not exist"),
        (lambda: pglib.load_lm(_bad_checkpoint(TMP, b"\x80\x04K\x01.")), "is a pickle"),
    ),
    "load_pretrained_lm": NO_ARGUMENTS,
    # --- plotting ---------------------------------------------------------------------------
    "use_house_style": NO_ARGUMENTS,
    "new_figure": (
        (lambda: pglib.new_figure(60, 60), "nrows * ncols must be at most 100"),
        (lambda: pglib.new_figure(width=NAN), "width (inches) must be a finite real number"),
        (lambda: pglib.new_figure(1.5), "nrows must be a positive integer, got 1.5"),
    ),
    "plot_gridworld": (
        (lambda: pglib.plot_gridworld(WORLD, values=np.full(9, NAN)), "values must contain only"),
        (
            lambda: pglib.plot_gridworld(WORLD, policy=np.full((9, 5), 0.5)),
            "every row policy[s, :] must be a probability distribution",
        ),
        (lambda: pglib.plot_gridworld("world"), "world must be a GridWorld"),
        (
            lambda: pglib.plot_gridworld(WORLD, values=np.zeros(9), value_format="{:d}"),
            "value_format must format one value",
        ),
    ),
    "plot_grid_path": (
        (lambda: pglib.plot_grid_path(WORLD, [0, 1.5], ax=plt.gca()), "states must lie in"),
        (lambda: pglib.plot_grid_path(WORLD, [0, 1], ax=None), "ax must be a matplotlib Axes"),
        (lambda: pglib.plot_grid_path(WORLD, [0], ax=plt.gca(), offset=NAN), "offset must be"),
    ),
    "ArrayTable": (
        (
            lambda: pglib.ArrayTable(np.zeros((1, 1)), rows=["a"], cols=["b"], fmt="{:q}"),
            "fmt must format one value",
        ),
        (lambda: pglib.ArrayTable(np.zeros((1, 1)), rows="a", cols=["b"]), "rows must be a list"),
    ),
    "plot_learning_curves": (
        (
            lambda: pglib.plot_learning_curves({"a": [([0, 200, 100], [1.0, 2.0, 3.0])]}),
            "steps of 'a' must be strictly increasing, got 200 then 100 at index 2",
        ),
        (lambda: pglib.plot_learning_curves({"a": [([0, 1], [1.0, INF])]}), "must be finite or"),
        (lambda: pglib.plot_learning_curves({"a": [([0, NAN], [1.0, 2.0])]}), "steps must contain"),
        (lambda: pglib.plot_learning_curves({}), "runs must map each label"),
    ),
    # --- interactive ------------------------------------------------------------------------
    "slider": (
        (lambda: pglib.slider(_figure), "slider takes exactly one parameter"),
        (lambda: pglib.slider(3, gamma=[0.5]), "figure_fn must be callable"),
        (lambda: pglib.slider(_figure, gamma=[NAN]), "gamma values must be finite"),
        (lambda: pglib.slider(_figure, gamma=list(range(31))), "may hold at most 30 values"),
    ),
    "Slider": (
        (lambda: pglib.Slider(_figure, "gamma", []), "must hold at least one value"),
        (lambda: pglib.Slider(_figure, "gamma", [True]), "values must be numbers or strings"),
        (lambda: pglib.Slider(_figure, 3, [0.5]), "name must be a parameter name"),
        (lambda: pglib.Slider(_figure, "gamma", [0.5], description=5), "description must be"),
    ),
    "Slider.render": ((lambda: _slider_returning(3).render(0.5), "must return a matplotlib"),),
    "Slider.aria_label": NO_ARGUMENTS,
    "Slider.to_html": NO_ARGUMENTS,
    "Slider.widget": NO_ARGUMENTS,
    "figure_png": (
        (lambda: pglib.figure_png("not a figure"), "fig must be a matplotlib Figure, got str"),
    ),
    # --- book -------------------------------------------------------------------------------
    "glue": (
        (lambda: pglib.glue("not an identifier", "1"), "name must be an identifier"),
        (lambda: pglib.glue("steps", 3), "text must be a non-empty string"),
    ),
    "check_claim": (
        (lambda: pglib.check_claim(3, True, "1"), "claim must be a non-empty sentence, got 3"),
        (lambda: pglib.check_claim("c", True, 1), "measured must be a non-empty string, got 1"),
    ),
}


def _public_callables() -> dict[str, Callable[..., object]]:
    """Every public function and class in pglib.__all__, and every public method or property
    defined by those classes, by name."""
    found: dict[str, Callable[..., object]] = {}
    for name in pglib.__all__:
        obj = getattr(pglib, name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue  # constants and type aliases take no input
        found[name] = obj
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                if inspect.isfunction(member) or isinstance(member, property):
                    found[f"{name}.{attr}"] = member
    return found


def _takes_arguments(member: object) -> bool:
    if isinstance(member, property):
        return False
    parameters = list(inspect.signature(member).parameters)
    return bool(parameters and parameters != ["self"])


def test_every_public_callable_has_a_row() -> None:
    public = _public_callables()
    missing = sorted(set(public) - set(ROWS))
    assert missing == [], f"public callables without a row in ROWS: {missing}"
    stale = sorted(set(ROWS) - set(public))
    assert stale == [], f"rows for names that are not public: {stale}"
    silent = sorted(name for name, m in public.items() if _takes_arguments(m) and not ROWS[name])
    assert silent == [], f"callables with arguments but no bad input: {silent}"
    wrong = sorted(name for name, m in public.items() if not _takes_arguments(m) and ROWS[name])
    assert wrong == [], f"rows for callables that take no arguments: {wrong}"


def _cases() -> list[object]:
    """One pytest case per row entry, named ``<callable>-<index>``; xfail marks are kept."""
    cases = []
    for name, row in ROWS.items():
        for index, case in enumerate(row):
            marked = hasattr(case, "marks")  # a pytest.param (itself a tuple) or a plain pair
            values, marks = (case.values, case.marks) if marked else (case, ())
            cases.append(pytest.param(*values, marks=marks, id=f"{name}-{index}"))
    return cases


@pytest.mark.parametrize(("call", "fragment"), _cases())
def test_bad_input_is_a_value_error_that_says_what_was_expected(call, fragment: str) -> None:
    try:
        with pytest.raises(ValueError) as info:
            call()
    finally:
        plt.close("all")
    assert fragment in str(info.value)


# --- hypothesis: NaN/inf in is a ValueError; finite valid in gives finite out ---------------

PROPERTY = settings(max_examples=20, deadline=None)
finite = st.floats(-1e6, 1e6, allow_nan=False)
non_finite = st.sampled_from([NAN, INF, -INF])


def _poisoned(values: np.ndarray, index: int, bad: float) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    out.flat[index % out.size] = bad
    return out


NUMERIC: dict[str, Callable[[np.ndarray], object]] = {
    "discounted_return": lambda x: pglib.discounted_return(x[:3], 0.9),
    "reward_to_go": lambda x: pglib.reward_to_go(torch.as_tensor(x[:6].reshape(3, 2)), 0.9),
    "gae values": lambda x: pglib.gae(ONES, x[:3], ONES, 0.9, 0.9),
    "q_values": lambda x: pglib.q_values(MDP, x[:9]),
    "greedy_policy": lambda x: pglib.greedy_policy(x[:10].reshape(2, 5)),
    "exact_policy_gradient": lambda x: pglib.exact_policy_gradient(MDP, x[:45].reshape(9, 5)),
    "policy_gradient_theorem": lambda x: pglib.policy_gradient_theorem(
        MDP, THETA, state_weights=x[:9]
    ),
    "estimator_weights": lambda x: pglib.estimator_weights(
        MDP, THETA, TRAJ, "reward_to_go_baseline", baseline=x[:9]
    ),
    "trajectory_gradients": lambda x: pglib.trajectory_gradients(
        THETA, TRAJ, torch.as_tensor(x[:12].reshape(4, 3))
    ),
    "gradient_statistics": lambda x: pglib.gradient_statistics(torch.as_tensor(x[:8])),
    "relative_error": lambda x: pglib.relative_error(x[:4], np.ones(4)),
    "angle_degrees": lambda x: pglib.angle_degrees(x[:4], np.ones(4)),
    "bias_in_standard_errors": lambda x: pglib.bias_in_standard_errors(
        STATS, torch.as_tensor(x[:45].reshape(9, 5))
    ),
    "MLPCategoricalPolicy.forward": lambda x: POLICY(torch.as_tensor(x[:8].reshape(2, 4))),
    "MLPCategoricalPolicy.sample": lambda x: POLICY.sample(torch.as_tensor(x[:8].reshape(2, 4))),
    "DiagonalGaussianPolicy.forward": lambda x: GAUSSIAN(torch.as_tensor(x[:4])),
    "TabularSoftmaxPolicy": lambda x: pglib.TabularSoftmaxPolicy(x[:4].reshape(2, 2)),
    "Episode": lambda x: pglib.Episode(np.zeros((4, 1)), np.zeros(3), x[:3], True, False),
    "TabularMDP R": lambda x: pglib.TabularMDP(MDP.P, x[:45].reshape(9, 5), 0.9, MDP.rho0),
    "plot_gridworld": lambda x: pglib.plot_gridworld(WORLD, values=x[:9]),
    "group_advantages": lambda x: pglib.group_advantages(torch.as_tensor(x[:8].reshape(2, 4))),
}


@pytest.mark.parametrize("name", sorted(NUMERIC))
@PROPERTY
@given(values=st.lists(finite, min_size=45, max_size=45), index=st.integers(0, 44), bad=non_finite)
def test_nan_or_inf_in_is_a_value_error(name: str, values: list, index: int, bad: float) -> None:
    x = _poisoned(np.array(values), index % _used(name), bad)
    try:
        with pytest.raises(ValueError, match="finite"):
            NUMERIC[name](x)
    finally:
        plt.close("all")


def _used(name: str) -> int:
    """How many leading entries of the 45 drawn values the call reads."""
    sizes = {"discounted_return": 3, "gae values": 3, "q_values": 9, "greedy_policy": 10,
             "policy_gradient_theorem": 9, "estimator_weights": 9, "trajectory_gradients": 12,
             "gradient_statistics": 8, "relative_error": 4, "angle_degrees": 4,
             "MLPCategoricalPolicy.forward": 8, "MLPCategoricalPolicy.sample": 8,
             "DiagonalGaussianPolicy.forward": 4, "TabularSoftmaxPolicy": 4, "Episode": 3,
             "reward_to_go": 6, "plot_gridworld": 9, "group_advantages": 8}  # fmt: skip
    return sizes.get(name, 45)


def _all_finite(result: object) -> bool:
    if isinstance(result, (tuple, list)):
        return all(_all_finite(item) for item in result)
    if isinstance(result, torch.Tensor):
        return bool(torch.isfinite(result.detach().double()).all())
    if isinstance(result, np.ndarray):
        return bool(np.isfinite(result).all())
    if isinstance(result, float):
        return math.isfinite(result)
    if isinstance(result, pglib.GradientStatistics):
        return _all_finite([result.mean, result.standard_error, float(result.total_variance)])
    return True


@pytest.mark.parametrize(
    "name", sorted(set(NUMERIC) - {"bias_in_standard_errors", "plot_gridworld", "Episode"})
)
@PROPERTY
@given(values=st.lists(finite, min_size=45, max_size=45))
def test_finite_valid_input_gives_finite_output(name: str, values: list) -> None:
    """``bias_in_standard_errors`` is left out on purpose: a zero standard error with a mean
    that differs from the exact value is documented to give ±inf."""
    x = np.array(values)
    if name in ("relative_error", "angle_degrees") and not x[:4].any():
        x[0] = 1.0  # a zero vector is bad input, tested above
    assert _all_finite(NUMERIC[name](x)), name


@PROPERTY
@given(
    u=st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=3, max_size=3),
    v=st.lists(st.floats(-1e300, 1e300, allow_nan=False), min_size=3, max_size=3),
)
def test_angles_and_relative_errors_survive_the_whole_float_range(u: list, v: list) -> None:
    """Entries near 1e±200 overflow or underflow when squared; the answers must not."""
    u_arr, v_arr = np.array(u), np.array(v)
    if not (u_arr.any() and v_arr.any()):
        return
    angle = pglib.angle_degrees(u_arr, v_arr)
    assert 0.0 <= angle <= 180.0
    largest_difference = float(np.abs(u_arr - v_arr).max())
    with np.errstate(over="ignore"):
        representable = largest_difference / float(np.abs(v_arr).max()) < 1e300
    if representable:  # otherwise the true relative error exceeds the float range
        assert math.isfinite(pglib.relative_error(u_arr, v_arr))


def test_huge_orthogonal_and_diagonal_vectors_have_their_true_angle() -> None:
    assert pglib.angle_degrees(np.array([1e200, 0.0]), np.array([1e200, 1e200])) == pytest.approx(
        45
    )
    assert pglib.angle_degrees(np.array([1e-200, 0.0]), np.array([0.0, 1e-200])) == pytest.approx(
        90
    )


@PROPERTY
@given(gamma=st.sampled_from([np.float32(0.5), np.float64(0.5), torch.tensor(0.5), 0.5, 1]))
def test_every_real_scalar_type_is_a_valid_gamma(gamma: object) -> None:
    expected = pglib.reward_to_go(ONES, float(gamma))
    assert np.array_equal(pglib.reward_to_go(ONES, gamma), expected)
    assert pglib.TabularMDP(MDP.P, MDP.R, gamma, MDP.rho0).gamma == float(gamma)
