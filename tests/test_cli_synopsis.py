"""docs/cli.md's synopsis is written from the parsers (scripts/gen_cli_synopsis.py) and is current: every flag of
`flopwise`, `flopwise compare` and `flopwise diff` is in it; and the page says nothing twice (issue 28)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

from flopwise.cli.options import build_parser, compare_parser, diff_parser

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "cli.md"


def test_the_synopsis_is_current():
    script = runpy.run_path(str(ROOT / "scripts" / "gen_cli_synopsis.py"))
    page = PAGE.read_text(encoding="utf-8")
    assert script["render"](page) == page, "docs/cli.md's synopsis is out of date: run scripts/gen_cli_synopsis.py"


def test_the_synopsis_lists_every_flag_and_command():
    page = PAGE.read_text(encoding="utf-8")
    synopsis = page[page.index("<!-- synopsis") : page.index("<!-- end of synopsis -->")]
    for parser in (build_parser(), compare_parser(), diff_parser()):
        for action in parser._actions:  # as argparse's usage names each: by its first option string
            flag = action.option_strings[0] if action.option_strings else action.metavar
            assert f"[{flag}" in synopsis or f" {flag}" in synopsis, f"{parser.prog} {flag}: not in docs/cli.md"
    for named in (
        "--fail-if",
        "--attention",
        "--step",
        "--generate",
        "--sweep",
        "--dtype",
        "--no-shortcuts",
        "html",
        "flopwise diff",
        "flopwise compare",
        "--rebuild-limit",
        "--verbose",
        "--progress",
    ):
        assert named in synopsis, named


def sentences(page: str) -> list[str]:
    """The prose of a Markdown page (no code blocks, no tables), sentence by sentence."""
    text, in_code = [], False
    for line in page.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and not line.startswith(("|", "<!--")):
            text.append(line.strip())
    prose = " ".join(text)
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z`(])", prose) if s.strip()]


def test_no_sentence_of_the_page_is_said_twice():
    said = [s for s in sentences(PAGE.read_text(encoding="utf-8")) if len(s) > 40]
    repeated = {s for s in said if said.count(s) > 1}
    assert not repeated, repeated
