"""Formulas grouped by op family; importing this package registers them all."""

from . import attention, conv, matmul, movement, pointwise, rnn  # noqa: F401
