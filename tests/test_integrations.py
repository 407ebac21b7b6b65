"""The trainer callbacks log flopwise's figures in real Trainer runs of tiny models (CPU, a few steps)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from torch import nn


def test_transformers_trainer_logs_flops_and_mfu(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from flopwise.integrations.hf import FlopwiseCallback

    L, d, H, V, B, T = 1, 32, 2, 100, 2, 16
    config = transformers.GPT2Config(n_layer=L, n_embd=d, n_head=H, vocab_size=V, n_positions=T)
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config)
    data = [{"input_ids": ids, "labels": ids} for ids in torch.randint(0, V, (8, T))]
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=3,
        per_device_train_batch_size=B,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        dataloader_num_workers=0,
    )
    callback = FlopwiseCallback(peak_tflops=1.0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data, callbacks=[callback])
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 3
    D = B * T
    # contractions of a GPT-2 train step: 6·D·W + 12·L·d·T·D, W = 12·L·d² + d·V (the tied LM head)
    expected = 6 * D * (12 * L * d * d + d * V) + 12 * L * d * T * D
    assert [entry["flops"] for entry in logs] == [expected] * 3
    assert all(entry["tflops_per_s"] > 0 and 0 < entry["mfu"] <= 1 for entry in logs)
    assert callback.monitor is not None and callback.monitor.summary()["steps"] == 3


def test_lightning_trainer_logs_flops_and_mfu(tmp_path: Path) -> None:
    lightning = pytest.importorskip("lightning")
    from lightning.pytorch.loggers import CSVLogger

    from flopwise.integrations.lightning import FlopwiseCallback

    N, K, Hd, M = 4, 8, 16, 2

    class Module(lightning.LightningModule):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(nn.Linear(K, Hd), nn.ReLU(), nn.Linear(Hd, M))

        def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
            (x,) = batch
            return self.net(x).sum()  # the submodule directly: the module's own forward never runs

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.01)

    torch.manual_seed(0)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(4 * N, K)), batch_size=N)
    trainer = lightning.Trainer(
        max_steps=3,
        accelerator="cpu",
        devices=1,
        log_every_n_steps=1,
        logger=CSVLogger(str(tmp_path)),
        callbacks=[FlopwiseCallback(peak_tflops=1.0)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Module(), loader)
    rows = [r for r in csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))) if r.get("flops")]
    assert len(rows) == 3
    # contractions: forward N·K·H + N·H·M; backward both weight gradients and the second input gradient
    expected = 2 * (2 * N * K * Hd + 3 * N * Hd * M)
    assert [float(r["flops"]) for r in rows] == [expected] * 3
    assert all(float(r["tflops_per_s"]) > 0 and 0 < float(r["mfu"]) <= 1 for r in rows)
