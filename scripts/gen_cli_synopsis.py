"""Write the synopsis at the top of docs/cli.md from the command line's own parsers (flopwise.cli.options), so that it
lists every flag the command takes and cannot drift from it.

    .venv/bin/python scripts/gen_cli_synopsis.py           # rewrite the synopsis block
    .venv/bin/python scripts/gen_cli_synopsis.py --check   # exit 1 if it is out of date

tests/test_cli_synopsis.py checks that the committed page is current.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flopwise.cli.options import build_parser, compare_parser, diff_parser

PAGE = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
BEGIN = "<!-- synopsis: written by scripts/gen_cli_synopsis.py from the parsers; do not edit by hand -->"
END = "<!-- end of synopsis -->"
WIDTH = 116


def usage(parser: argparse.ArgumentParser) -> str:
    """argparse's own usage line, laid out at WIDTH columns whatever the terminal (without 'usage: ')."""
    formatter = argparse.HelpFormatter(parser.prog, width=WIDTH, max_help_position=40)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip("\n")


def synopsis() -> str:
    lines = [
        usage(build_parser()),
        usage(compare_parser()),
        usage(diff_parser()),
        "python -m flopwise …                 # the same",
    ]
    return "\n".join([BEGIN, "```", *lines, "```", END])


def render(page: str) -> str:
    """The page with its synopsis block replaced (the block must be there: BEGIN … END)."""
    start, end = page.index(BEGIN), page.index(END) + len(END)
    return page[:start] + synopsis() + page[end:]


def main(argv: list[str]) -> int:
    current = PAGE.read_text(encoding="utf-8")
    text = render(current)
    if "--check" in argv:
        if current != text:
            print(f"{PAGE}: the synopsis is out of date: run scripts/gen_cli_synopsis.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text, encoding="utf-8")
    print(f"wrote the synopsis of {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
