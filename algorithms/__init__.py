"""Search strategies (installed as ``searchkit.algorithms``); one module per strategy."""

from searchkit.algorithms.baseline import Baseline
from searchkit.algorithms.beam_search import BeamSearch
from searchkit.algorithms.best_of_n import BestOfN
from searchkit.algorithms.evo_search import EvoSearch
from searchkit.algorithms.fk_steering import FKSteering
from searchkit.algorithms.free_init import FreeInit
from searchkit.algorithms.noise_optimization import NoiseOptimization
from searchkit.algorithms.rgrp import RGRP
from searchkit.algorithms.zero_order import ZeroOrderSearch

__all__ = [
    "RGRP",
    "Baseline",
    "BeamSearch",
    "BestOfN",
    "EvoSearch",
    "FKSteering",
    "FreeInit",
    "NoiseOptimization",
    "ZeroOrderSearch",
]
