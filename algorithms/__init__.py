"""Search strategies (installed as ``searchkit.algorithms``); one module per strategy."""

from searchkit.algorithms.baseline import Baseline
from searchkit.algorithms.best_of_n import BestOfN
from searchkit.algorithms.rgrp import RGRP

__all__ = ["Baseline", "BestOfN", "RGRP"]
