"""The training-FLOPs formulas people quote, beside the exact count of a transformer's train step.

Per step of D = batch·T tokens (T the sequence length), in FLOPs, with L layers, d the model width, H heads of
size Q, V the vocabulary and N the parameters:

- 6·N·D, N = all parameters (Chinchilla; Hoffmann et al. 2022);
- 6·N·D, N = non-embedding parameters (Kaplan et al. 2020, C ≈ 6ND);
- (6·N + 12·L·H·Q·T)·D (PaLM, Chowdhery et al. 2022, appendix B), N = all parameters;
- 72·B·T·L·d²·(1 + T/(6d) + V/(12·L·d)) (Megatron-LM, Narayanan et al. 2021, without recomputation).

The count they are set beside is the step's contractions, 2·MACs of forward and backward, as flopwise counts
them (dense attention). For a transformer whose embeddings are trainable it is exactly

    count = 6·D·W + 12·L·H·Q·T·D

W being the weights used in matmuls (every Linear/Conv1D weight, plus the LM head where it is tied to the
embedding); backward is twice forward, since even the first layer's input gradient is needed (to reach the
embedding). Each formula's difference from the count is given as the terms it is made of, and they sum to it
exactly:

- embedding lookups: parameters counted as 6 FLOPs per token that are read, not multiplied (the token and
  position embeddings, less a tied LM head, which is a real matmul);
- biases and norm scales: parameters with no MACs;
- LM head: a matmul that N leaves out when it excludes the (tied) embedding;
- attention products QKᵀ and A·V: 12·L·H·Q·T per token, absent from 6·N·D (a causal mask halves them:
  convention "causal");
- matmul weights assumed: Megatron's 12·L·d² + d·V against the model's W (GQA, a SwiGLU MLP, d_ff ≠ 4d);
- anything else the count holds beyond 6·D·W + 12·L·H·Q·T·D (0 for GPT-2 and Llama), so the terms always sum.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..report.report import Report

SIZES = (
    "layers",
    "d_model",
    "heads",
    "head_dim",
    "vocab",
    "batch",
    "seq",
    "params",
    "embedding_params",
    "vector_params",
    "tied_head_params",
)


def transformer_sizes(model: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, int]:
    """The sizes the formulas need, from a transformers-style model (its `config`) and its `input_ids`; {} if the
    model is not one."""
    config = getattr(model, "config", None)
    ids = kwargs.get("input_ids", args[0] if args else None)
    try:
        layers, d, heads = config.num_hidden_layers, config.hidden_size, config.num_attention_heads  # type: ignore
        vocab = config.vocab_size  # type: ignore[union-attr]
    except AttributeError:
        return {}
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2:
        return {}
    head_dim = getattr(config, "head_dim", None) or d // heads
    params = {id(p): p for p in model.parameters()}
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    get_head = getattr(model, "get_output_embeddings", None)
    head = get_head() if callable(get_head) else None
    tied = head is not None and id(head.weight) in embeddings
    return {
        "layers": layers,
        "d_model": d,
        "heads": heads,
        "head_dim": head_dim,
        "vocab": vocab,
        "batch": int(ids.shape[0]),
        "seq": int(ids.shape[1]),
        "params": sum(p.numel() for p in params.values()),
        "embedding_params": sum(params[i].numel() for i in embeddings if i in params),
        "vector_params": sum(p.numel() for p in params.values() if p.dim() < 2),
        "tied_head_params": head.weight.numel() if tied and head is not None else 0,
    }


@dataclass(frozen=True)
class FormulaRow:
    name: str
    formula: str
    flops: int
    terms: tuple[tuple[str, int], ...]  # formula − count, term by term (they sum to it exactly)

    def difference(self, count: int) -> int:
        return self.flops - count


@dataclass(frozen=True)
class FormulaComparison:
    count: int  # 2·MACs of forward and backward
    rows: tuple[FormulaRow, ...]
    sizes: dict[str, int]

    def __getitem__(self, name: str) -> FormulaRow:
        return next(r for r in self.rows if r.name == name)

    def __str__(self) -> str:
        s = self.sizes
        lines = [
            f"train step: {s['batch']}×{s['seq']} tokens, L={s['layers']}, d={s['d_model']}, "
            f"H={s['heads']}, Q={s['head_dim']}, V={s['vocab']}, N={s['params']:,}",
            f"{'counted (2·MACs, forward + backward, dense attention)':<58} {self.count:>20,}",
        ]
        for row in self.rows:
            diff = row.flops - self.count
            lines.append(f"{row.name + ': ' + row.formula:<58} {row.flops:>20,}  {diff:+,} ({diff / self.count:+.2%})")
            lines += [f"    {value:+,}  {label}" for label, value in row.terms if value]
        return "\n".join(lines)


def vs_formulas(report: Report) -> FormulaComparison:
    """The report's train step beside 6ND (Chinchilla, Kaplan), PaLM and Megatron, each difference term by term."""
    s = report.sizes
    if not s or not report.phases:
        raise ValueError(
            "vs_formulas() needs a transformers model counted with step='train' and input_ids "
            "(flopwise.count(model, {'input_ids': ids, 'labels': ids}, step='train'))"
        )
    count = 2 * (report.phases["forward"].macs + report.phases["backward"].macs)
    L, d, H, Q, V, T = s["layers"], s["d_model"], s["heads"], s["head_dim"], s["vocab"], s["seq"]
    D = s["batch"] * T
    N, emb, vec, tied = s["params"], s["embedding_params"], s["vector_params"], s["tied_head_params"]
    weights = N - emb - vec + tied  # W: the weights used in matmuls
    attention = 12 * L * H * Q * T * D
    lookups = ("embedding lookups counted as matmuls (6·D·(embeddings − tied head))", 6 * D * (emb - tied))
    vectors = ("biases and norm scales, which do no MACs (6·D·vectors)", 6 * D * vec)
    no_attention = ("attention products QKᵀ and A·V left out (−12·L·H·Q·T·D)", -attention)
    rows: tuple[FormulaRow, ...] = (
        FormulaRow("Chinchilla", "6·N·D, N all parameters", 6 * N * D, (lookups, vectors, no_attention)),
        FormulaRow(
            "Kaplan",
            "6·N·D, N non-embedding",
            6 * (N - emb) * D,
            (vectors, ("LM head tied to the excluded embedding (−6·D·V·d)", -6 * D * tied), no_attention),
        ),
        FormulaRow("PaLM", "(6·N + 12·L·H·Q·T)·D", (6 * N + 12 * L * H * Q * T) * D, (lookups, vectors)),
        FormulaRow(
            "Megatron",
            "72·B·T·L·d²·(1 + T/(6d) + V/(12·L·d))",
            72 * D * L * d * d + 12 * D * T * L * d + 6 * D * d * V,
            (  # the three terms of the bracket, multiplied out (exact integers)
                (
                    "matmul weights assumed 12·L·d² + d·V, the model has W (6·D·(12·L·d² + d·V − W))",
                    6 * D * (12 * L * d * d + d * V - weights),
                ),
                ("attention width d, the model has H·Q (12·L·T·D·(d − H·Q))", 12 * L * T * D * (d - H * Q)),
            ),
        ),
    )
    # what the count holds beyond 6·D·W + attention (0 for GPT-2 and Llama): every difference includes it, so the
    # terms always sum to formula − count
    other = ("contractions beyond 6·D·W + 12·L·H·Q·T·D in this model", 6 * D * weights + attention - count)
    rows = tuple(FormulaRow(r.name, r.formula, r.flops, (*r.terms, other)) for r in rows)
    return FormulaComparison(count, rows, dict(s))
