"""``--launcher``: where a multi-process run learns its rank.  ``torchrun`` (the default) sets torchrun's variables
itself; under ``srun`` (``--launcher slurm``) they are derived from Slurm's as mmengine's ``_init_dist_slurm`` derives
them (docs/cluster.md), and everything after that is the same code as under torchrun."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Mapping

from panbench.errors import PanbenchError

BASE_PORT = 29500  # torch.distributed's default port


def first_hostname(nodelist: str) -> str:
    """The first host of a Slurm node list (``node[01-04]`` -> ``node01``), by ``scontrol show hostnames``."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             check=True, timeout=60).stdout.split()
    except (OSError, subprocess.SubprocessError) as e:
        raise PanbenchError(f"--launcher slurm: `scontrol show hostnames {nodelist}` failed ({e}); run under srun "
                            "on a node with Slurm's client tools, or set MASTER_ADDR") from e
    if not out:
        raise PanbenchError(f"--launcher slurm: SLURM_NODELIST={nodelist!r} names no host; run under srun")
    return out[0]


def slurm_torch_env(env: Mapping[str, str], first_host: Callable[[str], str] = first_hostname) -> dict[str, str]:
    """torchrun's variables for this srun task, from Slurm's; refused in one line outside srun."""
    if missing := [v for v in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST") if not env.get(v, "").strip()]:
        raise PanbenchError(f"--launcher slurm: {', '.join(missing)} not set (not inside srun); start it with "
                            "srun (srun -n 2 panbench eval ... --launcher slurm) or drop --launcher slurm")
    for v in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_ID"):
        if env.get(v, "0").strip() and not env.get(v, "0").strip().isdigit():
            raise PanbenchError(f"--launcher slurm: {v}={env[v]!r} is not a number; run under srun")
    rank, ntasks = int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"])
    # this node's tasks: SLURM_NTASKS_PER_NODE, else the first count of SLURM_TASKS_PER_NODE (2(x3),1), else all
    m = re.match(r"\d+", env.get("SLURM_NTASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE", ""))
    per_node = int(m.group()) if m else ntasks
    local = int(env["SLURM_LOCALID"]) if env.get("SLURM_LOCALID", "").strip() else rank % per_node
    # two jobs sharing a node must not share a port: offset the default by the job id
    port = env.get("MASTER_PORT") or str(BASE_PORT + int(env.get("SLURM_JOB_ID", "0") or 0) % 1000)
    addr = env.get("MASTER_ADDR") or first_host(env["SLURM_NODELIST"])
    return {"RANK": str(rank), "WORLD_SIZE": str(ntasks), "LOCAL_RANK": str(local),
            "LOCAL_WORLD_SIZE": str(per_node), "MASTER_ADDR": addr, "MASTER_PORT": port}


def apply_launcher(name: str | None) -> None:
    """Set this process's torchrun variables for ``--launcher NAME`` (nothing to do for torchrun)."""
    if name == "slurm":
        os.environ.update(slurm_torch_env(os.environ))
