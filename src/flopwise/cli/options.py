"""The command line's parsers, without torch: `flopwise --help`, `--version` and usage errors answer from here
before any model code (or torch) is imported. docs/cli.md's synopsis is generated from these parsers
(scripts/gen_cli_synopsis.py)."""

from __future__ import annotations

import argparse

from ..core.conventions import ATTENTION, PRESETS
from ..core.version import __version__
from .budget import add_budget_option
from .errors import UsageError, unwritable

FORMS = (
    "torchvision:NAME, timm:NAME, hf:path/to/config.json, hf:org/name (local cache), diffusers:path/to/config.json, "
    "path/to/file.py:NAME, file.pt2, file.pt, model.onnx, model.pte, model.tflite, ultralytics:NAME.yaml or guides:NAME"
)
MODES = ("real", "fake", "meta")  # counter.MODES; tests/test_cli_startup.py checks that they agree
FORMATS = ("table", "json", "csv", "markdown", "html")
ALIASES = {"md": "markdown"}
UNSET = -1  # --depth not given: 2 in tables, every module in CSV, the innermost modules in explanations
EXIT_CODES = """exit codes:
  0    complete count
  1    counted, but some ops have no known cost (the totals are a lower bound)
  2    the user's input or model failed: bad spec, flag or file, a refused pickle, the model raised or exited
  3    flopwise itself failed (a bug: --traceback shows where)
  4    a --fail-if budget is broken (it wins over 1: the gate fails whether or not the count is complete)
  130  interrupted (Ctrl-C); compare prints the models it finished first
"""
EXAMPLES = (
    """examples:
  flopwise                                      the guides' three worked examples
  flopwise torchvision:resnet50                 default input of the family (1x3x224x224)
  flopwise torchvision:inception_v3 --batch 8   8x3x299x299
  flopwise timm:convnext_tiny                   timm by name, random weights, its config's input (1x3x224x224)
  flopwise hf:path/to/config.json --tokens 1x128
  flopwise hf:meta-llama/Llama-3.1-8B --tokens 1x4096   a config already in the local Hugging Face cache
  flopwise diffusers:unet/config.json           a diffusers model from its config (UNet, DiT, AutoencoderKL)
  flopwise path/to/file.py:build --input 1x3x32x32 --input 1x10:int64   (imports, so runs, file.py)
  flopwise model.pt2 --format json --output counts.json
  flopwise torchvision:resnet50 --format html -o report.html   one page to share: icicle, tables, hand calculation
  flopwise diff before.json after.json --fail-if "macs>+2%"    the change per module; exit 4 past the budget
  flopwise hf:config.json --tokens 1x128 --sweep seq=128:32768:x2 --plot seq.png   costs against length
  flopwise torchvision:vit_b_16 --depth 3 --per-operator --convention contractions
  flopwise hf:llama/config.json --dtype bf16 --by-dtype    MACs, bytes, weights and energy per dtype
  flopwise compare torchvision:resnet18 torchvision:resnet50 --plot zoo
  flopwise compare 'torchvision:*' --format markdown     every torchvision classification model
  flopwise hf:clip/config.json --input pixel_values=2x3x224x224 --tokens 2x16
  flopwise hf:llama/config.json --dtype bf16 --tokens 1x4096
  flopwise hf:llama/config.json --tokens 8x4096 --step train --parallel dp=8,tp=8 --parallel dp=4,pp=2,tp=8
                                                two plans side by side: per rank, step time and MFU on H100-SXM

"""
    + EXIT_CODES
)


def output_format(text: str) -> str:
    """--format NAME, `md` standing for markdown; argparse checks the result against FORMATS."""
    return ALIASES.get(text, text)


def parse_depth(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expects a depth like 2 (0 = the total only) or 'all', got {text!r}")
    return int(text)


def add_input_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("inputs")
    group.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="[NAME=]SIZES[:DTYPE]",
        help="one input, e.g. 1x3x224x224 or 1x128:int64 (repeat for several); NAME= passes it "
        "by keyword, e.g. pixel_values=1x3x224x224",
    )
    group.add_argument("--tokens", metavar="BxS", help="token ids of batch B and length S, e.g. 1x128")
    group.add_argument("--batch", type=int, metavar="N", help="batch N for the model's default input")
    group.add_argument(
        "--dtype",
        metavar="DTYPE",
        help="the model's weights and default float inputs in DTYPE "
        "(bf16, fp16, fp32, fp64); hf: configs default to their own dtype",
    )
    group.add_argument(
        "--allow-pickle",
        action="store_true",
        help="unpickle Python objects from a .pt or .pt2 file (this runs code from the file: trusted files only)",
    )


def add_count_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="fake",
        help="fake: shapes only (default; falls back to real when the model needs data); "
        "real: run the model; meta: the meta device",
    )
    parser.add_argument(
        "--convention",
        choices=list(PRESETS),
        default="default",
        help="how MACs and other work become FLOPs (default: 2 per MAC plus every other op)",
    )
    parser.add_argument(
        "--attention",
        choices=ATTENTION,
        default="dense",
        help="dense: every query–key pair (the guides; default); masked: only the pairs the "
        "attention masks keep (causal, sliding window, padding, BlockMask)",
    )
    parser.add_argument(
        "--no-shortcuts",
        dest="shortcuts",
        action="store_false",
        help="count every op call afresh (the plain path); shortcuts never change a figure",
    )
    parser.add_argument(
        "--rebuild-limit",
        type=float,
        metavar="GIB",
        help="the most GiB of weights filled with random values when a model must run for real "
        "(--mode real, --measure, a count that needs data, --step train; default 2, or "
        "FLOPWISE_REBUILD_LIMIT)",
    )
    parser.add_argument(
        "--format",
        type=output_format,
        choices=FORMATS,
        default="table",
        help="output format (default table; md = markdown)",
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write the output to FILE (UTF-8) instead of stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="no notices or progress on stderr")
    parser.add_argument(
        "--progress",
        action="store_true",
        help="say on stderr what a run past 2 seconds is doing even when stderr is not a terminal",
    )
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of errors (debugging)")


def build_parser() -> argparse.ArgumentParser:
    """`flopwise [MODEL] [options]`."""
    parser = argparse.ArgumentParser(
        prog="flopwise",
        description="Count the MACs, FLOPs, parameters and bytes moved of a PyTorch model, per module and "
        "per operator. `flopwise compare --help` compares several models; `flopwise diff --help` "
        "compares two saved counts.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model",
        nargs="?",
        metavar="MODEL",
        help=f"{FORMS} (default: the guides' three examples); file.py:NAME imports the file, so "
        "its top-level code runs, as `python file.py` runs it (not its __main__ block)",
    )
    parser.add_argument("--version", action="version", version=f"flopwise {__version__}")
    add_input_options(parser)
    add_count_options(parser)
    plans = parser.add_argument_group("parallel plans (torch's fake process group; see docs/parallel.md)")
    plans.add_argument(
        "--parallel",
        action="append",
        default=[],
        metavar="DIM=N,…",
        help="count what each rank runs under a parallel plan of dp, pp, tp, ep (expert parallel, ranks borrowed "
        "from dp) and cp (context parallel), e.g. dp=16,pp=8,tp=8 or dp=8,ep=8; given twice or more, the plans "
        "side by side: per-rank MACs, memory, communication, estimated step time and MFU on --device",
    )
    plans.add_argument(
        "--link",
        metavar="NAME",
        help="with several --parallel plans: the link inside a node (default NVLink4; InfiniBand-NDR between nodes)",
    )
    plans.add_argument(
        "--device-memory",
        type=float,
        metavar="GIB",
        help="with several --parallel plans: one device's memory in GiB, to say which plans fit",
    )
    parser.add_argument(
        "--depth",
        type=parse_depth,
        metavar="N|all",
        default=UNSET,
        help="module tree depth shown (default 2 in tables; every module in CSV)",
    )
    parser.add_argument("--per-operator", action="store_true", help="also show the per-aten-operator table")
    parser.add_argument(
        "--shapes",
        action="store_true",
        help="add each module's input and output shapes (of its first call) to the table",
    )
    parser.add_argument("--explain", action="store_true", help="show the hand calculation of each count")
    parser.add_argument(
        "--by-dtype",
        action="store_true",
        help="also show MACs, FLOPs, bytes, weight memory and an energy estimate per compute dtype "
        "(JSON always has them)",
    )
    add_budget_option(parser, changes=False)
    parser.add_argument(
        "--step",
        choices=("forward", "train"),
        default="forward",
        help="count one forward (default) or a training step split by phase: forward, backward "
        "(loss: the model's .loss, else the sum of its output), no optimizer",
    )
    # the group and the flags as sweep.py's owner words them (sweep.add_sweep_options, no longer called)
    sweeps = parser.add_argument_group("sweeps (one run with symbolic sizes where it holds, counts elsewhere)")
    sweeps.add_argument(
        "--sweep",
        action="append",
        default=[],
        metavar="NAME=START:STOP:xF|+S",
        help="batch or seq over a range: seq=128:32768:x2 (doubling), batch=1:8:+1, or seq=1,64,512",
    )
    sweeps.add_argument("--plot", metavar="FILE", help="with --sweep: plot MACs, FLOPs and bytes to FILE (.png, .svg)")
    parser.add_argument(
        "--generate",
        type=int,
        metavar="N",
        help="count generate() of N new tokens: the prefill, then each decode step over the KV "
        "cache (with --device NAME from the peak table: a roofline bound per token)",
    )
    measure = parser.add_argument_group("measuring (runs the model for real)")
    measure.add_argument("--measure", action="store_true", help="time the model and join times to the counts")
    measure.add_argument(
        "--device",
        help="where to measure: cpu, cuda, cuda:1 (default: the model's device); with --generate or several "
        "--parallel plans, a row of the peak table (H100-SXM, the plans' default)",
    )
    measure.add_argument("--peak-tflops", type=float, metavar="T", help="the device's peak TFLOP/s if unknown")
    measure.add_argument(
        "--recalibrate",
        action="store_true",
        help="measure this CPU's peaks again instead of using the cached calibration",
    )
    measure.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also show what libraries print on stderr while measuring (the profiler's own lines)",
    )
    return parser


def compare_parser() -> argparse.ArgumentParser:
    """`flopwise compare SPEC … [options]`."""
    parser = argparse.ArgumentParser(
        prog="flopwise compare",
        description="Count several models and compare them in one table, in the order given (ratios are "
        "relative to the first model that counted).",
        epilog="examples:\n"
        "  flopwise compare torchvision:resnet18 torchvision:resnet50 --plot resnets\n"
        "  flopwise compare 'torchvision:*'                every torchvision classification model\n"
        "  flopwise compare 'torchvision:detection/*' 'torchvision:efficientnet_b?'\n"
        "  flopwise compare --list models.txt --format csv --output zoo.csv\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("specs", nargs="*", metavar="SPEC", help="model specs as for `flopwise MODEL`, or globs")
    parser.add_argument("--list", metavar="FILE", help="a file with one spec a line (# starts a comment)")
    add_input_options(parser)
    add_count_options(parser)
    parser.add_argument("--plot", metavar="FILE", help="write a FLOPs-vs-params scatter plot to FILE.png and FILE.svg")
    return parser


DIFF_EXAMPLES = """examples:
  flopwise torchvision:resnet50 --format json -o before.json      (then change the model)
  flopwise torchvision:resnet50 --format json -o after.json
  flopwise diff before.json after.json
  flopwise diff before.json after.json --fail-if "macs>+2%" --fail-if "params>25M"

exit codes: 0 compared (and every budget kept), 2 usage error (a missing or unreadable file),
            4 a --fail-if budget is broken
"""


def diff_parser() -> argparse.ArgumentParser:
    """`flopwise diff BEFORE.json AFTER.json [options]`."""
    parser = argparse.ArgumentParser(
        prog="flopwise diff",
        description="Compare two saved counts (flopwise MODEL --format json): the change per module and in total.",
        epilog=DIFF_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("before", metavar="BEFORE.json")
    parser.add_argument("after", metavar="AFTER.json")
    parser.add_argument(
        "--format",
        type=output_format,
        choices=("table", "markdown", "json"),
        default="table",
        help="output format (default table; md = markdown)",
    )
    parser.add_argument("--all", action="store_true", help="also list the modules that did not change")
    parser.add_argument("--depth", type=int, metavar="N", help="modules down to depth N only (default: all)")
    add_budget_option(parser)
    parser.add_argument("--output", "-o", metavar="FILE", help="write the output to FILE instead of stdout")
    parser.add_argument("--quiet", "-q", action="store_true", help="no notices on stderr (a broken budget still is)")
    parser.add_argument("--traceback", action="store_true", help="show the full traceback of errors (debugging)")
    return parser


def check_model_options(options: argparse.Namespace) -> None:
    """Flags of `flopwise [MODEL]` that do not go together: a UsageError, before anything is imported."""
    if options.explain and options.format == "csv":
        raise UsageError("--explain goes with --format table, markdown or json, not csv")
    if options.shapes and options.format not in ("table", "markdown"):
        raise UsageError(
            f"--shapes adds columns to --format table or markdown, not {options.format} (JSON always "
            "has each module's input_shapes and output_shapes)"
        )
    if options.by_dtype and options.format in ("csv", "html"):
        raise UsageError(
            f"--by-dtype goes with --format table or markdown (json always has by_dtype), not {options.format}"
        )
    if options.parallel and options.format not in ("table", "json"):
        raise UsageError(f"--parallel prints a table or JSON (--format table or json), not {options.format}")
    if len(options.parallel) < 2 and (options.link or options.device_memory is not None):
        raise UsageError("--link and --device-memory go with two or more --parallel plans, which they compare")
    if options.device_memory is not None and not options.device_memory > 0:
        raise UsageError(
            f"--device-memory is one device's memory in GiB, a positive number; got {options.device_memory:g}"
        )
    if options.plot and not options.sweep:
        raise UsageError("--plot goes with --sweep (flopwise compare --plot FILE plots several models)")
    if options.model is None and (options.input or options.tokens or options.batch is not None or options.dtype):
        raise UsageError("--input, --tokens, --batch and --dtype need a MODEL (the guides' examples have theirs)")


PARSERS = {"": build_parser, "compare": compare_parser, "diff": diff_parser}


def parse(argv: list[str]) -> tuple[str, argparse.Namespace]:
    """(the subcommand: '', 'compare' or 'diff'; its options). --help, --version and usage errors exit here."""
    command = argv[0] if argv[:1] in (["compare"], ["diff"]) else ""
    options = PARSERS[command]().parse_args(argv[1:] if command else argv)
    if not command:
        check_model_options(options)
    for flag, path in (("--output", options.output), ("--plot", getattr(options, "plot", None))):
        problem = unwritable(path, flag) if path else None
        if problem is not None:  # said before anything is counted (and for every command, --sweep's output too)
            raise UsageError(problem)
    return command, options
