#!/usr/bin/env python
"""Eager against ``torch.compile`` forward FPS on this machine's CPU, side by side in one run.

Models: the three demo models (committed weights, demo val images) and the zoo's R-50 Mask2Former and
PanopticFPN at the zoo's test size (the config's test pipeline on the COCO panoptic val sample's images: 1333x800
keep-ratio), built from their configs with random weights (no checkpoint is downloaded: speed does not depend on
the weights' values).  Per model, three copies with the same weights:

  eager      the model as ``panbench eval`` runs it
  compiled   ``panbench speed --compile``: :func:`panbench.evaluation.speed.compile_model` (backbone and neck)
  +heads     the same and the heads too (MaskFormer/Mask2Former ``panoptic_head``; PanopticFPN ``rpn_head``,
             ``roi_head``, ``semantic_head``): where dynamo breaks the graph (mmengine data samples, mmcv ops)

Each copy runs ``panbench speed``'s forward timing (:func:`panbench.evaluation.speed.time_forward`: batch 1,
``--warmup`` untimed passes, in which compilation falls, then ``--iters`` timed); the copies take turns for
``--rounds`` rounds so that no copy always runs while the machine is busier; medians of all timed passes are
compared.  Printed per model: input size, median ms of each copy, eager / compiled (> 1: compiled is faster),
the compilation's seconds (the first warm-up pass), graph breaks and the most frequent reasons dynamo gives.
The machine's load average is printed at the start and the end: on a shared machine, read ratios, not ms.

    nice .venv/bin/python scripts/bench_compile.py [--models ...] [--warmup 2] [--iters 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COCO_SAMPLE = Path(os.environ.get("PANBENCH_COCO_SAMPLE", ROOT.parent / "shared" / "data" /
                                  "coco-panoptic-val2017-sample"))
MODELS = ["demo-mask2former", "demo-maskformer", "demo-panoptic-fpn", "mask2former_r50", "panoptic-fpn_r50_1x"]
HEADS = ("panoptic_head", "rpn_head", "roi_head", "semantic_head")


def family_of(name: str, images: int) -> tuple[Any, list[Any]]:
    """The model (demo: committed weights; zoo: random weights) and its inputs (pipeline outputs)."""
    from panbench.data.datasets import load_dataset
    from panbench.models.mmdet import mm
    from panbench.models.mmdet.family import MMDetModel, install_fusion, panoptic_only
    from panbench.models.registry import resolve

    spec = resolve(name)[0]
    if spec.dataset == "demo":
        from panbench.evaluation.run import Run
        from panbench.evaluation.speed import SpeedOptions, eval_options

        ds = load_dataset(ROOT / "data" / "demo", name="demo", limit=images)
        fam = Run(spec, ds, eval_options(SpeedOptions(device="cpu"))).lm.family
    else:
        import torch

        torch.manual_seed(0)
        cfg = mm.load_config(spec.config)
        panoptic_only(cfg)
        names = mm.class_names(cfg)
        fam = MMDetModel(mm.build_model(cfg, spec.config), names, list(range(len(names))), mm.test_pipeline(cfg))
        install_fusion(fam.detector, "panbench")
        ds = load_dataset(COCO_SAMPLE, name="coco", limit=images)
    inputs = [fam.pipeline({"img_path": str(s.image_path), "img_id": s.image_id}) for s in ds.samples]
    return fam, inputs


def compile_heads(detector: Any, mode: str) -> list[str]:
    names = [n for n in HEADS if getattr(detector, n, None) is not None]
    for n in names:
        getattr(detector, n).compile(mode=mode)
    return names


def copies(fam: Any, mode: str, heads: bool) -> dict[str, Any]:
    """eager / compiled / +heads copies of ``fam`` (same weights); a copy that cannot be compiled says why."""
    from panbench.evaluation.speed import compile_model

    out: dict[str, Any] = {"eager": fam}
    for label in ("compiled", "+heads") if heads else ("compiled",):
        c = copy.copy(fam)
        c.detector = copy.deepcopy(fam.detector)
        try:
            compile_model(c, mode)
            if label == "+heads":
                compile_heads(c.detector, mode)
            out[label] = c
        except Exception as e:  # noqa: BLE001 - reported, the others still run
            out[label] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
    return out


def bench_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    from torch._dynamo.utils import counters

    from panbench.evaluation.speed import PerfCounterTimer, time_forward

    fam, inputs = family_of(name, args.images)
    variants = copies(fam, args.mode, not args.no_heads)
    times: dict[str, list[float]] = {k: [] for k in variants}
    first: dict[str, float] = {}
    breaks: dict[str, Counter] = {}
    for r in range(args.rounds):
        for label, f in variants.items():
            if isinstance(f, str):
                continue
            counters.clear()
            try:
                warm = max(args.warmup, len(inputs)) if r == 0 else 1  # every input shape compiled before timing
                st = time_forward(f, inputs, "cpu", None, warm, args.iters, PerfCounterTimer())
            except Exception as e:  # noqa: BLE001 - inductor failing at run time: reported
                variants[label] = f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
                if args.debug:
                    traceback.print_exc()
                continue
            times[label] += st.seconds
            print(f"  [{name} round {r} {label}: first pass {st.first_s:.1f} s, timed {st.seconds}]", file=sys.stderr,
                  flush=True)
            if r == 0:
                first[label] = st.first_s
                breaks[label] = Counter({k: v for k, v in counters["graph_break"].items()})
    hw = fam.input_hw(inputs[0])
    return {"name": name, "input": f"{hw[0]}x{hw[1]}" if hw else "?", "variants": variants, "times": times,
            "first": first, "breaks": breaks}


def _reason(key: str) -> str:
    """A graph-break reason of dynamo's counters on one line: its title and the start of its explanation."""
    lines = [x.strip() for x in str(key).splitlines() if x.strip()]
    text = lines[0] + (f": {lines[1].removeprefix('Explanation: ')}" if len(lines) > 1 else "")
    return text[:140]


def report(res: dict[str, Any]) -> None:
    med = {k: 1000 * statistics.median(v) for k, v in res["times"].items() if v}
    eager = med.get("eager")
    print(f"\n{res['name']}  input {res['input']}")
    for label, f in res["variants"].items():
        if isinstance(f, str):
            print(f"  {label:9s} FAILS: {f}")
            continue
        if label not in med:
            continue
        ratio = f"  eager/this {eager / med[label]:.2f}x" if eager and label != "eager" else ""
        comp = f"  first pass {res['first'][label]:.1f} s" if label != "eager" else ""
        nb = sum(res["breaks"].get(label, Counter()).values())
        why = ""
        if nb:
            top = "; ".join(f"{_reason(k)} (x{v})" for k, v in res["breaks"][label].most_common(3))
            why = f"\n            {nb} graph breaks: {top}"
        print(f"  {label:9s} {med[label]:9.1f} ms median ({len(res['times'][label])} passes){ratio}{comp}{why}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated (default {','.join(MODELS)})")
    p.add_argument("--warmup", type=int, default=2, help="untimed passes of the first round, at least one per input "
                   "(default 2)")
    p.add_argument("--iters", type=int, default=3, help="timed passes per copy per round (default 3)")
    p.add_argument("--rounds", type=int, default=2, help="rounds, the copies taking turns (default 2)")
    p.add_argument("--images", type=int, default=2, help="distinct input images (default 2)")
    p.add_argument("--mode", default="default", help="torch.compile mode (default: default)")
    p.add_argument("--no-heads", action="store_true", help="leave out the +heads copy")
    p.add_argument("--debug", action="store_true", help="tracebacks of failing copies")
    args = p.parse_args()
    import torch

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}  commit {commit}  torch {torch.__version__}  "
          f"{torch.get_num_threads()} threads  load {os.getloadavg()}")
    print(" ".join(sys.argv))
    for name in args.models.split(","):
        report(bench_model(name.strip(), args))
        sys.stdout.flush()
    print(f"\nload at the end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
