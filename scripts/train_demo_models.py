#!/usr/bin/env python
"""Train the three demo models on the demo train split (CPU, mmengine's Runner) and write the
committed checkpoints under ``checkpoints/demo/`` with their sha256, a training-log summary and the
command that made them (``checkpoints/demo/MANIFEST.json``).

    .venv/bin/python scripts/train_demo_models.py [--models mask2former,maskformer,panoptic-fpn]
                                                  [--max-iters N] [--threads 2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "checkpoints" / "demo"


def train_one(name: str, max_iters: int | None, work_root: Path) -> dict:
    import torch
    from mmengine.runner import Runner

    from panbench.data.demo import make_demo
    from panbench.models.mmdet import mm

    make_demo(ROOT / "data" / "demo")
    cfg_path = ROOT / "configs" / "demo" / f"{name}.py"
    cfg = mm.load_config(cfg_path)
    if max_iters:
        cfg.train_cfg.max_iters = max_iters
        cfg.param_scheduler[1].end = max_iters
        cfg.param_scheduler[1].milestones = [int(max_iters * 0.8)]
        cfg.default_hooks.checkpoint.interval = max_iters
    cfg.work_dir = str(work_root / name)
    cfg.train_dataloader.dataset.data_root = str(ROOT / "data" / "demo") + "/"
    cfg.launcher = "none"
    t = time.time()
    runner = Runner.from_cfg(cfg)
    runner.train()
    minutes = (time.time() - t) / 60
    model = runner.model
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    ckpt = {"meta": {"dataset_meta": {"classes": tuple(mm.class_names(cfg))}, "iter": cfg.train_cfg.max_iters,
                     "config": cfg_path.name},
            "state_dict": state}
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / f"{name}.tmp"
    torch.save(ckpt, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    final = OUT / f"demo-{name}-{digest[:8]}.pth"
    for old in OUT.glob(f"demo-{name}-*.pth"):
        old.unlink()
    tmp.rename(final)
    log = _log_summary(Path(cfg.work_dir))
    return {"model": f"demo-{name}", "file": final.name, "sha256": digest, "bytes": final.stat().st_size,
            "params": mm.count_parameters(model), "max_iters": cfg.train_cfg.max_iters,
            "train_minutes": round(minutes, 1), "threads": torch.get_num_threads(), "log": log}


def _log_summary(work_dir: Path) -> dict:
    """First and last logged losses from mmengine's scalars.json."""
    files = sorted(work_dir.glob("*/vis_data/scalars.json"))
    if not files:
        return {}
    rows = [json.loads(line) for line in files[-1].read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "loss" in r]
    if not rows:
        return {}
    return {"first": {k: round(v, 4) for k, v in rows[0].items() if "loss" in k or k == "iter"},
            "last": {k: round(v, 4) for k, v in rows[-1].items() if "loss" in k or k == "iter"},
            "s_per_iter": round(rows[-1].get("time", 0.0), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="mask2former,maskformer,panoptic-fpn")
    ap.add_argument("--max-iters", type=int, help="override the configs' max_iters")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work-dir", type=Path, default=ROOT / "work_dirs" / "demo")
    a = ap.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    manifest_path = OUT / "MANIFEST.json"
    for name in a.models.split(","):
        entry = train_one(name, a.max_iters, a.work_dir)
        entry["command"] = " ".join(shlex.quote(x) for x in [".venv/bin/python", "scripts/train_demo_models.py",
                                                              *sys.argv[1:]])
        # read just before writing: several trainings may run side by side
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        manifest[f"demo-{name}"] = entry
        OUT.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
        print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
