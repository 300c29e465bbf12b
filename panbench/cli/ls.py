"""``panbench ls``: the registered models, their published PQ (marked with the rules it was computed under where
they are not panopticapi's: ``46.7 (eomt)``), and where their weights are: ``cached`` (downloaded),
``download`` (fetched on first use), ``committed`` (the demo models', under ``checkpoints/``); with ``--params``,
parameters and GFLOPs counted on random weights, kept in the model facts cache (:mod:`panbench.evaluation.flops`)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from panbench.cli.options import Common
from panbench.errors import PanbenchError
from panbench.models.families import family
from panbench.models.registry import all_models

HEAD = ("model", "architecture", "backbone", "dataset", "input", "pub. PQ", "PQ_th", "PQ_st", "FPS", "params",
        "GFLOPs", "weights", "aliases")


def add_parser(sub: argparse._SubParsersAction, common: Common) -> argparse.ArgumentParser:
    p = sub.add_parser("ls", parents=[common.only_dataset], help="list the models panbench knows",
                       description="Every registered model with architecture, backbone, published PQ (marked with "
                       "the rules it was computed under where they are not panopticapi's, e.g. 46.7 (eomt)) and "
                       "whether its weights are cached, to be downloaded or committed in the repository (the demo "
                       "models).")
    p.add_argument("--params", action="store_true",
                   help="build each model (random weights) to count its parameters and its GFLOPs on one 640x480 "
                   "image (COCO val's most common size) through its test pipeline (COCO models: 800x1067 after "
                   "the resize), instead of reading the config's counts; slow the first time (a forward pass per "
                   "model, said on stderr), then read from the model facts cache in PANBENCH_CACHE (default "
                   "~/.cache/panbench; PANBENCH_NO_FACTS_CACHE=1 counts again)")
    return p


def run(args: argparse.Namespace) -> int:
    specs = all_models()
    if args.only_dataset:
        known = sorted({s.dataset for s in specs})
        if not (specs := [s for s in specs if s.dataset == args.only_dataset]):
            raise PanbenchError(f"--only-dataset {args.only_dataset}: no registered model is for it; use one of: "
                                f"{', '.join(known)}")
    rows, counted, t0 = [], Counter[str](), time.perf_counter()  # models counted "now", read from the cache "cached"
    for i, s in enumerate(specs):
        rows.append((s.name, s.architecture, s.backbone, s.dataset, s.input_size or "-",
                     *(_ruled(s, s.published.get(k)) for k in ("PQ", "PQ_th", "PQ_st")),
                     _num(s.published_fps, "{:.0f}"),
                     *_sizes(s, args.params, counted, f"{i + 1}/{len(specs)}"), family(s.framework).weights_state(s),
                     ", ".join(s.aliases)))
    widths = [max(len(str(r[i])) for r in [HEAD, *rows]) for i in range(len(HEAD))]
    for r in [HEAD, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    if notes := _footnotes(specs, rows, args.params):  # under the table, after a blank line
        print("\n" + "\n".join(notes))
    if args.params and (counted["now"] or counted["cached"]):
        from panbench.evaluation.flops import NO_FACTS_CACHE, facts_cache_on, facts_dir

        where = (f"kept in {facts_dir()}" if facts_cache_on() else f"not kept ({NO_FACTS_CACHE}=1)")
        print(f"ls: {counted['now']} model(s) counted in {time.perf_counter() - t0:.0f} s, {counted['cached']} from "
              f"the model facts cache; counts {where}", file=sys.stderr)
    return 0


def _num(v: float | None, fmt: str = "{:.1f}") -> str:  # a published number, - when none is
    return fmt.format(v) if v is not None else "-"


def _rules_of(spec) -> str | None:
    """The rules the model's published numbers were computed under: its own, else its source's; None: unknown."""
    from panbench.records.io import rules_of_source

    return spec.published_rules or rules_of_source(spec.published_source or "")


def _ruled(spec, v: float | None) -> str:
    """A published PQ, marked with its rules where they are not panopticapi's: ``46.7 (eomt)``, ``46.7 (rules?)``."""
    rule = _rules_of(spec)
    return _num(v) if v is None or rule == "panopticapi" else f"{_num(v)} ({rule or 'rules?'})"


def _sizes(spec, measure: bool, counted: Counter[str], step: str) -> tuple[str, str]:
    """Parameters (the registry's, else counted) and, with ``--params``, GFLOPs on one 640x480 image, random weights
    (cached; a model counted now said on stderr); ``-`` where its family needs a download (transformers)."""
    if spec.params is not None and not measure:
        return f"{spec.params / 1e6:.1f}M", "-"
    from panbench.evaluation.flops import random_facts

    t = time.perf_counter()
    facts = random_facts(spec, measure, on_count=(lambda: print(f"ls: [{step}] {spec.name}: counting ...",
                                                                file=sys.stderr, flush=True)) if measure else None)
    if facts is None:
        return "-", "-"
    counted["cached" if facts["from_cache"] else "now"] += 1
    if measure and not facts["from_cache"]:
        print(f"ls: [{step}] {spec.name}: counted in {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    return f"{facts['params'] / 1e6:.1f}M", f"{facts['flops']['gflops']:.1f}" if measure else "-"


def _footnotes(specs: list, rows: list[tuple], measure: bool) -> list[str]:
    """What a ``-`` in the params and GFLOPs columns means, for the rows that have one."""
    i, j = HEAD.index("params"), HEAD.index("GFLOPs")
    hub = sorted({s.framework for s, r in zip(specs, rows) if r[i] == "-" or (measure and r[j] == "-")})
    out = [_rules_note([_rules_of(s) for s in specs if any(v is not None for v in s.published.values())])]
    if not measure:
        out.append("GFLOPs: counted by `panbench ls --params` (random weights, one 640x480 image) and, on real "
                   "images, by `panbench eval` (its record's flops)")
    if hub:
        out.append(f"params/GFLOPs -: a {' or '.join(hub)} model is built from its hub download, which ls does not "
                   "make; `panbench eval --model NAME` downloads it and records both (`panbench table` shows them)")
    return [n for n in out if n]


def _rules_note(rules: list[str | None]) -> str:
    """What a published PQ's mark says: the rules it was computed under (unmarked: panopticapi's); '' for none."""
    if not rules:
        return ""
    marked = ", ".join(f"({r})" for r in sorted({r for r in rules if r not in (None, "panopticapi")}))
    return ("pub. PQ, PQ_th, PQ_st: the source's numbers; unmarked: computed under panopticapi's rules (COCO's "
            "reference, as panbench's own PQ)" + (f"; marked {marked}: under the rules of that name, to set beside "
                                                 "a run's PQ under them, which eval computes for such a model "
                                                 "(`table --vs-published`; docs/pq-rules.md)" if marked else "")
            + ("; (rules?): the source does not say its rules" if None in rules else ""))
