"""What several commands share: the parent parsers of the common options (each option defined once, reaching a
command through argparse's ``parents=``), and value checks that give argparse's one-line usage error (exit 2)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from panbench.errors import PanbenchError
from panbench.models.grid import PIPELINES


def number_in(kind: type[int] | type[float], low: float, high: float | None = None,
              what: str = "") -> Callable[[str], Any]:
    """An argparse ``type``: an integer (``kind`` int) or a finite number (float) >= ``low`` (and <= ``high`` where
    given; ``what``: what it is)."""
    if kind is int:
        noun, span = "an integer", f"in {low}..{high}" if high is not None else f">= {low}"
    else:
        noun, span = "a number", f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"

    def check(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan  # refused below, as nan and infinities are
        if not (low <= value < math.inf and (high is None or value <= high)):
            raise argparse.ArgumentTypeError(f"must be {noun} {span}{what}, got {text}")
        return value
    return check


positive_int = number_in(int, 1)  # counts and sizes
non_negative_int = number_in(int, 0)  # where 0 means none, or the default choice
seed_int = number_in(int, 0, 2**32 - 1, " (a seed)")  # numpy's legacy seeds and torch's fit 32 bits
fraction = number_in(float, 0.0, 1.0)  # thresholds and fractions
non_negative_float = number_in(float, 0.0)  # exponents


def model_name(text: str) -> str:
    """An argparse ``type``: a name a record is filed and shown under (not empty, not only spaces; trimmed), not a
    registered model's (a model's own runs are ``eval``'s: a table would rank two rows of one name)."""
    from panbench.models.registry import all_models  # the configs read only where a name is given

    if not text.strip():
        raise argparse.ArgumentTypeError(f"needs a name to show the system under in tables, got {text!r}")
    name = text.strip()
    if any(name == s.name or name in s.aliases for s in all_models()):
        raise argparse.ArgumentTypeError(f"{name}: the name of a registered model (a model's own runs are `panbench "
                                         f"eval`'s); name the system another way, e.g. --name '{name} (scored)'")
    return name


class Common:
    """Parent parsers of the shared options, one per group: a flag two commands take is defined here, once, with one
    meaning (tests/test_architecture_cli.py).  Each is built on first use: a command imports what its groups need."""

    results: argparse.ArgumentParser  # --results
    data_root: argparse.ArgumentParser  # --data-root
    dataset: argparse.ArgumentParser  # --dataset: the dataset a command runs models on
    only_dataset: argparse.ArgumentParser  # --only-dataset: keep the models or runs of one dataset
    models: argparse.ArgumentParser  # --model: the models a command runs
    checkpoint: argparse.ArgumentParser  # --checkpoint, --trust-checkpoint
    image_selection: argparse.ArgumentParser  # --limit, --subset
    device: argparse.ArgumentParser  # --device
    run: argparse.ArgumentParser  # batch size, processes, warm-up, cache, launcher, --no-ap (eval, robustness)
    amp: argparse.ArgumentParser  # --amp
    seed: argparse.ArgumentParser  # --seed
    progress: argparse.ArgumentParser  # --no-progress
    corruption: argparse.ArgumentParser  # --corruption, --severity
    corruptions: argparse.ArgumentParser  # --corruptions, --severities: a sweep's corruption cells
    evaluator: argparse.ArgumentParser  # --evaluator (eval, robustness, submit, score)
    rules: argparse.ArgumentParser  # --rules (eval, score)
    pipeline: argparse.ArgumentParser  # --pipeline: an hf: model's inference (eval, robustness, speed, submit)
    boundary: argparse.ArgumentParser  # --boundary
    strict: argparse.ArgumentParser  # --strict
    diagnosis: argparse.ArgumentParser  # --no-diagnosis
    format: argparse.ArgumentParser  # --format (of the tables)
    figures: argparse.ArgumentParser  # --figure-format, --dpi, --figure-width (of the figures)
    reference: argparse.ArgumentParser  # --reference
    by: argparse.ArgumentParser  # --by dataset: one table (report section, figure) across datasets
    json: argparse.ArgumentParser  # --json
    out: argparse.ArgumentParser  # --out
    per_image: argparse.ArgumentParser  # --per-image
    root: argparse.ArgumentParser  # --root (panbench data)
    force: argparse.ArgumentParser  # --force (panbench data)
    from_dir: argparse.ArgumentParser  # --from (panbench data)

    if not TYPE_CHECKING:  # the type checker sees the groups above, not any name

        def __getattr__(self, name: str) -> argparse.ArgumentParser:
            if (add := _GROUPS.get(name)) is None:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            parent = argparse.ArgumentParser(add_help=False)
            add(parent)
            setattr(self, name, parent)
            return parent


class DeprecatedAlias(argparse.Action):
    """An old spelling of an option, kept for one version: the new one's action after a one-line note on stderr;
    ``--help`` does not list it."""

    def __init__(self, option_strings: list[str], dest: str, target: argparse.Action, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=target.nargs, const=target.const, type=cast(Any, target.type),
                         choices=target.choices, default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                         metavar=target.metavar)
        self.target = target

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: str | Sequence[Any] | None, option_string: str | None = None) -> None:
        new = self.target.option_strings[0]
        print(f"{parser.prog}: note: {option_string} is deprecated and goes in the next version; use {new}",
              file=sys.stderr)
        self.target(parser, namespace, values, new)


def deprecated_alias(p: argparse.ArgumentParser, old: str, new: str) -> None:
    """Accept ``old`` in ``p`` as a deprecated spelling of its option ``new`` (:class:`DeprecatedAlias`)."""
    target = p._option_string_actions[new]
    p.add_argument(old, action=DeprecatedAlias, dest=target.dest, target=target)


def dataset_root(args: argparse.Namespace) -> str:
    """``--data-root``, or the dataset's folder (``data/<dataset>``; ``data/coco`` without ``--dataset``)."""
    from panbench.data.catalog import folder

    return args.data_root or folder(getattr(args, "dataset", None) or "coco")


def check_writable(folder: str | Path, option: str) -> None:
    """Refuse, before anything is computed or written, a folder that cannot be made or written (errors found only
    when writing, such as a full disk, are one line too: :func:`panbench.cli.main`)."""
    from panbench.records.io import unwritable

    if why := unwritable(folder):
        fix = "fix its permissions or " if why.startswith("no write permission") else ""
        raise PanbenchError(f"{folder}: cannot be written ({why}); {fix}pass another {option} (nothing was run)")


def check_file_writable(path: str | Path, option: str) -> None:
    """Refuse, before anything is computed, a file that cannot be written: a folder in its place, or in its way."""
    p = Path(path)
    if p.is_dir():
        raise PanbenchError(f"{option.split()[0]} {p}: a folder, not a file; pass a file name (e.g. {p / 'NAME'}) "
                            "(nothing was run)")
    check_writable(p.parent, option)


def check_results(results: str | Path) -> None:
    """The results folder a command reads records from: a file, or a folder that does not exist, refused."""
    path = Path(results)
    if path.exists() and not path.is_dir():
        raise PanbenchError(f"--results {path}: a file, not a folder; pass the results folder (where `panbench "
                            "eval` writes runs/; default results/)")
    if not path.exists():
        raise PanbenchError(f"--results {path}: no such folder; run `panbench eval` first (it writes its records "
                            f"into {path / 'runs'}), or pass the folder it wrote")


# The groups: each flag's help and default written once; a run's defaults are EvalOptions' (read here, so that
# ``--help`` shows them).  The datasets named in a help are the rows of panbench.data.catalog.DATASETS.


class _Eval(str):
    """A ``default`` that is :class:`panbench.evaluation.options.EvalOptions`' field of this name (read when the
    group is built; the help shows it as ``%(default)s``)."""


def _flags(*flags: tuple[str, dict[str, Any]]) -> Callable[[argparse.ArgumentParser], None]:
    """A group of options, each ``(flag, add_argument's keywords)``."""
    def add(p: argparse.ArgumentParser) -> None:
        for flag, kwargs in flags:
            if isinstance(field := kwargs.get("default"), _Eval):
                from panbench.evaluation.options import EvalOptions

                kwargs = {**kwargs, "default": getattr(EvalOptions, field)}
            p.add_argument(flag, **kwargs)
    return add


def _dataset(p: argparse.ArgumentParser) -> None:
    from panbench.data.catalog import names

    p.add_argument("--dataset", help=f"the dataset to run on: {names()} (panbench data); default: the dataset the "
                   "models were trained on (coco for the zoo, demo for the demo models)")


def _only_dataset(p: argparse.ArgumentParser) -> None:
    from panbench.data.catalog import names

    p.add_argument("--only-dataset", metavar="DATASET", help="show only the models (ls) or the runs of this dataset "
                   f"({names()}, or the name a `score --name` record was filed under)")
    deprecated_alias(p, "--dataset", "--only-dataset")


class _Models(argparse.Action):
    """``--model``, repeatable: the values joined with commas (``--model a --model b`` is ``--model a,b``)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, ",".join(filter(None, (getattr(namespace, self.dest, None), str(values)))))


def _models(p: argparse.ArgumentParser) -> None:
    from panbench.models.families import model_help  # each family's --model PREFIX: (standard library only)

    p.add_argument("--model", action=_Models, required=True,
                   help="a name or alias from `panbench ls`, a comma-separated list (or --model repeated), 'all' "
                   "(the registered models of the dataset: the MMDetection zoo's for coco, the three demo models "
                   "with --dataset demo, the transformers checkpoints of the others: panbench ls --only-dataset "
                   f"NAME), a config path, or {model_help()}")


def _format(p: argparse.ArgumentParser) -> None:
    from panbench.reporting.formats import WRITERS  # the formats: one writer each (standard library only)

    p.add_argument("--format", default="md", choices=list(WRITERS), help="of the printed tables (default md: Markdown)")


def _figures(p: argparse.ArgumentParser) -> None:
    from panbench.reporting.figure_files import FORMATS, MAX_DPI  # (standard library only)
    from panbench.reporting.figure_style import DEFAULT_WIDTH, WIDTHS

    p.add_argument("--figure-format", choices=FORMATS,
                   help="of the figures written: png (default), or pdf or svg for a paper (vector, the text kept as "
                   "text); --format is the tables'")
    p.add_argument("--dpi", type=number_in(int, 1, MAX_DPI, " (dots per inch)"),
                   help="resolution of the figures (of a PNG; of the images inside a PDF or SVG); default 100 for "
                   "plot's and report's plots, 110 for the robustness plots and viz's overlays")
    p.add_argument("--figure-width", type=figure_width_inches, metavar="single|double|INCHES",
                   help=f"the width of every figure: single ({WIDTHS['single']} in, a journal's column), double "
                   f"({WIDTHS['double']} in, its text width) or inches; default {DEFAULT_WIDTH}. The fonts keep "
                   "their size (7-8 pt), so a figure printed at this width reads as the text")


def figure_width_inches(text: str) -> float:
    """An argparse ``type``: ``--figure-width`` in inches (:func:`panbench.reporting.figure_style.figure_inches`)."""
    from panbench.reporting.figure_style import figure_inches  # (standard library only)

    try:
        return figure_inches(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _from_dir(p: argparse.ArgumentParser) -> None:
    from panbench.data.catalog import DATASETS

    held = "; ".join(f"{d.name}: {d.from_files}" for d in DATASETS.values() if d.from_files)
    p.add_argument("--from", dest="from_dir", metavar="DIR", help=f"the folder of the official files ({held})")


def rule_names(text: str) -> tuple[str, ...]:
    """An argparse ``type``, ``--rules a,b``: the PQ rules named, checked (an unknown one refused in one line)."""
    from panbench.pq.rule_names import check_rules  # (standard library only)

    try:
        return check_rules([n.strip() for n in text.split(",") if n.strip()], "rule")
    except PanbenchError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("rule: ")) from None


class _AddRules(argparse.Action):
    """``--rules`` given again adds its rules to the earlier ones (in the rules' order)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from panbench.pq.rule_names import RULES

        named = {*(getattr(namespace, self.dest, None) or ()), *values}
        setattr(namespace, self.dest, tuple(r for r in RULES if r in named))


def _rules(p: argparse.ArgumentParser) -> None:
    from panbench.pq.rule_names import RULES

    p.add_argument("--rules", metavar="NAME[,NAME...]", type=rule_names, action=_AddRules,
                   help="PQ also under other implementations' rules, beside panbench's (panopticapi's): "
                   f"{', '.join(RULES)} (docs/pq-rules.md; given again, added); printed, and in the record as `rules` "
                   "(score: --json too)")


_STORE_TRUE = {"action": "store_true"}
_GROUPS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "results": _flags(("--results", dict(default="results", help="results folder (default results/)"))),
    "data_root": _flags(("--data-root", dict(help="dataset root (default data/<dataset>, e.g. data/coco)"))),
    "dataset": _dataset, "only_dataset": _only_dataset, "models": _models, "rules": _rules,
    "pipeline": _flags(("--pipeline", dict(choices=PIPELINES, help="hf: models' inference: the original "
                                           "repository's own pre- and post-processing (original, the default), "
                                           "transformers' processor and post_process_panoptic_segmentation "
                                           "(transformers), or the steps between (docs/huggingface.md, "
                                           "\"Pipelines\")"))),
    "checkpoint": _flags(
        ("--checkpoint", dict(action="append", metavar="FILE", help="your own weights instead of the zoo's, one per "
                              "--model in the same order (repeat it for the second model of viz)")),
        ("--trust-checkpoint", dict(_STORE_TRUE, help="allow full unpickling of a checkpoint that weights_only "
                                    "loading refuses"))),
    "image_selection": _flags(("--limit", dict(type=positive_int, help="use only the first N images")),
                              ("--subset", dict(help="file of image ids (one per line) to use"))),
    "device": _flags(("--device", dict(default=_Eval("device"), help="%(default)s (default: cuda when available), "
                                       "cpu, cuda, cuda:1"))),
    "run": _flags(
        ("--batch-size", dict(type=positive_int, default=_Eval("batch_size"),
                              help="images per forward pass (default %(default)s)")),
        ("--workers", dict(type=non_negative_int, default=_Eval("workers"), help="data-loading worker processes, "
                           "where robustness corrupts the images (default %(default)s)")),
        ("--cpu-procs", dict(type=non_negative_int, default=_Eval("cpu_procs"), help="on the CPU: inference "
                             "processes forked after the model is loaded, each with cores/N threads and its own data "
                             "loading (default %(default)s: one per core; 1: a single process)")),
        ("--warmup", dict(type=non_negative_int, default=_Eval("warmup"),
                          help="batches left out of the timings (default %(default)s)")),
        ("--no-resume", dict(_STORE_TRUE, help="ignore per-image results cached by an earlier run")),
        ("--cache-every", dict(type=positive_int, default=_Eval("flush_every"),
                               help="write the per-image results cache every N images (default %(default)s)")),
        ("--launcher", dict(choices=["torchrun", "slurm"], default="torchrun", help="where the ranks come from: "
                            "torchrun (default; one process without it) or slurm (under srun)")),
        ("--no-ap", dict(_STORE_TRUE, help="PQ only: no COCO mask AP beside it (the models' instance outputs stay "
                         "off; faster)"))),
    "evaluator": _flags(("--evaluator", dict(action="append", metavar="MODULE:CLASS", help="add your own evaluator: "
                                             "module:Class or path/to/file.py:Class (repeatable; "
                                             "docs/api.md#your-own-evaluator)"))),
    "amp": _flags(("--amp", dict(choices=["bf16", "fp16"], default=_Eval("amp"),
                                 help="mixed-precision inference (default: fp32)"))),
    "seed": _flags(("--seed", dict(type=seed_int, default=_Eval("seed"), help="seed of python's, numpy's and torch's "
                                   "random generators at the start of the run (default %(default)s)"))),
    "progress": _flags(("--no-progress", dict(_STORE_TRUE, help="no progress bar"))),
    "corruption": _flags(
        ("--corruption", dict(metavar="NAME", help="corrupt each image after loading (one of the 15 COCO-C "
                              "corruptions, docs/robustness.md); needs --severity")),
        ("--severity", dict(type=number_in(int, 1, 5), metavar="S", help="the corruption's severity, 1 to 5"))),
    "corruptions": _flags(
        ("--corruptions", dict(help="all, a group (noise, blur, weather, digital) or a comma-separated list of "
                               "groups and corruption names, each beside the clean images; default: all "
                               "(robustness), none: the clean images only (submit)")),
        ("--severities", dict(help="severities of each corruption, e.g. 1-5 (default), 3 or 1,3,5; on the demo set "
                              "the default is 3"))),
    "boundary": _flags(("--boundary", dict(_STORE_TRUE, help="also boundary PQ (Cheng et al. 2021; opt-in: a second "
                                           "pass over the pixels of each image)"))),
    "strict": _flags(("--strict", dict(_STORE_TRUE, help="refuse ground-truth PNG ids that segments_info does not "
                                       "list (default: score them as panopticapi does and say how many pixels)"))),
    "diagnosis": _flags(("--no-diagnosis", dict(_STORE_TRUE, help="do not look for the format mistakes behind a low PQ "
                                                "of an accepted input (another class order, ids as indexes; a refused "
                                                "input's error names its mistake anyway; docs/pq-evaluator.md)"))),
    "format": _format, "figures": _figures,
    "reference": _flags(("--reference", dict(metavar="MODEL", help="the run the paired differences are taken to (a "
                                             "model name, or a label as the table prints it); default: the best PQ "
                                             "on each dataset"))),
    "by": _flags(("--by", dict(choices=["dataset"], help="dataset: one table across datasets (table prints it instead "
                               "of its own, report adds it as a section, plot draws it instead, in "
                               "RESULTS/plots/across-datasets/): a row per architecture and backbone, a column group "
                               "per dataset with PQ, PQ things, PQ stuff, AP and mIoU where its runs have them, each "
                               "published number beside the measured one; the latest run of each, clean runs only, "
                               "nothing ranked across datasets (docs/reporting.md)"))),
    "json": _flags(("--json", dict(_STORE_TRUE, help="print one JSON object instead of the table"))),
    "out": _flags(("--out", dict(metavar="FILE", help="the file written (default: under RESULTS, as the description "
                                 "says)"))),
    "per_image": _flags(("--per-image", dict(metavar="FILE", help="also write the per-image table (PQ, TP, FP, FN of "
                                             "each image) to FILE (.csv or .parquet)"))),
    "root": _flags(("--root", dict(help="where the dataset goes (default data/<dataset>, e.g. data/demo)"))),
    "force": _flags(("--force", dict(_STORE_TRUE, help="write it again even if present"))),
    "from_dir": _from_dir,
}
