"""What a speed was measured on and beside (docs/eval.md, "Timings": ``speed_context``), and the markers in the
running folder by which runs see each other: ``<host>-<pid>.json`` with its pid, its job (the torchrun job id: the
ranks of one job are not "other runs") and its start and end times.
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import socket
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEEP_S = 86400.0  # finished markers older than this are removed


def running_dir() -> Path:
    """The folder of the markers of running and recent ``panbench eval`` processes."""
    env = os.environ.get("PANBENCH_RUNNING_DIR")
    return Path(env) if env else Path.home() / ".cache" / "panbench" / "running"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` knows."""
    with suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> float | None:
    """The machine's 1-minute load average (None where the OS has none)."""
    with suppress(OSError, AttributeError):
        return round(os.getloadavg()[0], 2)
    return None


def pid_alive(pid: int) -> bool:
    """Whether a process of ``pid`` runs on this machine (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError, ValueError):  # none, or not a PID at all
        return False
    except PermissionError:  # another user's
        return True
    return True


class RunMarker:
    """This process's marker (one per process, whatever the number of models it evaluates)."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or running_dir()
        self.host = socket.gethostname()
        self.path = self.folder / f"{self.host}-{os.getpid()}.json"
        job = os.environ.get("TORCHELASTIC_RUN_ID") or f"pid-{os.getpid()}"  # what the processes of one job share
        self.info: dict[str, Any] = {"pid": os.getpid(), "host": self.host, "job": job, "start": time.time(),
                                     "end": None, "command": " ".join(sys.argv)[:300]}
        self.written = False

    def begin(self) -> None:
        """Write the marker (once; a failure to write it only means that others cannot see this run)."""
        if self.written:
            return
        with suppress(OSError):
            self.folder.mkdir(parents=True, exist_ok=True)
            self._write()
            self.written = True
            atexit.register(self.end)

    def end(self) -> None:
        """Record the end time in the marker (at exit)."""
        if self.written and self.info["end"] is None and self.info["pid"] == os.getpid():
            self.info["end"] = time.time()
            with suppress(OSError):
                self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.info))
        os.replace(tmp, self.path)

    def overlapping(self, t0: float, t1: float) -> list[dict[str, Any]]:
        """The other runs on this host whose interval intersects ``[t0, t1]`` (times from ``time.time()``):
        their pid and command.  Stale markers (no end time, process gone) are ignored and removed."""
        out, now = [], time.time()
        try:
            files = sorted(self.folder.glob("*.json"))
        except OSError:
            return []
        for f in files:
            try:
                m = json.loads(f.read_text())
                pid, start, end = int(m["pid"]), float(m["start"]), m.get("end")
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if m.get("host") != self.host or m.get("job") == self.info["job"] or pid == os.getpid():
                continue
            if end is None:
                if not pid_alive(pid):
                    f.unlink(missing_ok=True)  # a killed run: when it ended is unknown
                    continue
                end = now
            elif now - float(end) > KEEP_S:
                f.unlink(missing_ok=True)
                continue
            if start < t1 and float(end) > t0:
                out.append({"pid": pid, "command": m.get("command")})
        return out


_MARKER: RunMarker | None = None


def marker() -> RunMarker:
    """This process's marker, written on first use."""
    global _MARKER
    if _MARKER is None or _MARKER.info["pid"] != os.getpid() or _MARKER.folder != running_dir():
        _MARKER = RunMarker()
    _MARKER.begin()
    return _MARKER


@dataclass(frozen=True)
class CpuClock:
    """The machine's and this process tree's CPU use at one moment (:func:`cpu_clock`)."""

    load: float | None  # the 1-minute load average
    busy: float | None  # seconds the cores were busy since boot (/proc/stat); None off Linux
    own: float  # CPU seconds of this process, its live descendants and its reaped children
    wall: float


def cpu_clock() -> CpuClock:
    return CpuClock(load_average(), _busy_seconds(), _own_seconds(), time.time())


def _busy_seconds() -> float | None:
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and every process below it (DataLoader workers, forked CPU processes)."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    children: dict[int, list[int]] = {}
    ticks: dict[int, int] = {}
    for p in Path("/proc").glob("[0-9]*/stat"):
        try:  # after the command's ")": state, ppid, ... utime and stime are the 12th and 13th fields
            f = p.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(int(f[1]), []).append(int(p.parent.name))
        ticks[int(p.parent.name)] = int(f[11]) + int(f[12])
    below, stack = 0, list(children.get(os.getpid(), []))
    while stack:
        pid = stack.pop()
        below += ticks.get(pid, 0)
        stack += children.get(pid, [])
    return total + below / os.sysconf("SC_CLK_TCK")


def speed_context(device: str, procs: int, world: int, start: CpuClock, overlapped: list[dict[str, Any]],
                  overlapped_any_rank: bool) -> dict[str, Any]:
    """The record's ``speed_context`` (docs/eval.md, "Timings")."""
    import torch

    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
    cores = os.cpu_count() or 1
    # the cores the run kept busy: its torch threads in each process on the CPU, one per process with a GPU
    used = min(cores, max(1, procs) * (torch.get_num_threads() if gpu is None else 1))
    end = cpu_clock()
    wall = end.wall - start.wall
    others = None
    if start.busy is not None and end.busy is not None and wall > 0:
        others = round(max(0.0, (end.busy - start.busy) - (end.own - start.own)) / wall, 2)
    return {"cpu": cpu_model(), "gpu": gpu, "torch_threads": torch.get_num_threads(), "processes": max(1, procs),
            "ranks": world, "cores": cores, "cores_used": used, "other_cores": others, "load_start": start.load,
            "load_end": end.load,
            "overlapped": bool(overlapped) or overlapped_any_rank, "overlapped_runs": overlapped}
