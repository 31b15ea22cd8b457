"""Search strategies (installed as ``searchkit.algorithms``); one module per strategy."""

if __name__ != "searchkit.algorithms":  # the folder is installed as a subpackage of searchkit only
    raise ImportError(
        f"the algorithms/ folder installs as searchkit.algorithms: import searchkit.algorithms, "
        f"not {__name__} (one module must not have two identities)"
    )


from searchkit.algorithms.baseline import Baseline
from searchkit.algorithms.beam_search import BeamSearch
from searchkit.algorithms.best_of_n import BestOfN
from searchkit.algorithms.evo_search import EvoSearch
from searchkit.algorithms.fk_steering import FKSteering
from searchkit.algorithms.free_init import FreeInit
from searchkit.algorithms.freq_prior import FreqPrior
from searchkit.algorithms.noise_optimization import NoiseOptimization
from searchkit.algorithms.particle_filter import ParticleFilter
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
    "FreqPrior",
    "NoiseOptimization",
    "ParticleFilter",
    "ZeroOrderSearch",
]
