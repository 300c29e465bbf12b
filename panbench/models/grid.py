"""Post-processing grids (``eval --grid KEY=V1,V2,...``; docs/eval.md, "Grids"): the keys each fusion takes, the
values parsed and checked, and the :class:`Setting` s of a grid, each what a separate run would be given
(``--cfg-options`` and ``--postprocess``).  No torch here: the grid is checked before any model loads."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from panbench.errors import PanbenchError
from panbench.models.postprocess import POSTPROCESSES, PostProcess


def _number(low: float, high: float | None, integer: bool = False) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            return f"a{'n integer' if integer else ' number'}"
        if math.isnan(v) or v < low or (high is not None and v > high):
            return f"in [{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        if integer and abs(v) > 2**63 - 1:  # torch's int64: a larger one wraps (a wrong number) or raises
            return f"an integer up to {2**63 - 1}"
        return None

    return check


def _boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "True or False"


def _choice(v: Any) -> str | None:
    return None if v in POSTPROCESSES else f"one of {', '.join(POSTPROCESSES)}"


#: an hf: model's inference pipelines (``--pipeline``): the original's own (the default); the original's input with
#: transformers' mask resolution and fusion after it (``original-input``), with the original's mask resolution and
#: transformers' fusion (``original-masks``); transformers' stock pipeline.  The first three share one forward
PIPELINES = ("original", "original-masks", "original-input", "transformers")


def _pipeline(v: Any) -> str | None:
    if v in PIPELINES[:3]:
        return None
    return (f"one of {', '.join(PIPELINES[:3])} (they share the original's input; --pipeline transformers runs "
            "another forward: run it alone)")


@dataclass(frozen=True)
class GridKey:
    """A key a grid may vary: its full name (a config key, ``postprocess`` or a ``pp_*`` field of
    :class:`PostProcess`), what it sets (``cfg``: ``--cfg-options``; ``pp``: ``--postprocess`` and ``--pp-*``), the
    check of a value (None, or what the value must be), the model's own value when the config does not say, and
    whether the forward reads it (``forward``: the forward runs at the grid's lowest value and each setting keeps
    the detections above its own, which is what a forward at that value keeps)."""

    name: str
    sets: str
    check: Callable[[Any], str | None]
    default: Any = None
    forward: bool = False

    @property
    def short(self) -> str:
        return self.name.rsplit(".", 1)[-1]


_PP = PostProcess()
#: the keys of ``--postprocess`` and Panoptic SegFormer's mask-wise merging (``--pp-*``)
POSTPROCESS_KEYS = (GridKey("postprocess", "pp", _choice, "default"),
                    GridKey("pp_alpha", "pp", _number(0, None), _PP.alpha),
                    GridKey("pp_beta", "pp", _number(0, None), _PP.beta),
                    GridKey("pp_conf", "pp", _number(0, 1), _PP.conf_thr),
                    GridKey("pp_keep", "pp", _number(0, 1), _PP.keep_thr))
_PP_FIELD = {"pp_alpha": "alpha", "pp_beta": "beta", "pp_conf": "conf_thr", "pp_keep": "keep_thr"}
#: the keys that mean something to one merging rule only: the model's own fusion's, mask-wise merging's
_RULE_OF = {**{f"model.test_cfg.{k}": "default" for k in ("object_mask_thr", "iou_thr", "filter_low_score")},
            **dict.fromkeys(_PP_FIELD, "maskwise")}

#: each fusion's keys: MaskFormer's and Mask2Former's (mmdet's ``MaskFormerFusionHead``), PanopticFPN's
#: (``HeuristicFusionHead``), and transformers' post-processing arguments
GRID_KEYS: dict[str, tuple[GridKey, ...]] = {
    "maskformer": (GridKey("model.test_cfg.object_mask_thr", "cfg", _number(0, 1), 0.8),
                   GridKey("model.test_cfg.iou_thr", "cfg", _number(0, 1), 0.8),
                   GridKey("model.test_cfg.filter_low_score", "cfg", _boolean, False), *POSTPROCESS_KEYS),
    "heuristic": (GridKey("model.test_cfg.panoptic.mask_overlap", "cfg", _number(0, 1), 0.5),
                  GridKey("model.test_cfg.panoptic.stuff_area_limit", "cfg", _number(0, None, integer=True), 4096),
                  # the box head keeps scores above it (mmdet's multiclass_nms: NMS among those, then the best
                  # max_per_img): a box above a higher value is suppressed only by one above it too, in both runs
                  GridKey("model.test_cfg.rcnn.score_thr", "cfg", _number(0, 1), 0.05, forward=True)),
    # transformers' post_process_panoptic_segmentation arguments (hf: models take them as --cfg-options too)
    "hf": (GridKey("threshold", "cfg", _number(0, 1), 0.5), GridKey("mask_threshold", "cfg", _number(0, 1), 0.5),
           GridKey("overlap_mask_area_threshold", "cfg", _number(0, 1), 0.8),
           GridKey("pipeline", "cfg", _pipeline, PIPELINES[0])),
}
#: keys refused with the reason they cannot come from one forward
NOT_FROM_ONE_FORWARD = {
    "model.test_cfg.max_per_image": "it sets how many instances AP reads, not the panoptic fusion; run each value "
                                    "alone (--cfg-options)",
}


def parse_value(text: str) -> Any:
    """A value as ``--cfg-options`` parses it (mmengine's ``DictAction``): ``0.7`` a float, ``1`` an int, ``True``
    a bool, anything else a string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``--grid KEY=V1,V2 ...`` as {key as given: values}, in the order given; a malformed item, a key given twice or
    a value given twice is refused in one line."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise PanbenchError(f"--grid {item!r}: expected KEY=V1,V2,... (e.g. --grid object_mask_thr=0.7,0.8,0.9)")
        if key in out:
            raise PanbenchError(f"--grid {key}: given twice; give its values once, comma-separated")
        parsed = [parse_value(v.strip()) for v in values.split(",")]
        if "" in parsed:
            raise PanbenchError(f"--grid {item!r}: an empty value; separate the values by single commas")
        if len({(type(v) is bool, v) for v in parsed}) != len(parsed):  # 1 and 1.0 are one value, True is not 1
            raise PanbenchError(f"--grid {item!r}: a value given twice; give each once")
        out[key] = parsed
    return out


def refuse_other_forwards(key: str) -> None:
    """A key of :data:`NOT_FROM_ONE_FORWARD` (full or short name) refused, saying why."""
    if why := next((v for k, v in NOT_FROM_ONE_FORWARD.items() if key == k or k.endswith("." + key)), None):
        raise PanbenchError(f"--grid {key}: cannot come from one forward ({why})")


def forward_options(grid: dict[str, list[Any]], kind: str | None) -> dict[str, Any]:
    """The ``--cfg-options`` the forward of a grid runs with: each key the forward reads at the grid's lowest value
    (a fusion of ``kind``)."""
    out = {}
    for key, values in grid.items():
        found = [k for k in GRID_KEYS.get(kind or "", ()) if key in (k.name, k.short) and k.forward]
        if found:
            out[found[0].name] = min(values)
    return out


def has_key(key: str, kind: str) -> bool:
    """Whether a fusion of ``kind`` takes ``key`` (full or short name)."""
    return any(key in (k.name, k.short) for k in GRID_KEYS.get(kind, ()))


def resolve_key(key: str, kind: str, model: str) -> GridKey:
    """The :class:`GridKey` of ``key`` (full or short) for a fusion of ``kind``; refused in one line naming why."""
    refuse_other_forwards(key)
    keys = GRID_KEYS.get(kind, ())
    found = [k for k in keys if key in (k.name, k.short)]
    if not found:
        names = ", ".join(k.short for k in keys) or "none"
        raise PanbenchError(f"--grid {key}: not a post-processing key of {model} (its keys: {names}); other "
                            "settings change the forward: run each value alone (--cfg-options)")
    return found[0]


@dataclass(frozen=True)
class Setting:
    """One setting of a grid: the values of its keys (full names, in the grid's order), the ``--cfg-options`` and
    post-processing a separate run of it is given, and whether every value is the model's own (``default``)."""

    values: tuple[tuple[str, Any], ...]
    cfg_options: dict[str, Any] | None
    postprocess: PostProcess
    default: bool = False

    def label(self) -> str:
        """``object_mask_thr=0.7 postprocess=maskwise``: the short name of each key and its value."""
        return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in self.values)

    def slug(self) -> str:
        """The label as a file name (``--save-predictions`` keeps each setting's predictions in a folder of it)."""
        return "_".join(f"{k.rsplit('.', 1)[-1]}-{v}" for k, v in self.values).replace("/", "-")

    def cfg(self, key: str) -> Any:
        """The value of config key ``key`` in this setting (None: not set by it)."""
        return (self.cfg_options or {}).get(key)


def expand(grid: dict[str, list[Any]], kind: str, model: str, base_cfg: dict[str, Any] | None,
           base_pp: PostProcess, own: Callable[[str], Any] | None = None) -> list[Setting]:
    """The settings of ``grid`` for a model whose fusion is ``kind``: every combination of the values (keys in the
    grid's order), each on top of the run's ``--cfg-options`` and post-processing; a merging rule's own keys go
    with its settings only (``pp_*`` with ``postprocess=maskwise``; ``object_mask_thr``, ``iou_thr`` and
    ``filter_low_score`` with the model's own fusion, ``default``), the combinations that then repeat given once.
    ``own(key)``: the model's own value of a config key (else :attr:`GridKey.default`), to mark the default."""
    keys = [resolve_key(k, kind, model) for k in grid]
    for k, values in zip(keys, grid.values()):
        for v in values:
            if (want := k.check(v)) is not None:
                raise PanbenchError(f"--grid {k.short}={v}: must be {want}")
    check_combined(grid, keys, base_cfg, base_pp.name)
    out: list[Setting] = []
    seen: set[tuple] = set()
    for combo in itertools.product(*grid.values()):
        values = list(zip([k.name for k in keys], combo))
        pp_name = next((v for k, v in values if k == "postprocess"), base_pp.name)
        # a rule's own keys mean nothing to another (mask-wise merging reads no object_mask_thr): left out of it
        values = [(k, v) for k, v in values if _RULE_OF.get(k, pp_name) == pp_name]
        if (ident := tuple(values)) in seen:
            continue
        seen.add(ident)
        sets = {g.name: g.sets for g in keys}
        cfg = {**(base_cfg or {}), **{k: v for k, v in values if sets[k] == "cfg"}}
        pp_given = {_PP_FIELD[k]: float(v) for k, v in values if k in _PP_FIELD}
        pp = replace(base_pp, name=pp_name, **pp_given)
        if pp_name != "maskwise":
            pp = PostProcess(pp_name)
        default = all(v == _own(k, keys, own) for k, v in values)
        out.append(Setting(tuple(values), cfg or None, pp, default and base_pp == PostProcess() and not base_cfg))
    return out


def check_combined(grid: dict[str, list[Any]], keys: list[GridKey], base_cfg: dict[str, Any] | None,
                   base_rule: str = "default") -> None:
    """The keys of one model's grid together: none named twice (a full and a short name), none also set by
    ``--cfg-options``, each read by a merging rule the grid runs (``base_rule``: the run's ``--postprocess``)."""
    if len({k.name for k in keys}) != len(keys):
        raise PanbenchError(f"--grid: {', '.join(grid)} name one key twice (a full and a short name); give it once")
    rules = {str(v) for k, vs in zip(keys, grid.values()) if k.name == "postprocess" for v in vs} or {base_rule}
    if base_rule != "default" and any(k.name == "postprocess" for k in keys):  # the grid's would win, unsaid
        raise PanbenchError(f"--grid postprocess and --postprocess {base_rule}: set it once (the grid's values, or "
                            "--postprocess alone)")
    for k in keys:
        if k.sets == "cfg" and base_cfg and k.name in base_cfg:
            raise PanbenchError(f"--grid {k.short} and --cfg-options {k.name}: set it once (the grid's values)")
        if (rule := _RULE_OF.get(k.name)) is not None and rule not in rules:
            raise PanbenchError(f"--grid {k.short}: read by postprocess={rule} only, which the grid does not run "
                                f"(it runs {', '.join(sorted(rules))}): add postprocess={rule} to the grid or leave "
                                f"{k.short} out")


def _own(key: str, keys: list[GridKey], own: Callable[[str], Any] | None) -> Any:
    """The model's own value of ``key``: its config's (``own``), else the key's default."""
    grid_key = next(g for g in keys if g.name == key)
    mine = own(key) if own is not None and grid_key.sets == "cfg" else None
    return grid_key.default if mine is None else mine


def check_grid(grid: dict[str, list[Any]], kinds: dict[str, str | None], base_cfg: dict[str, Any] | None = None,
               base_rule: str = "default") -> None:
    """Before any model loads: each key of ``grid`` is one of some model's (``kinds``: model name -> its fusion's
    kind), each value in range, and each model's keys go together (:func:`check_combined`); else refused in one
    line."""
    for key, values in grid.items():
        takers = [(m, k) for m, k in kinds.items() if k is not None and has_key(key, k)]
        if not takers and len(kinds) == 1:
            model, kind = next(iter(kinds.items()))
            resolve_key(key, kind or "", model)  # raises, naming why
        if not takers:
            known = sorted({g.short for k in kinds.values() for g in GRID_KEYS.get(k or "", ())})
            refuse_other_forwards(key)
            raise PanbenchError(f"--grid {key}: not a post-processing key of any model given (their keys: "
                                f"{', '.join(known) or 'none'}); run each value alone (--cfg-options)")
        grid_key = resolve_key(key, takers[0][1], takers[0][0])
        for v in values:
            if (want := grid_key.check(v)) is not None:
                raise PanbenchError(f"--grid {grid_key.short}={v}: must be {want}")
    for model, kind in kinds.items():
        mine = {k: v for k, v in grid.items() if kind is not None and has_key(k, kind)}
        if mine and kind is not None:
            check_combined(mine, [resolve_key(k, kind, model) for k in mine], base_cfg, base_rule)
