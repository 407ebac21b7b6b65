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
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .values import Values

CHECKS = "transformers.utils.import_utils"  # where is_tracing looks up is_fake_tensor, at each call

# The stores of the counts running now (several threads may count: a parallel plan takes no process-wide lock),
# and transformers' own function, put back when the last of them ends.
_stores: list[Values] = []
_original: list[Callable[[Any], bool]] = []
_lock = threading.Lock()


def _is_fake_tensor(x: Any) -> bool:
    return bool(_original[0](x)) and all(store.value_of(x) is None for store in list(_stores))


@contextlib.contextmanager
def eager_checks_on_known_values(values: Values) -> Iterator[None]:
    """transformers (when imported) sees a fake tensor of known values as the eager run's tensor, for the count."""
    module = sys.modules.get(CHECKS)
    names = vars(module) if module is not None else {}
    if "is_fake_tensor" not in names:
        yield
        return
    with _lock:
        if not _stores:
            _original[:] = [names["is_fake_tensor"]]
            names["is_fake_tensor"] = _is_fake_tensor
        _stores.append(values)
    try:
        yield
    finally:
        with _lock:
            _stores.remove(values)
            if not _stores:
                names["is_fake_tensor"] = _original.pop()
