"""The arena as environments: native PufferLib (ArenaEnv), Gymnasium and PettingZoo views."""

from envs.arena_env import ArenaEnv, MatchStats
from envs.views import ArenaGymEnv, ArenaParallelEnv

__all__ = ["ArenaEnv", "ArenaGymEnv", "ArenaParallelEnv", "MatchStats"]
