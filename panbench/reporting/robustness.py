"""Robustness tables and plots (``panbench robustness``, ``table --robustness``, the report)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panbench.errors import PanbenchError
from panbench.records.io import load_records
from panbench.reporting.colors import GROUP_COLORS, Colors, assign, text_color
from panbench.reporting.figure_style import MIN_TEXT_PT, current_width, legend_below, new_figure, styled, wrap
from panbench.reporting.formats import writer
from panbench.reporting.labels import decimals, summary_model
from panbench.reporting.plot_parts import save
from panbench.robustness.corruptions import CORRUPTION_GROUPS, CORRUPTION_NAMES, GROUP_OF
from panbench.robustness.summary import SUMMARY_METRICS, base_dataset, robustness_summaries

NOTE = ("mPC: mean PQ over the corruption x severity runs; rPC: mPC / clean PQ in %; a group: mean PQ over its "
        "corruptions and severities. Comparable only across rows with the same corruptions, severities, "
        "corruption implementation and images.")

PARTS = ("clean", "mPC", "rPC", *CORRUPTION_GROUPS)  # the prefixes of the summary's metric fields


def summary_frame(summaries: list[dict[str, Any]]) -> Any:
    """One row per summary in field names (``clean_PQ``, ``mPC_PQ_th``, ``noise_PQ_st``, ...)."""
    import pandas as pd

    rows = []
    for s in summaries:
        row: dict[str, Any] = {"model": s["model"], "postprocess": s.get("postprocess", "default"),
                               "dataset": s["dataset"], "n_images": s["n_images"],
                               "n_corruptions": len(s["corruptions"]),
                               "severities": ",".join(map(str, s["severities"]))}
        parts = {p: s[p] if p in ("clean", "mPC", "rPC") else s["groups"].get(p) or {} for p in PARTS}
        row.update({f"{p}_{k}": part.get(k) for p, part in parts.items() for k in SUMMARY_METRICS})
        rows.append(row)
    df = pd.DataFrame(rows)
    return df.dropna(axis=1, how="all") if len(df) else df  # without a group no summary ran


def _sev(sev: list[int]) -> str:
    return f"{sev[0]}-{sev[-1]}" if sev == list(range(sev[0], sev[-1] + 1)) and len(sev) > 1 else \
        ",".join(map(str, sev))


def _for_readers(df: Any) -> Any:
    """The summary table as people read it: one ``runs`` column (``15 x sev 1-5``), ``clean PQ_th`` headers."""
    df = df.copy()
    if "n_corruptions" in df.columns and "severities" in df.columns:
        runs = [f"{n} x sev {_sev([int(x) for x in str(sev).split(',')])}"
                for n, sev in zip(df.pop("n_corruptions"), df.pop("severities"))]
        df.insert(min(4, len(df.columns)), "runs", runs)
    return df.rename(columns={c: c.replace("_", " ", 1) for c in df.columns if c.split("_")[0] in PARTS})


def format_robustness_table(df: Any, fmt: str, digits: int = 2, notes: tuple[str, ...] = (NOTE,)) -> str:
    """The table in ``fmt``: CSV with field names and every digit, the other formats rounded to ``digits``."""
    w = writer(fmt)
    return w.table(df if w.fields else _for_readers(df).round(digits), digits, notes)


def runs_frame(summaries: list[dict[str, Any]]) -> Any:
    """Every corrupted run of the summaries: model, corruption, severity, PQ, PQ_th, PQ_st, drop from clean, cost."""
    import pandas as pd

    rows = [{"model": s["model"], "dataset": s["dataset"], "corruption": x["corruption"], "severity": x["severity"],
             **{k: x[k] for k in SUMMARY_METRICS}, "PQ drop": s["clean"]["PQ"] - x["PQ"],
             "corrupt ms/image": x["corrupt_ms_per_image"]} for s in summaries for x in s["runs"]]
    return pd.DataFrame(rows)


def robustness_table(results_dir: Path, dataset: str | None, fmt: str) -> str:
    """``panbench table --robustness``: the summaries of the newest records under ``results_dir``."""
    records = load_records(Path(results_dir))
    summaries = [s for s in robustness_summaries(records) if dataset is None or s["dataset"] == dataset]
    if not summaries:
        where = f" on dataset '{dataset}'" if dataset else ""
        corrupted = sorted({r.model for r in records if r.corruption and dataset in (None, base_dataset(r))})
        if corrupted:  # corrupted runs, but no clean run of the same images and settings to pair them with
            raise PanbenchError(f"{results_dir}/runs: the corrupted runs of {', '.join(corrupted)}{where} have no "
                                "clean run on the same images with the same settings (post-processing, batch, AMP, "
                                "--cfg-options); run `panbench eval` without --corruption with the options of the "
                                "corrupted runs")
        raise PanbenchError(f"{results_dir}/runs: no model has a clean and a corrupted run{where}; run `panbench "
                            "robustness --model NAME` (or `panbench eval --corruption NAME --severity S`) first")
    return format_robustness_table(summary_frame(summaries), fmt)


def plots(summaries: list[dict[str, Any]], out_dir: Path, colors: Colors | None = None) -> list[Path]:
    """``robustness_severity.png`` and ``robustness_drop.png`` under ``out_dir``, each model in its colour."""
    if not summaries:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [n for n in CORRUPTION_NAMES if any(n in s["corruptions"] for s in summaries)]
    labels = [_label(s, summaries) for s in summaries]
    keys = [summary_model(s) for s in summaries]  # each model's colour, as its clean run's figures key it
    colors = assign(dict(colors or {}), list(dict.fromkeys(keys)))
    return [_severity_plot(summaries, names, labels, keys, out_dir / "robustness_severity.png", colors),
            _drop_plot(summaries, names, labels, out_dir / "robustness_drop.png")]


def _datasets(summaries: list[dict[str, Any]]) -> str:
    return ", ".join(dict.fromkeys(str(s["dataset"]) for s in summaries))


@styled
def _severity_plot(summaries: list[dict[str, Any]], names: list[str], labels: list[str], keys: list[str],
                   path: Path, colors: Colors) -> Path:
    """PQ against severity, a panel per corruption, a line per summary (a model's in its colour), the legend under."""
    from matplotlib.lines import Line2D

    dashes: tuple[Any, ...] = ("-", "--", ":", "-.")
    style = {id(s): dashes[keys[:k].count(keys[k]) % len(dashes)] for k, s in enumerate(summaries)}
    ncols = min(max(1, int(current_width() / 1.4)), 5, len(names))  # panels at least 1.4 in wide
    nrows = -(-len(names) // ncols)
    fig, axes = new_figure(1.6 * nrows + 0.9, nrows, ncols, squeeze=False, sharey=True)
    for ax in axes.ravel()[len(names):]:  # no empty panel
        fig.delaxes(ax)
    top = 0.0
    for ax, name in zip(axes.ravel(), names):
        for s, key, label in zip(summaries, keys, labels):
            pts = sorted((x["severity"], x["PQ"]) for x in s["runs"] if x["corruption"] == name)
            if pts:
                xs, ys = zip(*[(0, s["clean"]["PQ"]), *pts])
                ax.plot(xs, ys, marker="o", markersize=3, label=label, color=colors[key],
                        linestyle=style[id(s)])
                top = max(top, *ys)
        ax.set_title(f"{name} ({GROUP_OF[name]})", color=GROUP_COLORS[GROUP_OF[name]])
        ax.set_xticks(range(6))
    axes[0, 0].set_ylim(0, min(100.0, top * 1.08) if top > 0 else 1.0)  # shared: every panel's lines inside
    fig.supylabel("PQ")
    fig.supxlabel("severity (0: clean)")
    handles = [Line2D([], [], marker="o", markersize=3, color=colors[key], linestyle=style[id(s)], label=label)
               for s, key, label in zip(summaries, keys, labels)]
    fig.suptitle(f"{_datasets(summaries)}: PQ under corruption")
    legend_below(fig, handles)
    return save(fig, path, dpi=110)


@styled
def _drop_plot(summaries: list[dict[str, Any]], names: list[str], labels: list[str], path: Path) -> Path:
    """Clean PQ minus the mean PQ over the severities, per corruption (rows) and summary (columns)."""
    import numpy as np

    pqs = [[[x["PQ"] for x in s["runs"] if x["corruption"] == name] for s in summaries] for name in names]
    drop = np.array([[s["clean"]["PQ"] - sum(v) / len(v) if v else np.nan for s, v in zip(summaries, row)]
                     for row in pqs], float)
    fig, ax = drop_figure(drop, names, labels)
    ax.set_title(f"{_datasets(summaries)}: PQ drop per corruption")
    return save(fig, path, dpi=110)


def drop_figure(drop: Any, names: list[str], labels: list[str]) -> tuple[Any, Any]:
    """The heatmap of the PQ drops (rows: corruptions, columns: runs), each number in black or white by contrast."""
    import numpy as np

    fig, ax = new_figure(max(0.28 * len(names) + 1.5, 2.2))
    im = ax.imshow(drop, cmap="Reds", aspect="auto")
    ax.set_xticks(range(len(labels)), [wrap(x, 24) for x in labels], rotation=30 if len(labels) > 1 else 0,
                  ha="right" if len(labels) > 1 else "center", rotation_mode="anchor")
    ax.set_yticks(range(len(names)), names)
    for tick, name in zip(ax.get_yticklabels(), names):
        tick.set_color(GROUP_COLORS[GROUP_OF[name]] if name in GROUP_OF else "black")
    for i in range(len(names)):
        for j in range(len(labels)):
            if not np.isnan(drop[i, j]):
                ax.text(j, i, decimals(drop[i, j], ".1f"), ha="center", va="center", fontsize=MIN_TEXT_PT,
                        color=text_color(im.cmap(im.norm(drop[i, j]))))
    ax.set_xlabel("PQ drop: clean PQ − mean PQ over the severities")
    if np.count_nonzero(~np.isnan(drop)) > 1:  # one value: its number says it all
        fig.colorbar(im, ax=ax).set_label("PQ drop")
    return fig, ax


def _label(s: dict[str, Any], summaries: list[dict[str, Any]]) -> str:
    """The model's name with its clean run's settings, and dataset and post-processing where summaries differ."""
    label = summary_model(s)
    sets = {(x["dataset"], x.get("fingerprint")) for x in summaries}
    if len(sets) > 1:
        if len({f for d, f in sets if d == s["dataset"]}) > 1:  # two image sets of its dataset
            fp = s.get("fingerprint")
            label += f" ({s['dataset']} {str(fp)[:8]})" if fp else f" ({s['dataset']}, no fingerprint)"
        elif len({d for d, _ in sets}) > 1:
            label += f" ({s['dataset']})"
    if s.get("postprocess", "default") != "default":
        label += f" [{s['postprocess']}]"
    return label
