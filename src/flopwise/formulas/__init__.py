"""Formulas grouped by op family; importing this package registers them all."""

from . import (  # noqa: F401
    activation,
    attention,
    attention_backward,
    c10d,
    catalog,
    collectives,
    conv,
    foreach,
    gather,
    grouped_mm,
    integer_conversion,
    linalg,
    matmul,
    misc,
    movement,
    norm,
    pointwise,
    pool,
    prims,
    profiler,
    quantized,
    quantized_elementwise,
    quantized_rnn,
    reduction,
    rnn,
    upsample,
    varlen_attention,
    vision,
)

prims.register()  # after every family: prims reuse the aten entries
