"""Ctrl-C as a terminal sends it, for the tests that interrupt real commands (test_interrupt_system.py: ``eval``,
``robustness``; test_interrupt_commands_system.py: ``score``, ``speed``, ``data demo``): SIGINT to the whole process
group at a chosen time, and what each interrupt is checked for (the command and every process of its group gone
within :data:`LIMIT_S` of the signal, scaled by the load per core on a busy machine; exit code 130; one
``panbench: interrupted`` line, whose models to rerun are those without a record; no traceback, no ``Process ...``
line of a dying worker)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LIMIT_S = 5.0  # from the SIGINT to the last process of the group gone, on an idle machine
LOAD_FACTOR_MAX = 1.5  # a busy machine's extra time, at most
START_S = 0.5  # the earliest interrupt: before it, Python's own start-up (site, its .pth files) may still run
PQ_FIELDS = ("PQ", "SQ", "RQ", "PQ_th", "SQ_th", "RQ_th", "PQ_st", "SQ_st", "RQ_st")


@dataclass
class Outcome:
    interrupted: bool  # False: the command ended before the signal was sent, or ended its work before it came
    # (exit code 0: a Ctrl-C as the interpreter exits changes nothing)
    code: int | None
    output: str
    after_s: float  # from the signal to the last process of the group gone (inf: still there after the grace)
    at_s: float
    ran_s: float  # from the start to the command's exit (at_s + after_s where the signal was sent)


def group_alive(pgid: int) -> list[str]:
    """The processes of group ``pgid`` that are not zombies, as ``pid (name) state``."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name_end = text.rfind(")")
        fields = text[name_end + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(f"{text[:name_end + 1]} {fields[0]}")
    return alive


def run_interrupted(args: list[str], at: float, cwd: Path, grace: float = 30.0,
                    when: Callable[[int], bool] | None = None) -> Outcome:
    """``panbench ARGS`` in a new session, SIGINT to its process group ``at`` seconds after the start (with
    ``when``: once ``when(pid)`` is true, ``at`` seconds at most) when still running; what it printed (stdout and
    stderr together), its exit code and how long its group lived on."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # SIGINT as a terminal's command starts with it: a harness that runs the tests in the background of a
    # non-interactive shell has it ignored, and an ignored signal is inherited
    p = subprocess.Popen([sys.executable, "-m", "panbench", *args], cwd=cwd, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env=env, start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: p.stdout.read1(65536), b"")),  # type: ignore[union-attr]
                              daemon=True)
    reader.start()
    start = time.monotonic()
    try:
        if when is not None:
            while not when(p.pid) and p.poll() is None and time.monotonic() - start < at:
                time.sleep(0.01)
        p.wait(timeout=0 if when is not None else at)
        ran = time.monotonic() - start
        reader.join(10)
        return Outcome(False, p.returncode, b"".join(chunks).decode(errors="replace"), 0.0, at, ran)
    except subprocess.TimeoutExpired:
        pass
    t0 = time.monotonic()
    at = t0 - start
    os.killpg(p.pid, signal.SIGINT)
    after = float("inf")
    while time.monotonic() - t0 < grace:
        if p.poll() is not None and not group_alive(p.pid):
            after = time.monotonic() - t0
            break
        time.sleep(0.05)
    if p.returncode == 0 and after <= limit():  # its work was done: the signal came as it exited
        reader.join(10)
        return Outcome(False, 0, b"".join(chunks).decode(errors="replace"), after, at, at + after)
    left = group_alive(p.pid)
    if left or p.poll() is None:
        with_pids = "\n".join(left)
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    else:
        with_pids = ""
    reader.join(10)
    out = b"".join(chunks).decode(errors="replace")
    if with_pids:
        out += f"\n[test: still alive {grace:.0f} s after the SIGINT, killed:\n{with_pids}]"
    return Outcome(True, p.returncode, out, after, at, at + after)


def problems(o: Outcome, results: Path | None = None, models: tuple[str, ...] = (),
             before: frozenset[Path] = frozenset()) -> list[str]:
    """What is wrong with an interrupt's outcome (nothing: []); with ``results``, the folder of an ``eval`` of
    ``models`` that held the records ``before``: the models its line says to rerun are those this run wrote no
    record of."""
    found = []
    if o.after_s > limit():
        found.append(f"{o.after_s:.1f} s from the SIGINT to the exit of every process (limit {limit():.1f} s)")
    if o.code != 130:
        found.append(f"exit code {o.code}")
    lines = [x.strip() for x in o.output.replace("\r", "\n").splitlines() if x.strip()]
    said = [x for x in lines if "panbench: interrupted" in x]  # a line the interrupt cut short may come before
    if len(said) != 1:
        found.append(f"{len(said)} 'panbench: interrupted' lines")
    elif results is not None and "rerun with --model " in said[0]:
        named = said[0].split("rerun with --model ")[1].split()[0].split(",")
        new = set((results / "runs").glob("*.json")) - before
        left = [m for m in models if not any(f"_{m}_demo" in f.name for f in new)]
        if named != left:
            found.append(f"names {named} to rerun, where {left} have no record")
    if any("Traceback" in x for x in lines):
        found.append("a traceback")
    if any(x.startswith("Process ") for x in lines):
        found.append("a 'Process ...' line")
    return found


def limit() -> float:
    """:data:`LIMIT_S`, times the load per core where the machine is busier than one process per core (the load
    average counts the commands this test runs), by at most :data:`LOAD_FACTOR_MAX`: the issue's 5 s stays the
    limit on a machine with no other work."""
    return LIMIT_S * min(LOAD_FACTOR_MAX, max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1)))


def report(failures: list[tuple[Outcome, list[str]]], total: int) -> str:
    return f"{len(failures)} of {total} interrupts wrong:\n" + "\n\n".join(
        f"at {o.at_s:.2f} s: {'; '.join(why)}\n{o.output[-3000:]}" for o, why in failures)


def run(args: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "panbench", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def pq_of_records(results: Path) -> dict[str, list[dict[str, float]]]:
    """Each model's records in ``results`` (a corrupted run's as ``<model> on demo+<corruption>-<severity>``):
    their PQ fields, per record."""
    out: dict[str, list[dict[str, float]]] = {}
    for f in sorted((results / "runs").glob("*.json")):
        rec = json.loads(f.read_text())
        key = rec["model"] if rec["dataset"] == "demo" else f"{rec['model']} on {rec['dataset']}"
        out.setdefault(key, []).append({k: rec["metrics"][k] for k in PQ_FIELDS})
    return out
