"""``panbench status``: the cells of each sweep in a results folder, done, running, queued or failed, and the
command that resubmits the missing ones."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from panbench.cli.options import Common
from panbench.cluster.slurm import cell_states
from panbench.cluster.sweep import load_manifest, manifests

STATES = ("done", "running", "queued", "failed", "missing", "unknown")


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("status", parents=[common.results],
                       help="the cells of `panbench submit` sweeps: done, running, queued, failed",
                       description="Per sweep of RESULTS/sweeps: how many cells are done, running, queued and "
                       "failed (each failed one with its job's last error line and log), and the command that "
                       "resubmits exactly the missing ones (docs/cluster.md).")
    p.add_argument("--sweep", metavar="ID", help="only this sweep (default: every sweep of the folder)")
    return p


def run(args: argparse.Namespace) -> int:
    results = Path(args.results)
    if not (sweeps := [load_manifest(results, args.sweep)] if args.sweep else manifests(results)):
        print(f"no sweep in {results / 'sweeps'} (`panbench submit` makes one)")
        return 0
    for m in sweeps:
        states = cell_states(results, m)
        counts = {s: sum(c.state == s for c in states) for s in STATES}
        jobs = sum(len(sub.jobs) for sub in m.submissions)
        print(f"sweep {m.sweep} ({m.created}, {len(states)} cells, {jobs} job(s) submitted): "
              + ", ".join(f"{n} {s}" for s, n in counts.items() if n or s not in ("missing", "unknown")))
        for c in states:
            if c.state == "done":
                continue
            line = f"  {c.state:8} {c.cell.id}" + (f"  job {c.job}" if c.job else "")
            if c.state in ("failed", "unknown"):
                line += f": {c.error}" + (f"  (log: {c.log})" if c.log else "")
            print(line)
        if missing := [c for c in states if c.state in ("failed", "missing")]:
            models = ",".join(dict.fromkeys(c.cell.model for c in missing))
            print(f"  resubmit the {len(missing)} missing: panbench submit --results {shlex.quote(str(results))} "
                  f"--resubmit {m.sweep} --model {models}")
    return 0
