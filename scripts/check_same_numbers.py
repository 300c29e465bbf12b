"""Two runs of ``panbench eval --save-predictions PRED --results RES`` give the same numbers: every PNG
byte-identical, the predictions JSONs (panoptic and instance) equal but for their ``info``, and the records of each
model equal in every field but those that describe the run itself (date, timings, machine, paths, git commit,
command), their analysis files (``.analysis.npz``) equal array by array.

    .venv/bin/panbench eval --model all --dataset demo --save-predictions /tmp/a --no-resume --results /tmp/ra
    ... change the code, then the same into /tmp/b and /tmp/rb ...
    .venv/bin/python scripts/check_same_numbers.py /tmp/a /tmp/ra /tmp/b /tmp/rb

Prints one line per difference and exits 1 when there is any, else prints what was compared and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

# what differs between two runs of the same code: when, where, how fast, which command
RUN_FIELDS = {"date", "timings", "speed_context", "memory", "record", "analysis_file", "device"}
RUN_PROVENANCE = {"git_commit", "command", "predictions", "config_path"}  # where the checkout is: the config's
# text and hash, and the checkpoint's sha256, are compared
RUN_FLOPS = {"seconds", "from_cache"}  # the FLOPs pass's time, whether the model facts cache served it; its
# counts are compared


def compare_predictions(a: Path, b: Path) -> tuple[list[str], int]:
    """Differences between two ``--save-predictions`` folders, and the number of PNGs compared."""
    diffs, n = [], 0
    names = sorted(p.name for p in a.iterdir())
    if names != sorted(p.name for p in b.iterdir()):
        diffs.append(f"{a} and {b} hold different files")
    for name in names:
        pa, pb = a / name, b / name
        if not pb.exists():
            continue
        if pa.is_dir():
            pngs = sorted(p.name for p in pa.glob("*.png"))
            if pngs != sorted(p.name for p in pb.glob("*.png")):
                diffs.append(f"{pa}: other PNG names than {pb}")
            for png in pngs:
                n += 1
                if (pb / png).exists() and (pa / png).read_bytes() != (pb / png).read_bytes():
                    diffs.append(f"{pa / png}: bytes differ from {pb / png}")
        elif name.endswith(".json"):
            ja, jb = json.loads(pa.read_text()), json.loads(pb.read_text())
            if isinstance(ja, dict):
                ja.pop("info", None)
                jb.pop("info", None)
            if ja != jb:
                diffs.append(f"{pa}: differs from {pb} (beyond its info)")
    return diffs, n


def _records(root: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """The newest record of each model under ``root/runs``."""
    out: dict[str, tuple[Path, dict[str, Any]]] = {}
    for p in sorted((root / "runs").glob("*.json")):
        rec = json.loads(p.read_text())
        out[rec["model"]] = (p, rec)
    return out


def _comparable(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in rec.items() if k not in RUN_FIELDS}
    out["provenance"] = {k: v for k, v in rec.get("provenance", {}).items() if k not in RUN_PROVENANCE}
    if isinstance(out["provenance"].get("checkpoint"), dict):  # its file's place left out, its digest kept
        out["provenance"]["checkpoint"] = {k: v for k, v in out["provenance"]["checkpoint"].items() if k != "path"}
    if isinstance(out["provenance"].get("dataset"), dict):  # the dataset's protocol card: what the run names of it,
        # not a number (records written before the cards lack it)
        out["provenance"]["dataset"] = {k: v for k, v in out["provenance"]["dataset"].items() if k != "card"}
    if isinstance(rec.get("flops"), dict):
        out["flops"] = {k: v for k, v in rec["flops"].items() if k not in RUN_FLOPS}
    return out


def compare_records(a: Path, b: Path) -> tuple[list[str], int]:
    """Differences between the records (and their analysis files) of two results folders, and the number of
    records compared."""
    ra, rb = _records(a), _records(b)
    diffs = [f"{m}: a record in only one of {a}, {b}" for m in sorted(set(ra) ^ set(rb))]
    for model in sorted(set(ra) & set(rb)):
        (pa, x), (pb, y) = ra[model], rb[model]
        cx, cy = _comparable(x), _comparable(y)
        for k in sorted(set(cx) | set(cy)):
            if cx.get(k) != cy.get(k):
                diffs.append(f"{model}: field {k!r} differs ({pa.name} vs {pb.name})")
        diffs += _compare_npz(pa.with_suffix(".analysis.npz"), pb.with_suffix(".analysis.npz"), model)
    return diffs, len(set(ra) & set(rb))


def _compare_npz(a: Path, b: Path, model: str) -> list[str]:
    if not a.exists() and not b.exists():
        return []
    if not (a.exists() and b.exists()):
        return [f"{model}: an analysis file in only one run"]
    with np.load(a) as x, np.load(b) as y:
        if sorted(x.files) != sorted(y.files):
            return [f"{model}: the analysis files hold different arrays"]
        # bit for bit (a segment without a score is NaN in the score columns, equal to itself here)
        return [f"{model}: analysis array {k!r} differs" for k in x.files
                if x[k].dtype != y[k].dtype or x[k].shape != y[k].shape or x[k].tobytes() != y[k].tobytes()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("predictions_a", type=Path)
    p.add_argument("results_a", type=Path)
    p.add_argument("predictions_b", type=Path)
    p.add_argument("results_b", type=Path)
    args = p.parse_args(argv)
    d1, n_png = compare_predictions(args.predictions_a, args.predictions_b)
    d2, n_rec = compare_records(args.results_a, args.results_b)
    for d in d1 + d2:
        print(d)
    if d1 or d2:
        return 1
    own = sorted(RUN_FIELDS | RUN_PROVENANCE | {f"flops.{k}" for k in RUN_FLOPS})
    print(f"same numbers: {n_png} PNGs byte-identical, {n_rec} records equal in every field but the run's own "
          f"({', '.join(own)}), their analysis arrays equal")
    return 0


if __name__ == "__main__":
    sys.exit(main())
