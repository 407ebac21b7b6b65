"""Data-dependent values in fake and meta mode: the value a real run on these inputs gives, or a clear decision.

Values computed from the inputs alone (`.item()`, `nonzero`, `pad_id in ids`) are computed from the real inputs
on the CPU; a value that depends on the weights makes count() run the model for real when it has weights, and
fail with a one-line reason when it is on the meta device.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import flopwise
from flopwise.shapes_only.values import NeedsData


class KeepsRealTokens(nn.Module):
    """Counts only the tokens that are not padding (id 0): the work depends on the values of the input."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 16)
        self.fc = nn.Linear(16, 8)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        kept = int((ids != 0).sum().item())  # .item(): a data-dependent scalar
        rows = (ids[0] != 0).nonzero().squeeze(1)  # nonzero: a data-dependent shape
        x = self.emb(ids[:, rows])
        assert x.shape[1] == kept
        if 3 in ids:  # Tensor.__contains__ runs .item() too
            x = self.fc(x)
        return x


IDS = torch.tensor([[1, 2, 3, 0, 0, 4, 0, 0]])  # 4 real tokens, among them a 3


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_input_dependent_values_are_computed_from_the_inputs(mode: str) -> None:
    r = flopwise.count(KeepsRealTokens(), IDS, mode=mode)
    assert r.macs == 4 * 16 * 8  # kept tokens · in · out: the fc runs because 3 is among the ids
    assert r.unsupported == {}
    if mode != "real":
        assert any("computed from the real inputs" in w and "aten._local_scalar_dense" in w for w in r.warnings)
        assert "aten.nonzero" in " ".join(r.warnings)


def test_the_inputs_are_left_as_found() -> None:
    ids = IDS.clone()
    flopwise.count(KeepsRealTokens(), ids, mode="meta")
    assert torch.equal(ids, IDS)


class Router(nn.Module):
    """Sends the batch through the expert its router scores highest: the path depends on the weights."""

    def __init__(self) -> None:
        super().__init__()
        self.router = nn.Linear(4, 2)
        self.experts = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 8)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        choice = int(self.router(x).sum(0).argmax().item())
        return self.experts[choice](x)


def test_a_weight_dependent_value_runs_the_model_for_real() -> None:
    torch.manual_seed(0)
    model, x = Router(), torch.randn(3, 4)
    real = flopwise.count(model, x)
    fake = flopwise.count(model, x, mode="fake")
    chosen = int(model.router(x).sum(0).argmax())
    assert fake.macs == real.macs == 3 * 4 * 2 + 3 * 4 * (4, 8)[chosen]  # router, then the chosen expert
    assert real.warnings == []
    assert len(fake.warnings) == 1 and "counting again in real mode" in fake.warnings[0]
    assert "aten._local_scalar_dense in module '(root)'" in fake.warnings[0]


def test_a_weight_dependent_value_on_the_meta_device_fails_in_one_line() -> None:
    with torch.device("meta"):
        model = Router()
    with pytest.raises(NeedsData) as caught:
        flopwise.count(model, torch.randn(3, 4))
    message = str(caught.value)
    assert "\n" not in message
    assert "aten._local_scalar_dense in module '(root)' needs a value computed from the weights" in message
    assert "a model on the meta device has none: count a model with weights (mode='real')" in message
    assert "hf:" not in message  # the config rebuild is for transformers models, which this is not


def test_a_transformers_model_on_the_meta_device_is_offered_the_config_rebuild() -> None:
    transformers = pytest.importorskip("transformers")

    class Trimmed(transformers.LlamaModel):  # keeps one or two positions, chosen by a value of the weights
        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            hidden = super().forward(input_ids).last_hidden_state
            return hidden[:, : int(hidden.sum() > 0) + 1]

    config = transformers.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, vocab_size=100
    )
    with torch.device("meta"):
        model = Trimmed(config).eval()
    with pytest.raises(NeedsData) as caught:
        flopwise.count(model, {"input_ids": torch.randint(0, 100, (1, 8))})
    message = str(caught.value)
    assert "\n" not in message and "needs a value computed from the weights" in message
    assert "count a model with weights (mode='real'), or, from the command line, `flopwise hf:config.json`" in message


def test_transformers_models_that_check_their_inputs_count_on_meta() -> None:
    transformers = pytest.importorskip("transformers")
    # BioGPT's mask code asks `padding_mask.all()` and DeBERTa's warns on padding with `pad_id in ids[:, [-1, 0]]`
    config = transformers.BioGptConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=100
    )
    torch.manual_seed(0)
    model = transformers.BioGptModel(config).eval()
    with torch.device("meta"):
        on_meta = transformers.BioGptModel(config).eval()
    ids = {"input_ids": torch.randint(2, 100, (1, 16))}
    real = flopwise.count(model, ids)
    r = flopwise.count(on_meta, ids)
    fake = flopwise.count(model, ids, mode="fake")
    layer = 16 * 32 * 32 * 4 + 2 * 4 * 16 * 16 * 8 + 2 * 16 * 32 * 64  # q,k,v,o · QKᵀ,AV per head · fc1,fc2
    assert r.macs == real.macs == 2 * layer
    assert r.unsupported == {}
    # transformers builds its attention mask differently when it sees fake tensors (is_tracing() in
    # masking_utils): the mask is materialized instead of is_causal=True, a few elementwise FLOPs apart
    assert (r.flops, r.bytes_read, r.bytes_written) == (fake.flops, fake.bytes_read, fake.bytes_written)


def test_a_module_with_some_conv_attributes_is_described_not_fatal() -> None:
    class HalfConv(nn.Module):  # like transformers' MimiConv1d: in_channels and kernel_size, no out_channels
        def __init__(self) -> None:
            super().__init__()
            self.in_channels, self.kernel_size = 4, 3
            self.conv = nn.Conv1d(4, 2, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x)

    r = flopwise.count(HalfConv(), torch.randn(1, 4, 10))
    assert r.macs == 8 * 3 * 4 * 2  # L_out·K·C_in·C_out


class MasksFirstToken(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2, bias=False)

    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        keep = ids.clone()
        keep[:, 0] = 0  # an in-place write the shadow follows
        n = int(keep.count_nonzero().item())
        return self.fc(x[:n])


def test_in_place_writes_are_followed() -> None:
    ids, x = torch.tensor([[5, 6, 0, 7]]), torch.randn(4, 4)
    for mode in ("real", "fake", "meta"):
        r = flopwise.count(MasksFirstToken(), (ids, x), mode=mode)
        assert r.macs == 2 * 4 * 2, mode  # 2 ids left non-zero once the first is masked · in · out


class RowsFromScalars(nn.Module):
    """Builds a tensor from 0-d tensors (`torch.tensor([n + 1, n - 1])`, as Qwen2-VL-style rope indices do):
    torch reads their storage below the dispatcher, where a fake tensor has none."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        n = (ids == 3).sum()
        rows = torch.tensor([n + 1, n - 1])
        return self.fc(x[: int(rows.max())])


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_a_tensor_built_from_scalar_tensors_takes_their_real_values(mode: str) -> None:
    ids, x = torch.tensor([[3, 3, 0, 0]]), torch.randn(8, 4)
    r = flopwise.count(RowsFromScalars(), (ids, x), mode=mode)
    assert r.macs == (2 + 1) * 4 * 4  # two 3s: rows = [3, 1], max 3 rows through the 4→4 Linear
    if mode != "real":
        assert "torch.tensor ×2" in r.warnings[-1]  # said: computed from the real inputs


class RowsFromWeights(RowsFromScalars):
    def forward(self, ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x[: int(torch.tensor([self.fc.weight.sum()]).max())])


def test_a_tensor_built_from_weight_dependent_scalars_needs_data() -> None:
    with torch.device("meta"):
        model = RowsFromWeights()
    with pytest.raises(NeedsData, match="torch.tensor in module"):
        flopwise.count(model, (torch.tensor([[3]]), torch.randn(8, 4)))


class CastsItsRouter(nn.Module):
    """Switch Transformers' router casts its classifier inside forward (`self.classifier.to(dtype)`): on fake
    parameters torch swaps tensors there, and refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.classifier = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.classifier = self.classifier.to(torch.float32)
        return self.classifier(x)


def test_module_to_in_forward_counts_for_real_and_says_why() -> None:
    r = flopwise.count(CastsItsRouter(), torch.randn(3, 4), mode="fake")
    assert r.macs == 3 * 4 * 2  # rows · in · out
    assert "Module.to() in forward in module '(root)', which needs real parameters" in r.warnings[0]
    with torch.device("meta"):
        model = CastsItsRouter()
    with pytest.raises(NeedsData, match="torch cannot swap fake ones"):
        flopwise.count(model, torch.randn(3, 4))


class SizesInBuffers(nn.Module):
    """inkling_mm_model keeps a layer's in_features as a tensor: fake in shape-only modes, so formatting it for
    the module's description would ask for its value."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("in_features", torch.tensor(4))
        self.out_features = 2
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_a_module_whose_sizes_are_tensors_is_described_not_fatal(mode: str) -> None:
    r = flopwise.count(SizesInBuffers(), torch.randn(3, 4), mode=mode)
    assert r.macs == 3 * 4 * 2  # rows · in · out


class CopiesItsCache(nn.Module):
    """Dory and Inkling2-Loop deep-copy their KV cache layers in forward, with a tensor a layer made by
    `torch.tensor(window)`: copying that fake tensor's storage (torch keeps it on the meta device) is refused, so
    shape-only counts clone it instead."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(8, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cache = {"keys": x * 2, "window": torch.tensor(4)}
        copied = copy.deepcopy(cache)
        return self.proj(copied["keys"])


@pytest.mark.parametrize("mode", ["real", "fake", "meta"])
def test_a_deep_copy_of_a_tensor_counts_as_the_copy_a_real_run_makes(mode: str) -> None:
    r = flopwise.count(CopiesItsCache(), torch.randn(3, 8), mode=mode)
    assert r.macs == 3 * 8 * 4  # rows · in · out
    # x·2 reads and writes 3·8 floats; the copy reads and writes them again, and the int64 window; the Linear
    # reads x·2 and its 8·4 weight, and writes 3·4
    assert r.bytes_read == 4 * 3 * 8 + (4 * 3 * 8 + 8) + 4 * (3 * 8 + 8 * 4)
    assert r.bytes_written == 4 * 3 * 8 + (4 * 3 * 8 + 8) + 4 * 3 * 4
