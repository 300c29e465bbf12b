#!/usr/bin/env python
"""Post-processing ablation on the demo models: PQ and mIoU of MaskFormer and Mask2Former with the
model's own fusion, Panoptic SegFormer's mask-wise merging and pixel-wise argmax, all three scored from one
forward per model (``eval --grid postprocess=default,maskwise,argmax``; docs/eval.md, "Grids").

    .venv/bin/python scripts/ablation_postprocess.py [--results /tmp/panbench-ablation]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, default=Path("/tmp/panbench-ablation"))
    a = ap.parse_args()
    subprocess.run([sys.executable, "-m", "panbench", "eval", "--model", "maskformer,mask2former", "--dataset", "demo",
                    "--grid", "postprocess=default,maskwise,argmax", "--results", str(a.results), "--no-progress",
                    "--no-resume"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    from panbench.records.io import load_records
    from panbench.reporting.tables import latest_runs

    print("| model | post-processing | PQ | PQ_th | PQ_st | mIoU | pixel acc |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for r in sorted(latest_runs(load_records(a.results), "demo"), key=lambda r: (r["model"], r["postprocess"])):
        m, s = r["metrics"], r["semantic"]
        print(f"| {r['model']} | {r['postprocess']} | {m['PQ']:.2f} | {m['PQ_th']:.2f} | {m['PQ_st']:.2f} | "
              f"{s['mIoU']:.2f} | {s['pixel_acc']:.2f} |")


if __name__ == "__main__":
    main()
