"""Command line: `flopwise` with no arguments counts the guides' three worked examples."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .count import count
from .examples import guide_examples


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flopwise",
        description="Count the MACs, FLOPs, parameters and bytes moved of a PyTorch model.",
        epilog="With no model, counts the three worked examples of the guides.",
    )
    parser.add_argument("--version", action="version", version=f"flopwise {__version__}")
    parser.add_argument("--depth", type=int, default=2, help="module tree depth shown in the table (default 2)")
    parser.add_argument("--convention", default="default", help="FLOP convention (default, contractions, mac, …)")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    incomplete = False
    for example in guide_examples():
        report = count(example.model, example.inputs, convention=options.convention)
        print(f"# {example.name} — the guide counts {example.macs:,} MACs by hand")
        print(report.table(depth=options.depth))
        print()
        incomplete |= not report.complete
    return 1 if incomplete else 0


if __name__ == "__main__":
    sys.exit(main())
