"""`flopwise MODEL --parallel dp=…,pp=…,tp=…`: one plan's per-rank table (or its JSON); given twice or more, the
plans side by side with their step-time estimates (flopwise.parallel.compare). A bad layout, a batch the plan
cannot split or a model the plan cannot cut is a usage error (exit 2)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from .common import chosen_convention, emit
from .errors import UsageError
from .inputs import make_inputs
from .spec import Loaded
from .terminal import stage


def plans_main(loaded: Loaded, options: argparse.Namespace, notify: Callable[[str], None]) -> int:
    """Plan `loaded` under each --parallel layout; every layout is checked before any is planned."""
    from ..parallel import compare, parse, plan

    for layout in options.parallel:
        try:
            parse(layout)
        except ValueError as error:
            raise UsageError(f"--parallel {layout}: {_unprefixed(error)}") from None
    inputs = make_inputs(loaded.inputs, real=False)
    common: dict[str, Any] = {"mode": options.mode, "step": options.step, "convention": chosen_convention(options)}
    if len(options.parallel) == 1:
        stage(f"planning {loaded.spec} on {options.parallel[0]}")
        result: Any = _refused_as_usage(lambda: plan(loaded.model, inputs, options.parallel[0], **common))
    else:
        stage(f"planning {loaded.spec} on {len(options.parallel)} plans")
        memory = int(options.device_memory * 2**30) if options.device_memory is not None else None
        result = _refused_as_usage(
            lambda: compare(
                loaded.model,
                inputs,
                options.parallel,
                device=options.device or "H100-SXM",
                link=options.link,
                memory=memory,
                **common,
            )
        )
    text = json.dumps(result.to_dict(), indent=2) if options.format == "json" else str(result)
    emit(text, options, notify)
    return 0


def _refused_as_usage(planning: Callable[[], Any]) -> Any:
    """What the planner refuses (a batch the data-parallel ranks cannot split, a model it cannot cut into stages,
    an unknown device or link) is the user's to fix: a usage error."""
    try:
        return planning()
    except ValueError as error:
        raise UsageError(f"--parallel: {_unprefixed(error)}") from None


def _unprefixed(error: ValueError) -> str:
    """The planner's message without its own 'parallel: ' (the flag names it)."""
    return str(error).removeprefix("parallel: ")
