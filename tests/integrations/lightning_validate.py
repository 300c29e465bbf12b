"""``Trainer.validate`` of PanbenchPanopticQuality in a LightningModule (run by test_torchmetrics_metric.py).

    python lightning_validate.py DATA.npz OUT_DIR DEVICES [DEVICES ...]

DATA.npz holds ``preds`` and ``target`` (N, H, W, 2) and ``things``/``stuffs``; the images are the validation
set (batches of 1, Lightning's DistributedSampler splits them over the processes).  Per DEVICES, in the order
given, a validation on that many CPU processes (more than one: strategy ``ddp``, gloo; give it last, as its process
group stays); rank 0 writes OUT_DIR/out{DEVICES}.json: the metrics' values after Lightning's sync, what
``trainer.validate`` returned and how many images each process scored.  The processes Lightning starts for the
other ranks (``LOCAL_RANK`` set) run the ``ddp`` validation only.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from panbench.integrations.torchmetrics import PanbenchPanopticQuality


class Images(Dataset):
    def __init__(self, data: Any) -> None:
        self.preds, self.target = torch.from_numpy(data["preds"]), torch.from_numpy(data["target"])

    def __len__(self) -> int:
        return len(self.preds)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.preds[k], self.target[k]


class PanopticScorer(L.LightningModule):
    """A model's validation with PQ as a torchmetrics metric (the predictions are given: no network here)."""

    def __init__(self, things: list[int], stuffs: list[int]) -> None:
        super().__init__()
        self.pq = PanbenchPanopticQuality(things, stuffs)
        self.pq_sq_rq = PanbenchPanopticQuality(things, stuffs, return_sq_and_rq=True)
        self.per_class = PanbenchPanopticQuality(things, stuffs, return_per_class=True)
        self.seen = 0
        self.values: dict[str, Any] = {}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        preds, target = batch
        self.seen += len(preds)
        for m in (self.pq, self.pq_sq_rq, self.per_class):
            m.update(preds, target)
        self.log("val_pq", self.pq, on_epoch=True)  # Lightning computes (syncs) and resets it at the epoch end

    def on_validation_epoch_end(self) -> None:
        seen = self.all_gather(torch.tensor(self.seen)).reshape(-1).tolist()
        self.values = {"pq_sq_rq": self.pq_sq_rq.compute().tolist(), "per_class": self.per_class.compute().tolist(),
                       "seen_per_process": seen}


def validate(data: Any, out_path: Path, devices: int) -> None:
    model = PanopticScorer(data["things"].tolist(), data["stuffs"].tolist())
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
                        logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False)
    returned = trainer.validate(model, DataLoader(Images(data), batch_size=1))
    if trainer.global_rank == 0:
        with open(out_path, "w") as f:
            json.dump({**model.values, "returned": returned, "world_size": trainer.world_size}, f)


def main(data_path: str, out_dir: str, devices: list[int]) -> None:
    data = np.load(data_path)
    launched = os.environ.get("LOCAL_RANK", "0") != "0"  # a rank Lightning started for a ddp validation
    for d in devices:
        if d > 1 or not launched:
            validate(data, Path(out_dir) / f"out{d}.json", d)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(d) for d in sys.argv[3:]])
