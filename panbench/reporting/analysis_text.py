"""The analyses of a run (issue 16) as plain text for the terminal: intervals, PQ by size,
PQ-dagger, the error breakdown, boundary PQ; and the table of ``panbench compare``.

Pure functions of the analysis fields (``score --json``'s keys, a record's fields); how to read each
number: docs/analysis.md.
"""

from __future__ import annotations

from typing import Any

CI_ORDER = ("PQ", "SQ", "RQ", "PQ_th", "PQ_st")


def format_analyses(a: dict[str, Any]) -> str:
    """A few lines under the All/Things/Stuff table; empty when the run has no analyses (an old record)."""
    lines = []
    if a.get("ci"):
        ci = a["ci"]
        lines.append("95% interval (image bootstrap): " + ", ".join(
            f"{k} [{ci[k][0]:.2f}, {ci[k][1]:.2f}]" for k in CI_ORDER if k in ci))
    if a.get("by_size"):
        lines.append("things by size (PQ / SQ / RQ, categories): " + "; ".join(
            f"{name} {v['PQ']:.1f} / {v['SQ']:.1f} / {v['RQ']:.1f} ({v['n']})" for name, v in a["by_size"].items()))
    if a.get("pq_dagger") is not None:
        lines.append(f"PQ-dagger: {a['pq_dagger']:.3f}")
    if a.get("errors"):
        parts = [f"{k} {v['count']} ({v['delta_PQ']:+.2f})" for k, v in a["errors"].items()]
        mq = a.get("mask_quality")
        if mq:
            parts.append(f"mask quality ({mq['delta_PQ']:+.2f})")
        lines.append("errors, count (PQ gained if fixed): " + ", ".join(parts))
    if a.get("boundary"):
        b = a["boundary"]
        lines.append(f"boundary PQ: {b['PQ']:.3f} (things {b['PQ_th']:.3f}, stuff {b['PQ_st']:.3f}); "
                     f"SQ {b['SQ']:.3f}, RQ {b['RQ']:.3f}")
    return "\n".join(lines)


def format_compare(result: dict[str, Any], top: int | None = None) -> str:
    """The paired intervals of ``compare`` (B - A): whole metrics, then the categories (largest
    difference first); ``*`` where the interval excludes 0."""
    a, b = result["a"], result["b"]
    lines = [f"A: {a['model']} [{a.get('postprocess')}] ({a.get('record')})",
             f"B: {b['model']} [{b.get('postprocess')}] ({b.get('record')})",
             f"B - A with its 95% paired image-bootstrap interval ({result['n_images']} images, "
             f"{result['resamples']} resamples, seed {result['seed']}); * the interval excludes 0"]
    head = f"{'':24} {'A':>8} {'B':>8} {'B - A':>8}  {'interval':>20}"
    lines += [head, "-" * len(head)]

    def row(label: str, v: dict[str, Any]) -> str:
        lo, hi = v["interval"]
        mark = "*" if v["excludes_zero"] else ""
        return (f"{label[:24]:24} {v['a']:8.2f} {v['b']:8.2f} {v['b'] - v['a']:+8.2f}  "
                f"[{lo:+8.2f}, {hi:+8.2f}] {mark}")

    for k, v in result["metrics"].items():
        lines.append(row(k, v))
    classes = result.get("per_class") or {}
    if classes:
        order = sorted(classes, key=lambda c: -abs(classes[c]["b"] - classes[c]["a"]))
        shown = order if top is None else order[:top]
        lines.append(f"per class (PQ; {len(shown)} of {len(classes)} categories, largest difference first)")
        for c in shown:
            lines.append(row(classes[c]["name"], classes[c]))
    return "\n".join(lines)
