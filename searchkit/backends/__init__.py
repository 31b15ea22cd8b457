"""Denoising backends: the analytic world (no weights), and through diffusers the Wan family
(video) and SD3 (images)."""

from searchkit.backends.analytic import AnalyticBackend
from searchkit.backends.sd3 import SD3Backend
from searchkit.backends.wan import WanBackend
from searchkit.registry import register_backend

register_backend("analytic", AnalyticBackend)
register_backend("wan", WanBackend)
register_backend("sd3", SD3Backend)

__all__ = ["AnalyticBackend", "SD3Backend", "WanBackend"]
