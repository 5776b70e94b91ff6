"""pglib: the small, typed, tested library behind the policy-gradient textbook.

Every public name is re-exported here, so ``import pglib`` is all a chapter needs.
Each module owns one job (see ``DESIGN.md``); its docstrings name the chapter that
introduces it.
"""

from pglib import (
    actor_critic,
    alignment,
    book,
    checkpoints,
    episodes,
    gradients,
    gridworld,
    interactive,
    lm,
    lm_training,
    mdp,
    plotting,
    policies,
    ppo,
    preferences,
    reinforce,
    returns,
    reward_model,
    rollouts,
    tasks,
    training,
)
from pglib.actor_critic import *
from pglib.alignment import *
from pglib.book import *
from pglib.checkpoints import *
from pglib.episodes import *
from pglib.gradients import *
from pglib.gridworld import *
from pglib.interactive import *
from pglib.lm import *
from pglib.lm_training import *
from pglib.mdp import *
from pglib.plotting import *
from pglib.policies import *
from pglib.ppo import *
from pglib.preferences import *
from pglib.reinforce import *
from pglib.returns import *
from pglib.reward_model import *
from pglib.rollouts import *
from pglib.tasks import *
from pglib.training import *

__version__ = "0.1.0"

_MODULES = (
    episodes,
    gridworld,
    mdp,
    returns,
    policies,
    gradients,
    rollouts,
    training,
    reinforce,
    actor_critic,
    ppo,
    tasks,
    lm,
    preferences,
    alignment,
    reward_model,
    lm_training,
    checkpoints,
    plotting,
    interactive,
    book,
)

__all__ = ["__version__", *(name for module in _MODULES for name in module.__all__)]
