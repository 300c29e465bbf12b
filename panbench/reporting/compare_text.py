"""The table of ``panbench compare`` as plain text for the terminal (the analyses of one run:
:func:`panbench.reporting.text.format_analyses`).  How to read each number: docs/analysis.md.
"""

from __future__ import annotations

from typing import Any


def format_compare(result: dict[str, Any], top: int | None = None) -> str:
    """The paired intervals of ``compare`` (B - A): whole metrics, then the categories (largest
    difference first); ``*`` where the interval excludes 0."""
    a, b = result["a"], result["b"]
    lines = [f"{k}: {r['model']} [{r.get('postprocess')}], settings: {r.get('settings') or 'default'} "
             f"({r.get('record')})" for k, r in (("A", a), ("B", b))]
    lines += [f"B - A with its 95% paired image-bootstrap interval ({result['n_images']} images, "
              f"{result['resamples']} resamples, seed {result['seed']}); * the interval excludes 0"]
    head = f"{'':24} {'A':>8} {'B':>8} {'B - A':>8}  {'interval':>20}"
    lines += [head, "-" * len(head)]

    def row(label: str, v: dict[str, Any]) -> str:
        lo, hi = v["interval"]
        mark = "*" if v["excludes_zero"] else ""
        a, b, d = (f"{'-':>8}" if x is None else f"{x:{f}}" for x, f in ((v["a"], "8.2f"), (v["b"], "8.2f"),
                                                                         (_diff(v), "+8.2f")))
        return f"{label[:24]:24} {a} {b} {d}  [{lo:+8.2f}, {hi:+8.2f}] {mark}"

    for k, v in result["metrics"].items():
        lines.append(row(k, v))
    classes = result.get("per_class") or {}
    if classes:  # a class undefined in one run ('-': no TP, FP or FN there) ranks as no difference
        order = sorted(classes, key=lambda c: -abs(_diff(classes[c]) or 0.0))
        shown = order if top is None else order[:top]
        lines.append(f"per class (PQ; {len(shown)} of {len(classes)} categories, largest difference first; * per "
                     f"class is not corrected for the {len(classes)} comparisons: where no class differs, about 1 in "
                     "20 would still get one)")
        for c in shown:
            lines.append(row(classes[c]["name"], classes[c]))
    return "\n".join(lines)


def _diff(v: dict[str, Any]) -> float | None:
    return None if v["a"] is None or v["b"] is None else v["b"] - v["a"]
