#!/usr/bin/env python
"""What the layout-free CPU forward (``panbench.models.numerics``) costs and buys, on full-size zoo architectures.

    .venv/bin/python scripts/bench_layout_free.py --model mask2former_r50 panoptic-fpn_r50_1x --repeat 3

Each model: the zoo config (``configs/NAME.py``) with random weights (mmdet's own init, seed 0), one COCO image of
the real sample (``../shared/data/coco-panoptic-val2017-sample``, or ``--image``) through the config's test pipeline
(COCO's size: 800 px on the short side), then the forward (``model.test_step``, the fusion included) timed in two
builds of the same weights side by side: torch as it is ("stock") and with :func:`layout_free` (oneDNN convolutions,
activations through the vector code), each on 1 and on 2 threads, the two sides alternating and the side that goes
first turned each round.  MKL's strict mode is set for both sides (it has to be set before MKL's first call; its own
cost is the ``--no-strict`` run's difference).  Prints, per model and thread count, the two sides' median seconds and
their ratio, and whether each side's output (the panoptic map and the head's logits) has the same bits on 1 and 2
threads.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT.parent / "shared" / "data" / "coco-panoptic-val2017-sample" / "val2017" / "000000439180.jpg"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=["panoptic-fpn_r50_1x", "mask2former_r50", "mask2former_swin-t"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--image", type=Path, default=SAMPLE)
    ap.add_argument("--no-strict", action="store_true", help="leave MKL's mode as it is (both sides)")
    a = ap.parse_args()
    if not a.no_strict:
        os.environ["MKL_CBWR"] = "AUTO,STRICT"
    import torch

    from panbench.models.numerics import layout_free, reproducible_blas

    print(f"MKL strict: {reproducible_blas() if not a.no_strict else False}; torch {torch.__version__}, "
          f"{os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
    from mmdet.apis import init_detector
    from mmdet.utils import register_all_modules
    from mmengine.dataset import Compose, pseudo_collate

    import panbench.ops  # noqa: F401  (mmcv's compiled ops)

    register_all_modules()
    for name in a.model:
        torch.manual_seed(0)
        stock = init_detector(str(ROOT / "configs" / f"{name}.py"), None, device="cpu")
        free = copy.deepcopy(stock)
        changed = layout_free(free)
        cfg = stock.cfg.test_dataloader.dataset.pipeline
        pipe = Compose([dict(t, backend_args=None) if t["type"] == "LoadImageFromFile" else t for t in cfg
                        if t["type"] != "LoadPanopticAnnotations"])
        data = pseudo_collate([pipe({"img_path": str(a.image), "img_id": 0})])
        print(f"\n{name}: {changed} modules routed; input {tuple(data['inputs'][0].shape)}")
        heads: dict[str, list] = {}

        def forward(model, side: str, threads: int, data=data, heads=heads) -> float:
            torch.set_num_threads(threads)
            logits: list = []
            head = getattr(model, "panoptic_head", None) or model.roi_head
            hook = head.register_forward_hook(lambda m, i, o: logits.append(o))
            with torch.no_grad():
                t = time.perf_counter()
                out = model.test_step(data)
                dt = time.perf_counter() - t
            hook.remove()
            flat = [x for x in torch.utils._pytree.tree_leaves(logits) if isinstance(x, torch.Tensor)]
            heads.setdefault(f"{side}{threads}", [out[0].pred_panoptic_seg.sem_seg, *flat])
            return dt

        for model, side in ((stock, "stock"), (free, "free")):  # warm-up
            forward(model, side, 2)
        for threads in (1, 2):
            times: dict[str, list[float]] = {"stock": [], "free": []}
            for r in range(a.repeat):
                order = ((stock, "stock"), (free, "free")) if r % 2 == 0 else ((free, "free"), (stock, "stock"))
                for model, side in order:
                    times[side].append(forward(model, side, threads))
            s, f = statistics.median(times["stock"]), statistics.median(times["free"])
            print(f"  {threads} thread(s): stock {s:.2f} s, layout-free {f:.2f} s, ratio {f / s:.3f}")
        for side in ("stock", "free"):
            one, two = heads[f"{side}1"], heads[f"{side}2"]
            same = len(one) == len(two) and all(torch.equal(x, y) for x, y in zip(one, two))
            print(f"  {side}: output bits the same on 1 and 2 threads: {'yes' if same else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
