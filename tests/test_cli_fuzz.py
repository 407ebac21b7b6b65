"""Property test of the command line's grammar: any spec, --input or --tokens string exits 0, 1 or 2, never a trace.

Runs main() in process for speed (the exit-code handling is the same code the console script runs); a few
hand-picked strings go through the real console script too.
"""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli import SCRIPT

from flopwise.cli import main

GRAMMAR = st.sampled_from(
    [
        "x",
        "×",
        "*",
        ":",
        "=",
        "1",
        "0",
        "3",
        "28",
        "99999999999999999999",
        "int64",
        "bf16",
        "pixel_values",
        "guides:",
        "torchvision:",
        "hf:",
        ".py",
        ".pt2",
        "/",
        " ",
        "-",
        ",",
    ]
)
TEXT = st.one_of(st.text(max_size=30), st.lists(GRAMMAR, max_size=8).map("".join))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def run(args: list[str], capsys) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as exit_:  # argparse: an option-like string is a usage error
        code = int(exit_.code or 0)
    _, err = capsys.readouterr()
    return code, err


@SETTINGS
@given(spec=TEXT)
def test_any_spec_exits_0_1_or_2_without_a_traceback(spec, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a spec that names a file finds none here
    code, err = run(["--", spec], capsys)
    assert code in (0, 1, 2) and "Traceback" not in err


@SETTINGS
@given(text=TEXT, flag=st.sampled_from(["--input", "--tokens"]))
def test_any_input_exits_0_1_or_2_without_a_traceback(text, flag, capsys):
    code, err = run(["guides:SimpleConv", flag, text], capsys)
    assert code in (0, 1, 2) and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        ["--", "a" * 5000 + ".py:build"],
        ["guides:SimpleConv", "--input", "1x²"],
        ["guides:SimpleConv", "--input", "99999999999999999999x1x28x28"],
    ],
)
def test_the_console_script_agrees(args):
    result = subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
