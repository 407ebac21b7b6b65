"""Bytes moved: every tensor input is read (weights included), every output written; views move nothing."""

from __future__ import annotations

import torch
from torch import nn

import flopwise

MiB = 1024 * 1024


def test_add_of_two_1024_square_fp32_tensors() -> None:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    with flopwise.counting() as c:
        a + b
    assert c.report.bytes_read == 8 * MiB  # two 4 MiB inputs
    assert c.report.bytes_written == 4 * MiB  # one 4 MiB output
    assert c.report.intensity == 1024 * 1024 / (12 * MiB)  # one FLOP per 12 bytes


def test_in_place_and_out_forms_move_what_they_touch() -> None:
    a, b = torch.randn(256, 256), torch.randn(256, 256)
    with flopwise.counting() as c:
        a.add_(b)
    assert (c.report.bytes_read, c.report.bytes_written) == (2 * 256 * 256 * 4, 256 * 256 * 4)
    out = torch.empty(256, 256)
    with flopwise.counting() as c:
        torch.add(a, b, out=out)
    assert (c.report.bytes_read, c.report.bytes_written) == (2 * 256 * 256 * 4, 256 * 256 * 4)


def test_views_move_nothing() -> None:
    x = torch.randn(16, 32)
    with flopwise.counting() as c:
        x.view(32, 16).t().transpose(0, 1)[2:5].unsqueeze(0).expand(4, -1, -1)
    assert c.report.bytes_read == c.report.bytes_written == 0
    assert len(c.report.calls) == 6  # view, t, transpose, slice, unsqueeze, expand: each still listed


def test_linear_reads_input_weight_and_bias_and_dtype_sizes_count() -> None:
    layer = nn.Linear(64, 32)
    r = flopwise.count(layer, torch.randn(8, 64))
    assert r.bytes_read == (8 * 64 + 64 * 32 + 32) * 4  # input + weight + bias, fp32
    assert r.bytes_written == 8 * 32 * 4
    half = flopwise.count(nn.Linear(64, 32).half(), torch.randn(8, 64).half(), mode="meta")
    assert half.bytes_read == (8 * 64 + 64 * 32 + 32) * 2  # fp16: 2 bytes each
    assert half.bytes_written == 8 * 32 * 2


def test_per_module_and_per_operator_bytes_sum_to_the_total() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    x = torch.randn(2, 3, 10, 10)
    model(x)  # materialize the lazy layer
    r = flopwise.count(model.eval(), x)
    children = [row for row in r.by_module(depth=1) if row.depth == 1]
    assert sum(row.bytes_read for row in children) == r.bytes_read
    assert sum(cost.bytes_written for cost in r.by_operator().values()) == r.bytes_written
    relu = r["2"]
    assert relu.bytes_read == relu.bytes_written == 2 * 8 * 8 * 8 * 4  # reads its input, writes its output
    assert relu.intensity == (2 * 8 * 8 * 8) / (2 * 2 * 8 * 8 * 8 * 4)  # 1 FLOP per 8 bytes


def test_an_embedding_reads_only_the_rows_it_looks_up() -> None:
    table = nn.Embedding(50_257, 64)
    ids = torch.randint(0, 50_257, (2, 128))
    r = flopwise.count(table, ids)
    assert r.bytes_read == 2 * 128 * 8 + 2 * 128 * 64 * 4  # int64 ids + the rows read, not the 12.9 MB table
    assert r.bytes_written == 2 * 128 * 64 * 4
    assert r.flops == 0


def test_indexing_reads_the_index_and_the_selected_elements() -> None:
    x, idx = torch.randn(100, 10), torch.tensor([3, 7, 7])
    with flopwise.counting() as c:
        x.index_select(0, idx)
        x[idx]
        x.gather(0, idx.view(3, 1).expand(3, 10))
    reads = [call.cost.bytes_read for call in c.report.calls if call.cost.bytes_read]
    rows = 3 * 8 + 3 * 10 * 4  # 3 int64 indices + the 30 float32 elements of 3 rows
    assert reads == [rows, rows, 30 * 8 + 30 * 4]  # gather takes one int64 index per element it reads


def test_allocations_move_no_bytes_and_copies_read_only_their_source() -> None:
    src = torch.randn(256, 256)
    with flopwise.counting() as c:
        dst = torch.empty(256, 256)
        dst.copy_(src)
    allocate, copy = c.report.calls
    assert (allocate.cost.bytes_read, allocate.cost.bytes_written) == (0, 0)
    assert (copy.cost.bytes_read, copy.cost.bytes_written) == (256 * 256 * 4, 256 * 256 * 4)  # src in, dst out


def test_identical_calls_share_a_cost_but_aliasing_is_kept_apart() -> None:
    x, y = torch.randn(32, 32), torch.randn(32, 32)
    with flopwise.counting() as c:
        x * y
        x * x  # same shapes and dtypes, but one tensor read once
        x * y
    reads = [call.cost.bytes_read for call in c.report.calls]
    assert reads == [2 * 32 * 32 * 4, 32 * 32 * 4, 2 * 32 * 32 * 4]
