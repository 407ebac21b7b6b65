"""Budget gates: `--fail-if "macs>+2%"` and `--fail-if "params>25M"` make a command exit with BUDGET_BROKEN.

A budget is METRIC OP LIMIT. METRIC is macs, flops, params, bytes (read + written), bytes_read or bytes_written;
OP is >, >=, < or <=. LIMIT is absolute (25M, 4.1G, 8B, 1.5GiB, 1200) and is compared with the count, or
signed (+2%, -10%, +1M) and is compared with the change from the before file of `flopwise diff`.
"""

from __future__ import annotations

import argparse
import operator
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..report.report import Report

BUDGET_BROKEN = 4  # exit code: a --fail-if budget is broken (documented in README and --help)
METRICS = ("macs", "flops", "params", "bytes", "bytes_read", "bytes_written")
SCALES = {
    "": 1,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "B": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
_BUDGET = re.compile(
    r"^\s*([a-z_]+)\s*(>=|<=|>|<)\s*([+-]?)(\d+(?:\.\d+)?(?:e\d+)?)\s*(%|Ki|Mi|Gi|Ti|[kKMGBT])?"
    r"(?:iB)?\s*$"
)
HELP = (
    "exit with code 4 when a count breaks this budget: METRIC>LIMIT with METRIC macs, flops, params, bytes; "
    "LIMIT absolute (25M, 4.1G, 8B) or, for `flopwise diff`, a change (+2%%, +1M); repeat for several"
)


@dataclass(frozen=True)
class Budget:
    text: str  # as the user wrote it
    metric: str
    op: str
    limit: float  # a count, a change in units, or a change in percent
    change: bool  # signed: compared with after − before
    percent: bool

    def check(self, after: dict[str, int], before: dict[str, int] | None = None) -> tuple[bool, str]:
        """(kept, a line that says what was compared), on totals as `totals()` gives them."""
        new = after[self.metric]
        if not self.change:
            return not COMPARE[self.op](new, self.limit), f"{self.metric} = {new:,}"
        assert before is not None  # parse_limit refuses a change where there is no before file
        old = before[self.metric]
        delta = new - old
        if self.percent:
            if old == 0:
                value = 0.0 if delta == 0 else float("inf") if delta > 0 else float("-inf")
            else:
                value = 100 * delta / old
            shown = f"{old:,} → {new:,} ({value:+.2f}%)"
        else:
            value, shown = delta, f"{old:,} → {new:,} ({delta:+,})"
        return not COMPARE[self.op](value, self.limit), f"{self.metric} {shown}"


def parse_budget(text: str) -> Budget:
    """A budget from its text; argparse turns the ArgumentTypeError into a usage error (exit code 2)."""
    match = _BUDGET.match(text)
    if match is None or match.group(1) not in METRICS:
        raise argparse.ArgumentTypeError(
            f"expects METRIC>LIMIT like 'macs>+2%' or 'params>25M' with METRIC one "
            f"of {', '.join(METRICS)}, got {text!r}"
        )
    metric, op, sign, number, unit = match.groups()
    unit = unit or ""
    if unit == "%" and not sign:
        raise argparse.ArgumentTypeError(f"a percentage is a change: write it with its sign, '{metric}{op}+{number}%'")
    value = float(number) * (1 if unit == "%" else SCALES[unit])
    return Budget(text.strip(), metric, op, -value if sign == "-" else value, bool(sign), unit == "%")


def parse_limit(text: str) -> Budget:
    """A budget for a plain count: an absolute limit (a change needs the before file of `flopwise diff`)."""
    budget = parse_budget(text)
    if budget.change:
        raise argparse.ArgumentTypeError(
            f"{text!r} is a change and needs a before: flopwise diff before.json "
            "after.json --fail-if ...; a count takes absolute limits like 'macs>4G'"
        )
    return budget


def add_budget_option(parser: argparse.ArgumentParser, changes: bool = True) -> None:
    """--fail-if BUDGET, repeatable; `changes=False` (a plain count) takes absolute limits only."""
    parser.add_argument(
        "--fail-if",
        action="append",
        default=[],
        metavar="BUDGET",
        type=parse_budget if changes else parse_limit,
        help=HELP,
    )


def totals(doc: dict[str, Any]) -> dict[str, int]:
    """The budget metrics of one `flopwise/1` document (`report.to_dict()` or a saved --format json)."""
    total = doc["total"]
    return {
        "macs": total["macs"],
        "flops": total["flops"],
        "params": total["params"],
        "bytes_read": total["bytes_read"],
        "bytes_written": total["bytes_written"],
        "bytes": total["bytes_read"] + total["bytes_written"],
    }


def check_budgets(
    budgets: list[Budget], pairs: list[tuple[str, dict[str, int] | None, dict[str, int]]], say: Callable[[str], None]
) -> bool:
    """Check every budget on every (model, before totals or None, after totals); True when all are kept.

    A broken budget is always said (on stderr); kept ones only through `say`, which --quiet silences.
    """
    kept_all = True
    for budget in budgets:
        for model, before, after in pairs:
            kept, what = budget.check(after, before)
            if kept:
                say(f"budget kept: {budget.text} ({model}: {what})")
            else:
                kept_all = False
                print(f"flopwise: budget broken: {budget.text} ({model}: {what})", file=sys.stderr)
    return kept_all


def gate(budgets: list[Budget], reports: list[Report], code: int, say: Callable[[str], None]) -> int:
    """The exit code of `flopwise MODEL --fail-if …`: BUDGET_BROKEN when a budget is broken, else `code`."""
    kept = check_budgets(budgets, [(r.model, None, totals(r.to_dict())) for r in reports], say)
    return code if kept else BUDGET_BROKEN
