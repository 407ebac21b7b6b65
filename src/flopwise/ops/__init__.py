"""Formulas grouped by op family; importing this package registers them all."""

from . import (  # noqa: F401
    activation,
    attention,
    attention_backward,
    c10d,
    conv,
    gather,
    matmul,
    misc,
    movement,
    norm,
    pointwise,
    pool,
    profiler,
    reduction,
    rnn,
    upsample,
)
