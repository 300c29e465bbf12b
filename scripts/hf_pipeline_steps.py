#!/usr/bin/env python
"""How far each step of an hf: model's pipeline moves its output from the original's (docs/huggingface.md,
"Pipelines"): for each model, ``panbench eval`` under ``--grid pipeline=original,original-masks,original-input`` (one
forward, the original's input) and under ``--pipeline transformers``, each saving its predictions; then each
pipeline's predictions scored by ``panbench score`` against the original pipeline's own as the ground truth (PQ 100:
the same segments on every image).  Against the dataset's ground truth the same runs' records give each step's PQ
(``panbench table``); with random weights that PQ is near 0 and this agreement is what an example can show.

    .venv/bin/python scripts/hf_pipeline_steps.py --model hf:DIR [--model hf:DIR2 ...] --dataset demo --limit 20

Prints one row per model: the PQ (All) of original-masks, original-input and transformers against the original."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

STEPS = ("original-masks", "original-input", "transformers")


def panbench(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "panbench", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"panbench {' '.join(args[:3])} ...: exit {out.returncode}: {out.stderr.strip()[-500:]}")
    return out.stdout


def predictions(folder: Path) -> tuple[Path, Path]:
    (js,) = [p for p in folder.glob("*_results.json")]
    return js, js.with_suffix("")


def steps(model: str, dataset: str, limit: int, work: Path, wanted: tuple[str, ...]) -> dict[str, float]:
    common = ["--model", model, "--dataset", dataset, "--limit", str(limit), "--results", str(work / "res"),
              "--no-progress", "--cpu-procs", "1", "--flops-images", "0", "--no-ap"]
    grid = ",".join(["original", *(s for s in wanted if s != "transformers")])
    panbench("eval", *common, "--grid", f"pipeline={grid}", "--save-predictions", str(work / "grid"))
    panbench("eval", *common, "--pipeline", "transformers", "--save-predictions", str(work / "transformers"))
    gt_json, gt_dir = predictions(work / "grid" / "pipeline-original")
    out = {}
    for step in wanted:
        js, d = predictions(work / ("transformers" if step == "transformers" else "grid") /
                            ("" if step == "transformers" else f"pipeline-{step}"))
        doc = json.loads(panbench("score", "--gt-json", str(gt_json), "--gt-dir", str(gt_dir), "--pred-json",
                                  str(js), "--pred-dir", str(d), "--json", "--no-analysis"))
        out[step] = doc["PQ"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True, help="hf:DIR or a registered hf- name (repeatable)")
    ap.add_argument("--dataset", default="demo")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--steps", default=",".join(STEPS),
                    help="the pipelines to compare with the original (DETR has no original-masks step)")
    args = ap.parse_args(argv)
    wanted = tuple(s for s in STEPS if s in args.steps.split(","))
    print(f"PQ (All) of each pipeline's output against the original pipeline's output ({args.dataset}, "
          f"{args.limit} images)")
    print(f"| model | {' | '.join(wanted)} |\n| --- |{' ---: |' * len(wanted)}")
    for model in args.model:
        with tempfile.TemporaryDirectory() as tmp:
            row = steps(model, args.dataset, args.limit, Path(tmp), wanted)
        print(f"| {model} | " + " | ".join(f"{row[s]:.2f}" for s in wanted) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
