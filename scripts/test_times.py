"""Where a test run's time goes: the seconds by folder and the slowest tests, read from pytest's
``--durations=0`` report (setup, call and teardown of each test added).

    PYTEST_ADDOPTS="--durations=0" make test 2>&1 | tee /tmp/test.log
    .venv/bin/python scripts/test_times.py /tmp/test.log            # Markdown tables for docs/testing.md
    .venv/bin/python scripts/test_times.py /tmp/test.log --top 30

A folder is the test file's folder below ``tests/`` (``tests`` for the files at the top); a test's seconds are
its phases' sum, so a module-scoped fixture's setup counts in the first test that asks for it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s+(setup|call|teardown)\s+(tests/\S+?\.py)(::\S.*)?$")


def read(text: str) -> dict[str, float]:
    """Seconds of each test (``path::name``) in a ``--durations`` report."""
    out: dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            out[m.group(3) + (m.group(4) or "")] += float(m.group(1))
    return dict(out)


def folder(test: str) -> str:
    parts = Path(test.split("::")[0]).parts
    return "/".join(parts[:2]) if len(parts) > 2 else "tests"


def tables(times: dict[str, float], top: int) -> str:
    by_folder: dict[str, list[float]] = defaultdict(list)
    for test, s in times.items():
        by_folder[folder(test)].append(s)
    total = sum(times.values())
    rows = ["| folder | tests | seconds | share |", "| --- | ---: | ---: | ---: |"]
    for name, secs in sorted(by_folder.items(), key=lambda kv: -sum(kv[1])):
        rows.append(f"| `{name}` | {len(secs)} | {sum(secs):.0f} | {100 * sum(secs) / total:.0f}% |")
    rows.append(f"| all | {len(times)} | {total:.0f} | 100% |")
    rows += ["", f"| the {top} slowest tests | seconds |", "| --- | ---: |"]
    for test, s in sorted(times.items(), key=lambda kv: -kv[1])[:top]:
        rows.append(f"| `{test}` | {s:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("log", help="the output of a pytest run with --durations=0")
    p.add_argument("--top", type=int, default=30, help="slowest tests listed (default 30)")
    args = p.parse_args(argv)
    times = read(Path(args.log).read_text(errors="replace"))
    if not times:
        print(f"{args.log}: no --durations=0 report found; run pytest with --durations=0", file=sys.stderr)
        return 2
    print(tables(times, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
