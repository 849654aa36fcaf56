"""Self-play league: frozen snapshots of the learner as opponents, a curriculum, population-based training.

- league/pool.py: OpponentPool, the snapshots and bots opponents are drawn from, with the
  learner's record against each (prioritisation, ratings).
- league/curriculum.py: stages (ring size, opponent mix, rewards) and the promotion rule.
- league/env.py: LeagueEnv, the learner's rows of rings whose other slots the pool plays.
- league/league.py: League, the three together as train.py drives them.
- league/pbt.py: population-based training of K learners (``python -m league.pbt``).

docs/league.md explains the design and the measured results.
"""

from league.curriculum import Curriculum, Stage, resolve_stages
from league.env import LeagueEnv
from league.league import League
from league.pool import OpponentPool

__all__ = ["Curriculum", "League", "LeagueEnv", "OpponentPool", "Stage", "resolve_stages"]
