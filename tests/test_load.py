"""Model specs and inputs, in process: every spec kind, every malformed value with the fix in its message."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from flopwise.cli.errors import UsageError
from flopwise.cli.inputs import Shaped, make_inputs, parse_input, parse_shape, parse_tokens, with_batch
from flopwise.cli.load import load
from flopwise.cli.spec import InputFlags

MODEL_FILE = """
import torch
from torch import nn

class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(x)

class NeedsArgs(nn.Module):
    def __init__(self, width):
        super().__init__()

def build():
    return Tiny(), torch.rand(2, 8)

def with_own_inputs():
    model = Tiny()
    model.example_inputs = lambda: torch.rand(5, 8)
    return model
"""


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "models.py"
    path.write_text(MODEL_FILE)
    return path


def test_shapes_and_dtypes():
    assert parse_shape("1x3x224x224") == (1, 3, 224, 224)
    assert parse_shape("1×3×32") == (1, 3, 32)
    assert parse_input("1x128:int64") == ("", Shaped((1, 128), torch.int64))
    assert parse_input("2x4:bf16") == ("", Shaped((2, 4), torch.bfloat16))
    assert parse_input("pixel_values=1x3x8x8") == ("pixel_values", Shaped((1, 3, 8, 8)))
    assert parse_tokens("4x512") == (4, 512)


def test_inputs_stay_shapes_until_the_mode_is_known():
    shaped = Shaped((1, 3, 100_000, 100_000))  # 120 GB as float32 data
    assert shaped.make(real=False).is_meta and shaped.make(real=False).shape == (1, 3, 100_000, 100_000)
    real = Shaped((2, 3), torch.int64, prefix=(7, 2)).make(real=True)
    assert real.tolist() == [[7, 7, 0], [7, 7, 0]]  # the first 2 positions hold the token 7 (image placeholders)
    assert make_inputs({"x": [Shaped((2,))]}, real=True)["x"][0].shape == (2,)


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,3,224", "expects sizes like 1x3x224x224, got '1,3,224' (use x between sizes)"),
        ("", "expects sizes like 1x3x224x224"),
        ("1x0x3", "sizes must be positive"),
        ("1x3:float7", "unknown dtype 'float7'; expected one of"),
        ("99999999999999999999x3x32x32", "is impossibly large"),
        ("1x²", "expects sizes like 1x3x224x224"),
        ("my-name=1x3", "'my-name' is not an argument name"),
    ],
)
def test_malformed_inputs_name_the_fix(text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_input(text)


def test_tokens_need_two_sizes():
    with pytest.raises(UsageError, match="--tokens expects batch x sequence length like 1x128, got '1x2x3'"):
        parse_tokens("1x2x3")


def test_batch_repeats_the_first_dimension():
    assert with_batch(torch.zeros(1, 3, 8, 8), 4).shape == (4, 3, 8, 8)
    images = with_batch(([torch.zeros(3, 8, 8)],), 3)
    assert len(images[0]) == 3  # detection models take a list of images
    assert with_batch({"input_ids": torch.zeros(1, 7)}, 2)["input_ids"].shape == (2, 7)
    assert with_batch(Shaped((1, 3, 8, 8)), 4) == Shaped((4, 3, 8, 8))
    with pytest.raises(UsageError, match="--batch expects a positive integer, got 0"):
        with_batch(torch.zeros(1), 0)


def test_python_file_specs(model_file):
    built = load(f"{model_file}:build")
    assert isinstance(built.model, nn.Module) and built.inputs.shape == (2, 8)
    own = load(f"{model_file}:with_own_inputs")
    assert own.inputs.shape == (5, 8)
    explicit = load(f"{model_file}:Tiny", InputFlags(inputs=("3x8",)))
    assert explicit.inputs.shape == (3, 8)
    two = load(f"{model_file}:Tiny", InputFlags(inputs=("3x8", "3x2:int64")))
    assert [t.dtype for t in two.inputs] == [torch.float32, torch.int64]


@pytest.mark.parametrize(
    "suffix, flags, message",
    [
        (":Tiny", InputFlags(), "no example inputs known for this model; pass --input SIZES"),
        (":nope", InputFlags(), "defines no 'nope'; expected one of Tiny, NeedsArgs, build, with_own_inputs"),
        (":NeedsArgs", InputFlags(), "NAME must build with no arguments"),
        (":Tiny", InputFlags(inputs=("3x8", "y=3x8")), "give every --input a name"),
        ("", InputFlags(), "say which model to count, as"),
        (":build", InputFlags(inputs=("1x8",), tokens="1x8"), "give either --input or --tokens, not both"),
        (":build", InputFlags(inputs=("1x8",), batch=2), "with --input, write the batch into the sizes"),
    ],
)
def test_python_file_mistakes(model_file, suffix, flags, message):
    with pytest.raises(UsageError, match=message):
        load(f"{model_file}{suffix}", flags)


def test_a_file_that_raises_on_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("raise RuntimeError('no GPU here')\n")
    with pytest.raises(UsageError, match="bad.py: importing it raised RuntimeError: no GPU here"):
        load(f"{bad}:anything")


def test_unknown_specs_suggest_the_form():
    with pytest.raises(UsageError, match="did you mean torchvision:resnet18"):
        load("resnet18")
    with pytest.raises(UsageError, match="torchvision has no model named 'resnet19'; did you mean resnet"):
        load("torchvision:resnet19")
    with pytest.raises(UsageError, match="did you mean resnet18"):  # a transposition, not only a common prefix
        load("torchvision:resent18")
    with pytest.raises(UsageError, match="no such guide example"):
        load("guides:Nope")


def test_torchvision_default_inputs_per_family():
    assert load("torchvision:squeezenet1_1").inputs.shape == (1, 3, 224, 224)
    assert load("torchvision:inception_v3").inputs.shape == (1, 3, 299, 299)  # the weights' crop size
    assert load("torchvision:r3d_18", InputFlags(batch=2)).inputs.shape == (2, 3, 16, 112, 112)
    flow = load("torchvision:raft_small").inputs
    assert [t.shape for t in flow] == [(1, 3, 520, 960)] * 2  # two frames


def test_hf_config_is_built_on_meta(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=50, n_positions=40)
    config.architectures = ["GPT2LMHeadModel"]
    config.save_pretrained(tmp_path)
    loaded = load(f"hf:{tmp_path}")
    assert type(loaded.model).__name__ == "GPT2LMHeadModel"
    assert all(p.is_meta for p in loaded.model.parameters())
    assert loaded.inputs["input_ids"].shape == (1, 40)  # min(128, n_positions)
    assert load(f"hf:{tmp_path}/config.json", InputFlags(tokens="2x9")).inputs["input_ids"].shape == (2, 9)
    with pytest.raises(UsageError, match="41 tokens is longer than the model's 40 positions \\(n_positions"):
        load(f"hf:{tmp_path}", InputFlags(tokens="1x41"))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no config.json at"),
        ("{not json", "is not valid JSON"),
        (json.dumps({"n_layer": 1}), 'has no "model_type" key'),
        (json.dumps({"model_type": "no-such-model"}), "has no model_type 'no-such-model'$"),
        (json.dumps({"model_type": "lama"}), "has no model_type 'lama'; did you mean llama"),
    ],
)
def test_hf_mistakes(tmp_path, content, message):
    pytest.importorskip("transformers")
    if content is not None:
        (tmp_path / "config.json").write_text(content)
    with pytest.raises(UsageError, match=message):
        load(f"hf:{tmp_path}")


def test_archives_are_loaded_safely(tmp_path):
    model = nn.Sequential(nn.Linear(4, 3))
    torch.save(model, tmp_path / "pickled.pt")
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UsageError, match="unpickling can run any code .* add --allow-pickle"):
        load(str(tmp_path / "pickled.pt"))
    with pytest.raises(UsageError, match="holds OrderedDict \\(weights only, no architecture\\)"):
        load(str(tmp_path / "weights.pt"))
    with pytest.raises(UsageError, match="junk.pt: not a torch file"):
        load(str(tmp_path / "junk.pt"))
    with pytest.raises(UsageError, match="no such file"):
        load(str(tmp_path / "missing.pt2"))
    allowed = load(str(tmp_path / "pickled.pt"), InputFlags(inputs=("2x4",), allow_pickle=True))
    assert isinstance(allowed.model, nn.Sequential)
    assert "--allow-pickle" in allowed.notes[0]


def test_torchvision_shape_only_loads_build_on_meta_and_count_alike():
    from flopwise.cli.common import count_loaded

    fast = load("torchvision:resnet18", weights=False)  # compare's shape-only counts: no random initialisation
    assert all(p.is_meta for p in fast.model.parameters())  # (buffers made by torch.zeros stay on the CPU)
    assert fast.rebuild is not None and not any(p.is_meta for p in fast.rebuild().parameters())  # real fallback
    built = load("torchvision:resnet18")
    assert not any(p.is_meta for p in built.model.parameters())
    on_meta, with_weights = (count_loaded(x, "fake", "default", lambda _: None) for x in (fast, built))
    assert on_meta.to_dict() == with_weights.to_dict()
    regnet = load("torchvision:regnet_y_400mf", weights=False)  # computes its sizes from tensor values on the CPU
    assert all(p.is_meta for p in regnet.model.parameters())
