"""Denoising backends: the analytic world (no weights) and Wan2.1 through diffusers."""

from searchkit.backends.analytic import AnalyticBackend
from searchkit.backends.wan import WanBackend
from searchkit.registry import register_backend

register_backend("analytic", AnalyticBackend)
register_backend("wan", WanBackend)

__all__ = ["AnalyticBackend", "WanBackend"]
