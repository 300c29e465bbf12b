"""``panbench submit``: a sweep of models x corruption cells as Slurm jobs (submitit), one per cell or per model."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from panbench.cli.options import Common, check_writable, dataset_root, non_negative_int, positive_int
from panbench.cli.running import models_and_dataset, single_checkpoint
from panbench.cluster import slurm
from panbench.cluster.sweep import CellJob, Manifest, cell_dicts, groups, load_manifest, new_id, plan, sweep_dir
from panbench.errors import PanbenchError
from panbench.evaluation.options import check_pipeline, with_pipeline

SLURM = ("partition", "gpus_per_job", "cpus_per_job", "mem", "time", "qos", "account", "constraint", "max_parallel")
# eval's options a sweep passes to every cell, as given (the defaults are eval's own)
FORWARDED = ("--device", "--batch-size", "--workers", "--cpu-procs", "--warmup", "--cache-every", "--amp", "--seed",
             "--pipeline")
FLAGS = ("--no-ap", "--boundary", "--trust-checkpoint")


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("submit", parents=[common.models, common.pipeline, common.dataset,
                       common.results, common.data_root,
                                          common.image_selection, common.corruptions, common.checkpoint,
                                          common.device, common.run, common.amp, common.seed, common.boundary,
                                          common.evaluator],
                       help="a sweep (models x corruption cells) as Slurm jobs, one per cell (submitit)",
                       description="Submit one Slurm job per model, dataset and corruption cell (a job array, "
                       "through submitit); each job runs `panbench eval` for its cell into the shared --results "
                       "folder and resumes from its cache when requeued or resubmitted. The sweep's manifest is "
                       "RESULTS/sweeps/<id>.json; `panbench status` reads it (docs/cluster.md).")
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
    p.add_argument("--resubmit", metavar="SWEEP", help="resubmit the cells of SWEEP (its id) and of the --model "
                   "models (all: every model of it) that are neither done, running nor queued (the command `panbench "
                   "status` prints); the sweep's own eval options are kept, Slurm options given here replace its own")
    return p


def _eval_args(args: argparse.Namespace, checkpoint: str | None) -> list[str]:
    """The eval options every cell shares: the folders made absolute, the run options as given."""
    out = ["--results", str(Path(args.results).resolve()), "--data-root", str(Path(dataset_root(args)).resolve()),
           "--no-progress"]
    if args.limit is not None:
        out += ["--limit", str(args.limit)]
    for flag, path in (("--subset", args.subset), ("--checkpoint", checkpoint)):
        out += [] if path is None else [flag, str(Path(path).resolve())]
    for flag in FORWARDED:
        v = getattr(args, flag[2:].replace("-", "_"))
        out += [] if v is None else [flag, str(v)]
    from panbench.evaluators import load_evaluators

    load_evaluators(args.evaluator or ())  # refused in one line before any job is submitted
    for spec in args.evaluator or ():  # a file's path made absolute, as the folders
        where, _, cls = spec.rpartition(":")
        out += ["--evaluator", f"{Path(where).resolve()}:{cls}" if where.endswith(".py") else spec]
    return out + [f for f in FLAGS if getattr(args, f[2:].replace("-", "_"))]


def _new_sweep(args: argparse.Namespace) -> Manifest:
    from panbench.robustness.corruptions import DEMO_SEVERITIES, parse_names, parse_severities

    specs, args.dataset = models_and_dataset(args.model, args.dataset)
    check_pipeline(specs, with_pipeline(None, args.pipeline))  # refused before any job, as eval would
    checkpoint = single_checkpoint(args.checkpoint, specs)
    names = parse_names(args.corruptions) if args.corruptions else []
    if args.severities and not names:
        raise PanbenchError("--severities goes with --corruptions")
    severities = parse_severities(args.severities or (DEMO_SEVERITIES if args.dataset == "demo" else "1-5"))
    cells = plan([s.name for s in specs], args.dataset, names, severities if names else [])
    return Manifest(sweep=new_id(), created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    command=shlex.join(["panbench", *sys.argv[1:]]), group_by=args.group_by, cells=cells,
                    eval_args=_eval_args(args, checkpoint), slurm={k: getattr(args, k) for k in SLURM})


def run(args: argparse.Namespace) -> int:
    if args.no_resume or args.launcher != "torchrun":
        raise PanbenchError("a sweep's jobs resume from their caches and choose their launcher: drop --no-resume "
                            "and --launcher (to start a cell afresh, remove its folder under RESULTS/cache)")
    results = Path(args.results).resolve()
    if args.resubmit:
        manifest = load_manifest(results, args.resubmit)
        manifest.slurm.update({k: getattr(args, k) for k in SLURM if getattr(args, k) is not None})
        models = {c.model for c in manifest.cells}
        asked = models if args.model == "all" else set(args.model.split(","))
        if asked - models:
            raise PanbenchError(f"--model {','.join(sorted(asked - models))}: not in sweep {args.resubmit} (its "
                                f"models: {','.join(sorted(models))}, or all)")
        todo = [s.cell for s in slurm.cell_states(results, manifest)
                if s.state in ("failed", "missing") and s.cell.model in asked]
        if not todo:
            print(f"sweep {args.resubmit}: nothing to resubmit (every cell is done, running or queued)")
            return 0
    else:
        manifest = _new_sweep(args)
        todo = manifest.cells
    check_writable(results, "--results")
    sid = manifest.sweep
    jobs = groups(todo, manifest.group_by)
    params = slurm.parameters(manifest.slurm, sid)
    folder = sweep_dir(results, sid) / "slurm"
    if args.dry_run:
        for k, cells in enumerate(jobs):
            print(f"# job {k}: {', '.join(c.id for c in cells)}", file=sys.stderr)
        print(slurm.script(folder, params, len(jobs)))
        return 0
    ids = slurm.submit(folder, params, [CellJob(str(results), sid, cell_dicts(cells), manifest.eval_args)
                                        for cells in jobs])
    manifest.submitted(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), dict(zip(ids, jobs)))
    path = manifest.save(results)
    print(f"sweep {sid}: {len(todo)} cell(s) in {len(jobs)} job(s) ({ids[0].split('_')[0]}); manifest {path}")
    print(f"follow it with: panbench status --results {shlex.quote(args.results)} --sweep {sid}")
    return 0
