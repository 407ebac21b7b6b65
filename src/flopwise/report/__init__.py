"""The Report: frozen data and queries (no rendering), assembled from a count, with effective MACs and MoE records."""

from .report import ModuleRow, Report

__all__ = ["ModuleRow", "Report"]
