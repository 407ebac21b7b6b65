"""LLM workloads: `count_generate`, generation counted as a prefill and decode steps, each a count of its own."""

from .generate import GenerateReport, Step, count_generate

__all__ = ["GenerateReport", "Step", "count_generate"]
