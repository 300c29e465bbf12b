"""``panbench submit``: a sweep of models x corruption cells as Slurm jobs (submitit), one per cell or per model."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from panbench.cli.options import Common, add_image_selection, dataset_root, non_negative_int, positive_int

# eval's options a sweep passes to every cell: (flag, argparse keywords)
FORWARDED: tuple[tuple[str, dict], ...] = (
    ("--checkpoint", {"help": "your own weights instead of the zoo's (one model)"}),
    ("--trust-checkpoint", {"action": "store_true", "help": "as eval's"}),
    ("--device", {"help": "as eval's (default auto: cuda when the job has a GPU)"}),
    ("--batch-size", {"type": positive_int, "help": "as eval's"}),
    ("--amp", {"choices": ["bf16", "fp16"], "help": "as eval's"}),
    ("--workers", {"type": non_negative_int, "help": "as eval's: data-loading workers per job"}),
    ("--cpu-procs", {"type": non_negative_int, "help": "as eval's: CPU inference processes per job"}),
    ("--seed", {"type": int, "help": "as eval's"}),
    ("--cache-every", {"type": positive_int, "help": "as eval's: images per resume-cache chunk (default 16): "
                       "what a preempted job may score twice"}),
    ("--no-ap", {"action": "store_true", "help": "as eval's"}),
    ("--boundary", {"action": "store_true", "help": "as eval's"}),
)
SLURM = ("partition", "gpus_per_job", "cpus_per_job", "mem", "time", "qos", "account", "constraint", "max_parallel")


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("submit", parents=[common.results, common.data_root],
                       help="a sweep (models x corruption cells) as Slurm jobs, one per cell (submitit)",
                       description="Submit one Slurm job per model, dataset and corruption cell (a job array, "
                       "through submitit); each job runs `panbench eval` for its cell into the shared --results "
                       "folder and resumes from its cache when requeued or resubmitted. The sweep's manifest is "
                       "RESULTS/sweeps/<id>.json; `panbench status` reads it (docs/cluster.md).")
    p.add_argument("--model", help="as eval's: a name, a comma-separated list, 'all', ...")
    p.add_argument("--dataset", help="as eval's; default: the dataset the models were trained on")
    p.add_argument("--corruptions", help="also the corrupted cells: all, a group or a comma-separated list (as "
                   "robustness's); default: the clean cell only")
    p.add_argument("--severities", help="with --corruptions: as robustness's (default 1-5; 3 on the demo set)")
    add_image_selection(p)
    for flag, kw in FORWARDED:
        p.add_argument(flag, **kw)
    g = p.add_argument_group("Slurm")
    g.add_argument("--partition", help="the partition (default: the cluster's default)")
    g.add_argument("--gpus-per-job", type=non_negative_int, help="GPUs per job (default 0); N > 1: N ranks "
                   "(--launcher slurm)")
    g.add_argument("--cpus-per-job", type=positive_int, help="CPUs per job (task) (default 1)")
    g.add_argument("--mem", help="memory per node, Slurm's syntax (16G)")
    g.add_argument("--time", help="time limit per job: minutes or HH:MM:SS (default 60)")
    g.add_argument("--qos", help="quality of service")
    g.add_argument("--account", help="the account to charge")
    g.add_argument("--constraint", help="node features (e.g. a100)")
    g.add_argument("--max-parallel", type=positive_int, help="jobs of the array running at once (default: all)")
    p.add_argument("--group-by", choices=["cell", "model"], default="cell",
                   help="one job per cell (default) or per model (its cells in sequence, one job)")
    p.add_argument("--dry-run", action="store_true", help="print the sbatch script, submit nothing")
    p.add_argument("--sweep", metavar="ID", help="resubmit the cells of sweep ID that are neither done, running "
                   "nor queued (the command `panbench status` prints); Slurm options given here replace its own")
    return p


def _eval_args(args: argparse.Namespace) -> list[str]:
    """The eval options every cell shares: the folders made absolute, the forwarded options given."""
    out = ["--results", str(Path(args.results).resolve()), "--data-root", str(Path(dataset_root(args)).resolve()),
           "--no-progress"]
    for flag in ("--limit", "--subset"):
        v = getattr(args, flag[2:])
        if v is not None:
            out += [flag, str(Path(v).resolve()) if flag == "--subset" else str(v)]
    for flag, kw in FORWARDED:
        v = getattr(args, flag[2:].replace("-", "_"))
        if kw.get("action") == "store_true":
            out += [flag] if v else []
        elif v is not None:
            out += [flag, str(Path(v).resolve()) if flag == "--checkpoint" else str(v)]
    return out


def _new_sweep(args: argparse.Namespace) -> dict:
    from panbench.cli.eval import models_and_dataset
    from panbench.cli.robustness import DEMO_SEVERITIES
    from panbench.cluster.sweep import new_id, plan
    from panbench.errors import PanbenchError
    from panbench.robustness.corruptions import parse_names, parse_severities

    if not args.model:
        raise PanbenchError("pass --model (a new sweep) or --sweep ID (resubmit a sweep's missing cells)")
    specs = models_and_dataset(args)
    if args.checkpoint and len(specs) > 1:
        raise PanbenchError("--checkpoint applies to one model; pass a single --model with it")
    names = parse_names(args.corruptions) if args.corruptions else []
    if args.severities and not names:
        raise PanbenchError("--severities goes with --corruptions")
    severities = parse_severities(args.severities or (DEMO_SEVERITIES if args.dataset == "demo" else "1-5"))
    cells = plan([s.name for s in specs], args.dataset, names, severities if names else [])
    return {"sweep": new_id(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": shlex.join(["panbench", *sys.argv[1:]]), "group_by": args.group_by, "cells": cells,
            "eval_args": _eval_args(args), "slurm": {k: getattr(args, k) for k in SLURM}, "submissions": []}


def run(args: argparse.Namespace) -> int:
    from panbench.cli.options import check_writable
    from panbench.cluster import slurm
    from panbench.cluster.sweep import CellJob, cell_dicts, groups, load_manifest, sweep_dir, write_manifest

    results = Path(args.results).resolve()
    if args.sweep:
        manifest = load_manifest(results, args.sweep)
        manifest["slurm"].update({k: getattr(args, k) for k in SLURM if getattr(args, k) is not None})
        todo = [s.cell for s in slurm.cell_states(results, manifest) if s.state in ("failed", "missing")]
        if not todo:
            print(f"sweep {args.sweep}: nothing to resubmit (every cell is done, running or queued)")
            return 0
    else:
        manifest = _new_sweep(args)
        todo = manifest["cells"]
    check_writable(results, "--results")
    sid = manifest["sweep"]
    jobs = groups(todo, manifest["group_by"])
    params = slurm.parameters(manifest["slurm"], sid)
    folder = sweep_dir(results, sid) / "slurm"
    if args.dry_run:
        for k, cells in enumerate(jobs):
            print(f"# job {k}: {', '.join(c.id for c in cells)}", file=sys.stderr)
        print(slurm.script(folder, params, len(jobs)))
        return 0
    ids = slurm.submit(folder, params, [CellJob(str(results), sid, cell_dicts(cells), manifest["eval_args"])
                                        for cells in jobs])
    manifest["submissions"].append({"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    "jobs": {j: [c.id for c in cells] for j, cells in zip(ids, jobs)}})
    path = write_manifest(results, {**manifest, "cells": cell_dicts(manifest["cells"])})
    print(f"sweep {sid}: {len(todo)} cell(s) in {len(jobs)} job(s) ({ids[0].split('_')[0]}); manifest {path}")
    print(f"follow it with: panbench status --results {shlex.quote(args.results)} --sweep {sid}")
    return 0
