"""FLOPs per element of the non-contraction functions, in one place.

The guide `seeds/003` gives ReLU 1, tanh 5 (two exps, a subtract, an add, a divide), sigmoid 4 (negate, exp,
add, divide), batch norm 4 (subtract, divide, scale, shift) and softmax 3n−1 per row (n exps, n−1 adds,
n divides). The rest follow the textbook definition of the function, one FLOP per add, multiply, divide,
compare or elementary-function evaluation. Fused kernels (attention, RNN cells, encoder layers) use the same
numbers as the ops they fuse.
"""

RELU = 1  # max(x, 0): one compare
TANH = 5  # (e^x − e^−x) / (e^x + e^−x)
SIGMOID = 4  # 1 / (1 + e^−x)
GELU = 8  # erf form: 0.5·x·(1 + erf(x/√2)): divide, erf, add, multiply, multiply (erf counted as 4)
SILU = 5  # x · sigmoid(x)
SOFTMAX_PER_ROW_EXTRA = -1  # 3n − 1 per row of n: n exps, n−1 adds, n divides
BATCH_NORM = 4  # (x − mean) / sqrt(var + eps) · γ + β, statistics folded
LAYER_NORM = 8  # per element: mean (add), centre (sub), square, add, normalize (mul), scale, shift; + rsqrt per row


def softmax(rows: int, n: int) -> int:
    return rows * (3 * n - 1)

# Recurrent cells, per hidden unit and time step (bias adds are counted apart, as kind "bias"):
# LSTM: 4 gate sums (W_ih·x + W_hh·h), 3 sigmoids + 2 tanh (3·4 + 2·5 = 22), c' = f·c + i·g (3), h' = o·tanh(c') (1)
LSTM_CELL = 4 + 3 * SIGMOID + 2 * TANH + 3 + 1
# GRU: 2 gate sums (r, z), r ⊙ (W_hn·h) and its add (2), 2 sigmoids + 1 tanh (13), h' = (1 − z)·n + z·h (4)
GRU_CELL = 2 + 2 + 2 * SIGMOID + TANH + 4
RNN_TANH_CELL = 1 + TANH  # gate sum, tanh
RNN_RELU_CELL = 1 + RELU  # gate sum, relu
