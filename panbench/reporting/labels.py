"""How tables, plots, the verdict and the report name a run and write a number; a leaf: it imports no other reporting
module."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from panbench.analysis.bootstrap import MIN_IMAGES
from panbench.analysis.metrics import SIZE_LIMITS
from panbench.models.families import FAMILIES
from panbench.pq.rule_names import RULES

if TYPE_CHECKING:  # annotations only: score's terminal output never loads the schema
    from panbench.records.schema import RunRecord

SIZES = tuple(name for name, _, _ in SIZE_LIMITS)  # small, medium, large


def ops_backend(r: RunRecord) -> str | None:
    """What served mmcv's compiled ops in the run: "mmcv", "panbench" or None (none reached)."""
    v = r.provenance.get("versions") or {}
    if "mmcv_ops" in v:
        return v["mmcv_ops"]
    fam = FAMILIES.get(r.framework)
    return "mmcv" if fam is not None and "mmcv" in fam.packages and v.get("mmcv") else None


def fingerprint(r: RunRecord) -> str | None:
    """The full fingerprint of the run's dataset (annotation file and selected image ids), if recorded."""
    return (r.provenance.get("dataset") or {}).get("fingerprint")


def selection(r: RunRecord) -> str:
    """How the run's images were chosen: 'all', 'limit N', 'subset FILE' (or both); 'external' without the field."""
    sel: Any = r.selection
    if isinstance(sel, dict):
        parts = [f"limit {sel['limit']}" if sel.get("limit") is not None else "",
                 f"subset {sel['subset']}" if sel.get("subset") else ""]
        return ", ".join(p for p in parts if p) or "all"
    return str(sel) if sel else "external"


def cfg_words(r: RunRecord) -> list[str]:
    """The run's ``--cfg-options`` (``provenance.cfg_options``) as KEY=VALUE words, in key order."""
    return _cfg_words(r.provenance.get("cfg_options"))


def _cfg_words(cfg: dict[str, Any] | None) -> list[str]:
    return [f"{k}={v}" for k, v in sorted((cfg or {}).items())]


def settings(r: RunRecord) -> str:
    """The run's batch size above 1, AMP other than fp32 and ``--cfg-options`` as a label; '' for none."""
    return _settings(r.batch_size, r.amp, r.provenance.get("cfg_options"))


def _settings(batch_size: Any, amp: str | None, cfg: dict[str, Any] | None) -> str:
    parts = [f"batch {batch_size}"] if isinstance(batch_size, int) and batch_size > 1 else []
    if amp not in (None, "fp32"):
        parts.append(f"amp {amp}")
    return "; ".join(parts + _cfg_words(cfg))


def summary_model(s: dict[str, Any]) -> str:
    """A robustness summary's model as its clean run's figures name it: the name with the clean run's settings."""
    st = s.get("settings") or {}
    text = _settings(st.get("batch_size"), st.get("amp"), st.get("cfg_options"))
    return f"{s['model']} ({text})" if text else str(s["model"])


PP_WORD = "postprocess="  # a word of --settings that names the post-processing


def choice_label(r: RunRecord) -> str:
    """:func:`settings` with the post-processing as a word ``postprocess=LABEL`` where it is not the model's own:
    how ``compare --settings`` names a run of a model (''  for none)."""
    pp = r.postprocess if r.postprocess not in ("default", "external") else ""
    return "; ".join(p for p in (settings(r), f"{PP_WORD}{pp}" if pp else "") if p)


def postprocess_match(label: str, wanted: str) -> bool:
    """Whether the post-processing ``label`` (``maskwise(a=0.25,b=1,...)``) is ``wanted``: the label or its name."""
    return label == wanted or label.split("(", 1)[0] == wanted


def settings_match(r: RunRecord, wanted: str | None) -> bool:
    """Whether the run's :func:`settings` are ``wanted``, in any order (``default`` or ``''``: none); a key may be
    given by its short name (``object_mask_thr=0.6`` for ``model.test_cfg.object_mask_thr=0.6``, as ``eval --grid``
    takes it); a word ``postprocess=NAME`` of ``wanted`` asks for that post-processing too
    (:func:`postprocess_match`)."""

    def words(text: str) -> list[str]:
        return sorted(w for w in re.split(r"[;\s]+", text) if w)

    def short(word: str) -> str:
        key, sep, value = word.partition("=")
        return f"{key.rsplit('.', 1)[-1]}{sep}{value}"

    want = words("" if wanted in (None, "default") else str(wanted))
    pps = [w[len(PP_WORD):] for w in want if w.startswith(PP_WORD)]
    have, want = words(settings(r)), [w for w in want if not w.startswith(PP_WORD)]
    return ((have == want or sorted(map(short, have)) == sorted(map(short, want)))
            and all(postprocess_match(r.postprocess, p) for p in pps))


def dataset_key(r: RunRecord) -> str:
    """The dataset a run used: its name and its fingerprint's first 8 hex digits (another image set, another key)."""
    fp = fingerprint(r)
    return f"{r.dataset} {fp[:8]}" if fp else str(r.dataset)


def corrupted_note(records: list[RunRecord]) -> str:
    """The line that says where the corrupted runs among ``records`` are shown; '' where there are none."""
    n = sum(1 for r in records if r.corruption)
    return (f"{n} corrupted run(s) of a robustness sweep not ranked nor drawn here: `panbench table --robustness`, "
            "`panbench robustness` and the report's robustness section show them (figures in plots/robustness/)"
            ) if n else ""


def ranked_records(records: list[RunRecord]) -> list[RunRecord]:
    """The records grouped by dataset (first-seen order), the best PQ first within each."""
    order = list(dict.fromkeys(dataset_key(r) for r in records))
    return sorted(records, key=lambda r: (order.index(dataset_key(r)), -r.metrics["PQ"]))


def model_label(r: RunRecord, records: list[RunRecord]) -> str:
    """The model's name with its settings, and its dataset where the model ran on several."""
    label = r.model
    if s := settings(r):
        label += f" ({s})"
    if len({dataset_key(x) for x in records if x.model == r.model}) > 1:
        label += f" ({dataset_key(r)})"
    return label


def run_label(r: RunRecord, records: list[RunRecord]) -> str:
    """:func:`model_label` with the post-processing after the name: one label per row of a table."""
    return f"{r.model} [{r.postprocess}]" + model_label(r, records)[len(r.model):]


def short_label(r: RunRecord, records: list[RunRecord]) -> str:
    """The model with its settings and, when not the default, its post-processing: how the verdict names a run."""
    pp = r.postprocess
    return model_label(r, records) + ("" if pp in ("default", "external") else f" [{pp}]")


ELLIPSIS = "\N{HORIZONTAL ELLIPSIS}"
# where a line may break inside a word: after ',', ';', '/' or '_', or after a hyphen between letters or digits
_INSIDE = re.compile(r"(?<=[,;/_])(?=.)|(?<=[A-Za-z0-9]-)(?=[A-Za-z0-9])")


def shorten(word: str, width: int) -> str:
    """``word`` at most ``width`` characters: its start and end kept, an ellipsis for its middle."""
    if len(word) <= width:
        return word
    head = width // 2
    return word[:head] + ELLIPSIS + word[len(word) - (width - 1 - head):]


def fill(text: str, width: int, long: str = "shorten") -> list[str]:
    """The lines of ``text`` (its own line breaks kept, blank lines left out) of at most ``width`` characters, broken
    between words: at spaces and, in a word too long for a line, after ',', ';', '/', '_' or a hyphen between letters
    or digits; a part still too long ``long``: shortened with an ellipsis (:func:`shorten`), ``cut`` at the width or
    ``keep`` whole."""
    lines: list[str] = []
    for line in text.split("\n"):
        words = [(part, " " if k == 0 else "") for word in line.split()
                 for k, part in enumerate([word] if len(word) <= width else [p for p in _INSIDE.split(word) if p])]
        at = len(lines)
        for part, sep in words:
            pieces = ([shorten(part, width)] if long == "shorten" else [part] if long == "keep" or width < 1 else
                      [part[i:i + width] for i in range(0, len(part), width)])
            for k, piece in enumerate(pieces):
                if len(lines) > at and len(lines[-1]) + len(sep) + len(piece) <= width and not k:
                    lines[-1] += sep + piece
                else:
                    lines.append(piece)
    return lines


def fold_label(text: str, width: int, lines: int = 3) -> str:
    """A run's label (or any text) on at most ``lines`` lines of at most ``width`` characters (:func:`fill`): broken
    between words only, a word too long for a line shortened in its middle; past ``lines`` lines, the first
    ``lines - 1`` and the last after an ellipsis."""
    out = fill(text, width)
    if len(out) > lines > 1:
        last = out[-1] if len(out[-1]) + 2 <= width else out[-1][len(out[-1]) - width + 2:]
        out = out[:lines - 1] + [f"{ELLIPSIS} {last}"]
    elif len(out) > lines:
        out = [shorten(" ".join(out), width)]
    return "\n".join(out) or text


def images(n: int) -> str:
    """'1 image', '12 images'."""
    return f"{n} image{'s' * (n != 1)}"


def these_images(n: int) -> str:
    """'this image', 'these 12 images'."""
    return "this image" if n == 1 else f"these {n} images"


def has_published(r: RunRecord) -> bool:
    """Whether the record holds a published number for some metric."""
    return any(v is not None for v in r.published.values())


def published_label(r: RunRecord) -> str:
    """Where a row's published numbers come from, in a few words."""
    return r.published_source or "none for this model and dataset"


def shown_rules(records: list[RunRecord]) -> list[str]:
    """The rules besides panopticapi's (the runs' own metrics) that some of ``records`` computed (``--rules``, or the
    published numbers' rules: docs/pq-rules.md), in :data:`panbench.pq.rule_names.RULES`' order."""
    had = {rule for r in records for rule in (r.rules or {}) if rule != "panopticapi"}
    return [rule for rule in RULES if rule in had] + sorted(had.difference(RULES))


def absent_notes(records: list[RunRecord], rules: list[str], label: Callable[[RunRecord], str]) -> list[str]:
    """Per rule whose mean is over every class (its entry's ``absent_classes`` of ``classes_averaged``: EoMT's), the
    classes each run's mean counted as 0, the run named by ``label``; none where no class was absent."""
    out = []
    for rule in rules:
        said = [f"{v['absent_classes']} of {v['classes_averaged']} in {label(r)}" for r in records
                if (v := (r.rules or {}).get(rule) or {}).get("absent_classes")]
        if said:
            out.append(f"PQ [{rule}]: a mean over every class, one absent (no TP, FP or FN under the rule) counted as "
                       f"0; classes absent: {'; '.join(said)}")
    return out


UNDEFINED = "n/a"  # a number its rule leaves undefined (NaN: no class with a TP, FP or FN counted under it)


def decimals(v: float, spec: str = ".2f") -> str:
    """``v`` formatted by ``spec`` (``.2f``, ``+7.2f``), never a negative zero: a value that rounds to 0 prints as 0
    with the sign ``spec`` asks for (``0.00``, ``+0.00``); NaN as :data:`UNDEFINED`, as wide as ``spec`` says."""
    if v != v:  # NaN
        width = re.match(r"[+ -]?0?(\d*)", spec)
        return UNDEFINED.rjust(int(width.group(1) or 0) if width else 0)
    text = format(v, spec)
    return format(0.0, spec) if text.lstrip().startswith("-") and float(text) == 0 else text


def absent(v: dict[str, Any]) -> bool:
    """A category absent from both the ground truth and the predictions: its PQ is undefined, not 0."""
    return all(k in v for k in ("TP", "FP", "FN")) and v["TP"] + v["FP"] + v["FN"] == 0


def missing_why(records: list[RunRecord], key: str, default: str) -> list[tuple[list[RunRecord], str]]:
    """The records without the analysis ``key`` grouped by why (too few images for an interval, else ``default``)."""
    lacking = [r for r in records if getattr(r, key) is None or getattr(r, key) == {}]
    few = [r for r in lacking if key == "ci" and r.n_images < MIN_IMAGES]
    rest = [r for r in lacking if r not in few]
    out = [(few, f"fewer than {MIN_IMAGES} images, too few for a bootstrap interval")] if few else []
    return out + ([(rest, default)] if rest else [])


def other_pipeline(r: RunRecord) -> str | None:
    """Where a run's inference pipeline is not its published numbers' (an hf: model's ``--pipeline``): the words
    saying so; None where they match or the family has one."""
    run = (r.provenance or {}).get("pipeline")
    if r.published_pipeline is None or run == r.published_pipeline:
        return None
    return f"published under the {r.published_pipeline} pipeline, this run {run or 'unknown'}: no difference"
