"""Search strategies (installed as ``searchkit.algorithms``); one module per strategy."""

from searchkit.algorithms.baseline import Baseline
from searchkit.algorithms.best_of_n import BestOfN

__all__ = ["Baseline", "BestOfN"]
