"""transformers' checks on values, run as an eager run on the same inputs runs them.

transformers takes a model's compile-safe path when it meets a fake tensor (`is_tracing`): it builds an explicit
attention mask where an eager run finds the padding mask all ones, or the position ids of one unpacked sequence,
and skips the mask. A shape-only count must count what the eager run computes. So while a count runs, a fake
tensor whose values the count knows (computed from the inputs alone: values.py) is not "tracing" to transformers,
and its check reads those values; a fake tensor of unknown values stays tracing (the compile-safe path).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from .values import Values

CHECKS = "transformers.utils.import_utils"  # where is_tracing looks up is_fake_tensor, at each call


@contextlib.contextmanager
def eager_checks_on_known_values(values: Values) -> Iterator[None]:
    """transformers (when imported) sees a fake tensor of known values as the eager run's tensor, for the count."""
    module = sys.modules.get(CHECKS)
    original = getattr(module, "is_fake_tensor", None)
    if module is None or original is None:
        yield
        return

    def is_fake_tensor(x: Any) -> bool:
        return bool(original(x)) and values.value_of(x) is None

    module.is_fake_tensor = is_fake_tensor  # type: ignore[attr-defined]
    try:
        yield
    finally:
        module.is_fake_tensor = original  # type: ignore[attr-defined]
