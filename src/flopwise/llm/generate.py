"""`count_generate`: transformers' generate() counted step by step — prefill, then one decode step per token.

What generate really runs: `max_new_tokens=N` is N forwards — the prefill over the S prompt tokens (which
computes only the last row of logits: `logits_to_keep=1`) and N−1 decode steps of one token each, attending to
a KV cache of S, S+1, … S+N−2 earlier tokens. Each step is the ops inside one forward of the model; the ops of
the loop around it (choosing the token, growing the ids — and an encoder-decoder's encoder, which generate runs
outside the model's forward) are phase "sampling". Decoder-only models are what the steps describe.

Bytes per step: `bytes_read` and `bytes_written` are what the ops read and write, as every flopwise count
states them; `weight_bytes` is the bytes of the parameters (a roofline reads every weight once per forward),
`kv_read_bytes` the KV cache the step attends to (the cache after it) and `kv_written_bytes` what it appends.

The shape-only path (`mode="fake"`, or a model on the meta device) runs the same forwards, with the kwargs
generate passes, on fake CPU tensors — the kernels the real CPU path picks, no arithmetic, no memory — so
its steps equal the real path's exactly on models small enough to run both.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import torch
from torch.utils._python_dispatch import _disable_current_modes

from ..core.conventions import Convention
from ..core.cost import ZERO, Cost, OpCall, summed
from ..counter import counting, counting_on_fakes
from ..engine.prepare import collector_paused, prepare, running_on
from ..report.report import Report
from ..shapes_only.mode import CpuFakeTensorMode
from .cache import CACHE_NAMES, cache_argument, cache_bytes

if TYPE_CHECKING:
    from .decode_trace import DecodeTrace

Progress = Callable[[int, int], None]  # (forwards done, forwards in all)


@dataclass(frozen=True)
class Step:
    """One forward of generate(): the prefill, or the decode step of one new token."""

    phase: str  # "prefill" or "decode"
    tokens: int  # query tokens per sequence in this forward (S for the prefill, 1 for a decode step)
    context: int  # tokens in the KV cache after the step (what its attention reads)
    cost: Cost
    weight_bytes: int
    kv_read_bytes: int
    kv_written_bytes: int
    kv_cache_bytes: int  # the cache's size after the step

    @property
    def intensity(self) -> float | None:
        """FLOPs per byte the ops move."""
        return self.cost.intensity


@dataclass(frozen=True)
class GenerateReport(Report):
    """A Report of the whole generate(), with `phases` prefill, decode, sampling and one Step per forward; with an
    assistant model (speculative decoding), phase draft, its forwards in `draft_steps`, and `accepted`: the draft
    tokens the target accepted at each verification step, as the run observed them."""

    steps: tuple[Step, ...] = ()
    draft_steps: tuple[Step, ...] = ()
    accepted: tuple[int, ...] = ()


class _Steps:
    """Forward hooks that mark where each step's ops begin and end, and the cache's size after it."""

    def __init__(self, calls: list[OpCall], total: int = 0, progress: Progress | None = None) -> None:
        self.calls = calls
        # (start, end, tokens, cache bytes, cost of the calls when already known)
        self.spans: list[tuple[int, int, int, int, Cost | None]] = []
        self.positions: list[int] = []  # the position of each forward's first token
        self.forwards_of_other = [0]  # forwards another model ran before each of these (a draft's proposals)
        self._start = 0
        self._total, self._progress = total, progress

    def done(self) -> None:
        """One more forward made: told to the progress callback."""
        if self._progress is not None:
            self._progress(len(self.spans), self._total)

    def pre(self, module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        self._start = len(self.calls)
        positions = kwargs.get("position_ids")
        with _disable_current_modes():  # reading it is not part of the count
            known = (
                isinstance(positions, torch.Tensor)
                and positions.numel() > 0
                and not positions.is_meta
                and type(positions).__name__ != "FakeTensor"
            )
            self.positions.append(int(positions.reshape(-1)[0]) if known and positions is not None else 0)

    def post(self, module: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        tokens = int(ids.shape[-1]) if isinstance(ids, torch.Tensor) else 0
        cache = next((kwargs[name] for name in CACHE_NAMES if kwargs.get(name) is not None), None)
        if cache is None:  # the output's: `cache` where it has one (transformers 5 warns on reading the old name)
            cache = getattr(out, "cache" if hasattr(out, "cache") else "past_key_values", None)
        self.spans.append((self._start, len(self.calls), tokens, cache_bytes(cache), None))
        self.done()


@contextlib.contextmanager
def _hooked(model: torch.nn.Module, steps: _Steps, drafts: _Steps, draft: torch.nn.Module | None) -> Iterator[None]:
    def proposed(module: Any, args: Any, kwargs: dict[str, Any]) -> None:  # a draft forward: one more candidate
        steps.forwards_of_other[-1] += 1

    def verified(module: Any, args: Any, kwargs: dict[str, Any], out: Any) -> None:
        steps.forwards_of_other.append(0)

    handles = [
        model.register_forward_pre_hook(steps.pre, with_kwargs=True),
        model.register_forward_hook(steps.post, with_kwargs=True),
    ]
    if draft is not None:
        handles += [
            draft.register_forward_pre_hook(drafts.pre, with_kwargs=True),
            draft.register_forward_hook(drafts.post, with_kwargs=True),
            draft.register_forward_pre_hook(proposed, with_kwargs=True),
            model.register_forward_hook(verified, with_kwargs=True),
        ]
    try:
        yield
    finally:
        for handle in handles:  # the model is left as found
            handle.remove()


def count_generate(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    *,
    mode: str = "real",
    convention: str | Convention = "default",
    attention: str | None = None,
    assistant_model: torch.nn.Module | None = None,
    progress: Progress | None = None,
    **generate_kwargs: Any,
) -> GenerateReport:
    """Count `model.generate(input_ids, max_new_tokens=N, **generate_kwargs)` split into its N forwards.

    `mode="real"` runs generate() (random weights are fine); `mode="fake"` — chosen for a model on the meta
    device — runs the same N forwards on fake CPU tensors (greedy: every step makes one token, none stops early).
    `assistant_model` (speculative decoding): the draft's forwards are phase "draft" (`report.draft_steps`), and
    `report.accepted` the draft tokens accepted at each verification; real mode only, since acceptance compares
    the tokens' values. `progress(done, total)` is called after each forward of the model (total: N; fewer run
    when generate stops early or accepts draft tokens).
    """
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    params = list(model.parameters())
    if params and all(p.is_meta for p in params):
        mode = "fake"
    if assistant_model is not None and mode != "real":
        raise ValueError(
            "count_generate(assistant_model=...): the target accepts draft tokens by their values, "
            "which a model without weights has not: count models with weights (mode='real')"
        )
    if mode not in ("real", "fake"):
        raise ValueError(f"mode must be 'real' or 'fake', got {mode!r}")
    shape = "×".join(str(d) for d in input_ids.shape)
    described = f"input_ids={shape}, max_new_tokens={max_new_tokens}"
    fake = CpuFakeTensorMode(allow_non_fake_inputs=True) if mode == "fake" else None
    batch, prompt = tuple(input_ids.shape)
    # on fakes, decode steps are costed from one run with the cache length symbolic, where it holds; from the first
    # one, or from the second when the prompt is one token (torch never makes a size of 1 symbolic)
    first = 1 if prompt >= 2 else 2
    decode = (
        _decode_trace(model, batch, prompt, first, max_new_tokens, convention, attention) if fake is not None else None
    )
    # fake CPU stand-ins of the parameters and buffers (tied weights stay tied), as a meta-mode count makes them
    state = (prepare(model, (), {}, "meta", fake)[0] or {}) if fake is not None else {}
    with torch.no_grad(), fake or contextlib.nullcontext(), collector_paused(fake is not None):
        # on fakes, each decode step repeats the last one's ops but attention's: replays and the memo make them
        session_of = (
            counting(convention, model=model, inputs=described, attention=attention)
            if fake is None
            else counting_on_fakes(model, fake, convention, described, attention)
        )
        with session_of as session:
            assert session._mode is not None
            steps, drafts = _Steps(session._mode.calls, max_new_tokens, progress), _Steps(session._mode.calls)
            with _hooked(model, steps, drafts, assistant_model):
                if fake is None:
                    if assistant_model is not None:
                        generate_kwargs["assistant_model"] = assistant_model
                    out = model.generate(input_ids, max_new_tokens=max_new_tokens, **generate_kwargs)  # type: ignore[operator]
                else:
                    _fake_generate(model, state, tuple(input_ids.shape), max_new_tokens if decode is None else first)
            if decode is not None:
                assert session._stack is not None
                _traced_steps(model, decode, steps, session._stack.calls, batch, prompt, range(first, max_new_tokens))
    report = _split(session.report, steps, drafts, sum(session.report.param_bytes.values()))
    if assistant_model is None:
        return report
    total = int(out.shape[-1]) if isinstance(out, torch.Tensor) else int(out.sequences.shape[-1])
    return replace(report, accepted=_accepted(steps, total))


def _traced_steps(
    model: torch.nn.Module,
    decode: DecodeTrace,
    steps: _Steps,
    module_calls: Counter[str],
    batch: int,
    prompt: int,
    numbers: range,
) -> None:
    """Decode steps `numbers` (step k attends to prompt + k − 1 cached tokens): the traced step's records at each
    cache length, after the loop's own ops, as when the steps run."""
    loop: list[OpCall] = []
    for step in numbers:
        context = prompt + step - 1
        start = len(steps.calls)
        if step == numbers.start:  # the loop's ops make tensors of shape (batch, 1) at every step: recorded once
            _step_inputs(batch, context, 1, None, model)
            loop = steps.calls[start:]
        else:
            steps.calls.extend(loop)
        start = len(steps.calls)
        calls, cost = decode.step_at(context)
        steps.calls.extend(calls)
        steps.spans.append((start, len(steps.calls), 1, decode.cache_bytes(context), cost))
        steps.positions.append(context)
        steps.done()
    for name, ran in decode.module_calls.items():  # each module ran as often in every step
        module_calls[name] += ran * len(numbers)


def _accepted(steps: _Steps, total: int) -> tuple[int, ...]:
    """Draft tokens accepted at each verification (each target forward): the next forward starts past the tokens
    it kept (those it had not cached, less its candidates, plus the accepted ones); the last one's end is the output
    length, less the token the target adds itself."""
    found = []
    for i, ((_, _, tokens, _, _), start) in enumerate(zip(steps.spans, steps.positions, strict=True)):
        candidates = steps.forwards_of_other[i]
        kept = start + tokens - candidates
        after = steps.positions[i + 1] if i + 1 < len(steps.positions) else total - 1
        found.append(max(0, min(candidates, after - kept)))
    return tuple(found)


def _decode_trace(
    model: torch.nn.Module,
    batch: int,
    prompt: int,
    first: int,
    n: int,
    convention: str | Convention,
    attention: str | None,
) -> DecodeTrace | None:
    """The decode step traced in the cache length when it stands for every step from `first` on, else None."""
    if n <= 2:  # one decode step: counting it costs less than tracing it
        return None
    from transformers import DynamicCache  # noqa: PLC0415 - the LLM path alone needs transformers

    from .decode_trace import trace_decode  # noqa: PLC0415 - sympy, only when a trace is made

    with collector_paused():  # a shape-only run's many short-lived objects (prepare.py)
        decode = trace_decode(
            model,
            batch,
            prompt + first - 1,
            convention,
            attention,
            lambda: DynamicCache(config=getattr(model, "config", None)),
        )
    if decode is None or not all(decode.holds_at(prompt + step - 1) for step in range(first, n)):
        return None
    return decode


def _fake_generate(model: torch.nn.Module, state: dict[str, torch.Tensor], shape: tuple[int, ...], n: int) -> None:
    """The forwards generate() runs, with the kwargs it passes, on fake CPU tensors (no values, no memory)."""
    from transformers import DynamicCache  # noqa: PLC0415 - the LLM path alone needs transformers

    cache = DynamicCache(config=getattr(model, "config", None))
    batch, prompt = shape
    for step in range(n):
        start, length = (0, prompt) if step == 0 else (prompt + step - 1, 1)
        with running_on(model, state):
            model(**_step_inputs(batch, start, length, cache, model))


def _step_inputs(batch: int, start: int, length: int, cache: Any, model: torch.nn.Module) -> dict[str, Any]:
    """What generate() passes a forward over `length` new tokens at position `start`; made by the loop (sampling)."""
    return {
        "input_ids": torch.zeros(batch, length, dtype=torch.long),
        cache_argument(model): cache,
        "position_ids": torch.arange(start, start + length).unsqueeze(0).expand(batch, -1),
        "logits_to_keep": 1,
        "use_cache": True,
        "return_dict": True,
    }


def _split(report: Report, steps: _Steps, drafts: _Steps, weight_bytes: int) -> GenerateReport:
    """The report with one Step per forward, and phases prefill, decode, draft (an assistant's forwards) and
    sampling (the loop's own ops)."""
    out, draft = _steps(report.calls, steps, weight_bytes), _steps(report.calls, drafts, weight_bytes)
    inside = sum((step.cost for step in (*out, *draft)), ZERO)
    everything = report.total
    sampling = Cost(
        *(getattr(everything, f) - getattr(inside, f) for f in ("macs", "flops", "bytes_read", "bytes_written"))
    )  # the ops outside the forwards
    phases = {
        "prefill": out[0].cost if out else ZERO,
        "decode": sum((s.cost for s in out[1:]), ZERO),
        "sampling": sampling,
    }
    if draft:
        phases["draft"] = sum((s.cost for s in draft), ZERO)
    base = {f.name: getattr(report, f.name) for f in fields(Report) if f.init}
    base["phases"] = phases
    return GenerateReport(**base, steps=tuple(out), draft_steps=tuple(draft))


def _steps(calls: tuple[OpCall, ...], steps: _Steps, weight_bytes: int) -> list[Step]:
    out, before = list[Step](), 0
    for i, (start, end, tokens, kv_bytes, known) in enumerate(steps.spans):
        cost = known if known is not None else summed(c.cost for c in calls[start:end])
        position = steps.positions[i] if i < len(steps.positions) else 0  # 0 on fake tensors: one token a step
        context = position + tokens if position or i == 0 else out[0].context + i
        out.append(
            Step(
                "prefill" if i == 0 else "decode",
                tokens,
                context,
                cost,
                weight_bytes,
                kv_bytes,
                kv_bytes - before,
                kv_bytes,
            )
        )
        before = kv_bytes
    return out


def kv_cache_bytes(layers: int, batch: int, kv_heads: int, head_dim: int, tokens: int, itemsize: int) -> int:
    """Keys and values of every layer: 2·layers·B·H_kv·D·T·bytes."""
    return 2 * layers * batch * kv_heads * head_dim * tokens * itemsize
