"""LLM workloads: generation split into prefill and decode steps; mixture-of-experts routing."""

from .generate import GenerateReport, Step, count_generate

__all__ = ["GenerateReport", "Step", "count_generate"]
