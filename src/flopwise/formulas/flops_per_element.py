"""FLOPs per element of the non-contraction functions, in one place.

The guides (the per-layer formulas the project grew from) give ReLU 1, tanh 5 (two exps, a subtract, an add,
a divide), sigmoid 4 (negate, exp, add, divide), batch norm 4 (subtract, divide, scale, shift), softmax 3n−1
per row (n exps, n−1 adds, n divides), average pooling kernel+1 per output and dropout 0 at inference. The
rest follow the textbook definition of the function: one FLOP per add, subtract, multiply, divide, compare or
evaluation of an elementary function (exp, log, sqrt, erf, sin…). Fused kernels (attention, RNN cells, encoder
layers) use the same numbers as the ops they fuse. Costs per row (softmax 3n−1, log-softmax 3n, their
gradients 4n−1) are written in their formulas in `activation.py`, where the explanation shows them. Integer
and boolean ops (bitwise, logical) are not floating point: 0 FLOPs.
"""

# — activations —
RELU = 1  # max(x, 0): one compare
TANH = 5  # (e^x − e^−x) / (e^x + e^−x): two exps, a subtract, an add, a divide
SIGMOID = 4  # 1 / (1 + e^−x): negate, exp, add, divide
GELU = 5  # 0.5·x·(1 + erf(x/√2)): divide, erf, add, multiply, multiply
GELU_TANH = 13  # 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): x³ (2), ·c, +x, ·√(2/π), tanh (5), +1, ·x, ·0.5
SILU = SIGMOID + 1  # x · sigmoid(x)
MISH = 3 + TANH + 1  # x · tanh(log(1 + e^x)): exp, add, log, tanh, multiply
SOFTPLUS = 3  # log(1 + e^x)
LEAKY_RELU = 2  # x if x > 0 else a·x: compare, multiply
ELU = 4  # x if x > 0 else a·(e^x − 1): compare, exp, subtract, multiply
SELU = ELU + 1  # scale · elu(x)
HARDTANH = 2  # clamp to [min, max]: two compares
HARDSIGMOID = 4  # clamp(x + 3, 0, 6) / 6: add, two compares, divide
HARDSWISH = HARDSIGMOID + 1  # x · hardsigmoid(x)

# — complex elementwise arithmetic, in real FLOPs per complex element (what the kernel computes) —
COMPLEX_ADD = 2  # (a + bi) ± (c + di): two real adds
COMPLEX_MUL = 6  # (ac − bd) + (ad + bc)i: 4 multiplies, 2 adds
COMPLEX_DIV = 11  # ((ac + bd) + (bc − ad)i) / (c² + d²): 6 multiplies, 3 adds, 2 divides
COMPLEX_NEG = 2  # −a − bi: two negations

# — gradients of activations, per element of the gradient —
RELU_BACKWARD = 1  # g if y > 0 else 0: one compare (select)
SIGMOID_BACKWARD = 3  # g · y · (1 − y)
TANH_BACKWARD = 3  # g · (1 − y²)
GELU_BACKWARD = 11  # g·(Φ(x) + x·φ(x)): Φ as in GELU (4); φ = e^(−x²/2)/√(2π): square, ·(−½), exp, ·c (4); x·φ, +, ·g
SILU_BACKWARD = SIGMOID + 5  # s = σ(x); g · s · (1 + x·(1 − s)): subtract, multiply, add, multiply, multiply
HARDTANH_BACKWARD = 2  # two compares
HARDSIGMOID_BACKWARD = 3  # two compares, g/6
HARDSWISH_BACKWARD = 5  # two compares; g·(x/3 + 0.5): divide, add, multiply
LEAKY_RELU_BACKWARD = 2  # compare, multiply
ELU_BACKWARD = 3  # compare; g·(y + a) on the negative side: add, multiply

# — normalization —
BATCH_NORM = 4  # (x − mean) / sqrt(var + eps) · γ + β, statistics given: subtract, divide, scale, shift
BN_STATS = 4  # training: mean (add), centre (subtract), square, add into the variance
BN_PER_CHANNEL = 8  # training: two divides (mean, var), add eps, rsqrt; running mean/var updates (2 each)
LAYER_NORM = 7  # per element: add (mean), subtract, square, add (var), · rstd, · γ, + β
LAYER_NORM_ROW = 4  # per row (normalized group): divide (mean), divide (var), add eps, rsqrt
RMS_NORM = 4  # per element: square, add, · rstd, · γ
RMS_NORM_ROW = 3  # per row: divide, add eps, rsqrt
NORM_BACKWARD_INPUT = 8  # per element: g·γ, x̂ (2), g·γ·x̂, two row sums (2), subtract twice with a multiply (·rstd)
NORM_BACKWARD_WEIGHT = 2  # per element: g·x̂, sum
NORM_BACKWARD_BIAS = 1  # per element: sum of g

# — interpolation, per output element —
INTERPOLATE = {"nearest": 0, "linear": 3, "bilinear": 7, "trilinear": 15, "bicubic": 31}  # k weights: k·mul + (k−1)·add
GRID_SAMPLE_COORDS = 10  # per output position: unnormalize 2 coords (2 each), 2 floors, 4 weight subtractions

# — recurrent cells, per hidden unit and time step (bias adds are counted apart, as kind "bias") —
# LSTM: 4 gate sums (W_ih·x + W_hh·h), 3 sigmoids + 2 tanh (3·4 + 2·5 = 22), c' = f·c + i·g (3), h' = o·tanh(c') (1)
LSTM_CELL = 4 + 3 * SIGMOID + 2 * TANH + 3 + 1
# GRU: 2 gate sums (r, z), r ⊙ (W_hn·h) and its add (2), 2 sigmoids + 1 tanh (13), h' = (1 − z)·n + z·h (4)
GRU_CELL = 2 + 2 + 2 * SIGMOID + TANH + 4
RNN_TANH_CELL = 1 + TANH  # gate sum, tanh
RNN_RELU_CELL = 1 + RELU  # gate sum, relu
