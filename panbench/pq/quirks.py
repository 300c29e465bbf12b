"""Where a gap between two PQ rules comes from (docs/pq-rules.md, "Attribution"): one matcher whose every difference
from panopticapi's rules is a named switch (:class:`Quirks`), and for each rule the order its switches are turned on
(:data:`ORDER`). With the first k of a rule's quirks on, the matcher is a rule of its own; the rows of the
attribution are the PQ each one adds, so that they sum to the rule's PQ minus panopticapi's. With none on it gives
panopticapi's numbers, with all of a rule's on that rule's (``tests/pq/test_quirks.py`` checks both on every image of
its set). numpy, and the C extension ``_rules`` that counts every state of many tables at once (:class:`RuleStates`:
what PQ's scoring counts under the rules it is asked for, beside its own sums)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from panbench.errors import PanbenchError
from panbench.pq.extensions import load_extension
from panbench.pq.matching import IGNORED_SHARE, MATCH_IOU, CategoryTable, Segments
from panbench.pq.rules import Color, RuleSums, color_table, rule_summary
from panbench.pq.sums import IOU_SCALE

_native = load_extension("panbench.pq._rules")  # quirk_sums over many tables in C


@dataclass(frozen=True)
class Quirks:
    """The switches, all off: panopticapi's rules."""

    crowd: str = "last"  # crowd targets: "last" (panopticapi: never matched, no FN; a prediction's pixels on its
    # category's last crowd count towards ignoring it), "all" (vernier: on every crowd of its category), "none"
    # (torchmetrics: ordinary segments), "eomt" (EoMT's patch: the crowd flag by instance, a stuff target's the
    # image's first segment's, the last unmatched crowd met standing for its category)
    pixel_areas: bool = False  # a ground-truth segment's area counted from the pixels, not the JSON's
    unlisted_void: bool = False  # ground-truth pixels of an id no segment lists are VOID (not left in the union)
    stuff_merge: bool = False  # the segments of one stuff category in an image are one
    void_union: bool = False  # predicted VOID over a target leaves the target's area in the union
    fn_void: bool = False  # an unmatched target more than half under predicted VOID is no false negative
    float32: bool = False  # the IoU and the VOID shares divided in float32
    void_class: bool = False  # a predicted VOID pixel is a class of its own (EoMT's num_classes), not VOID
    mean_all: bool = False  # every class in the mean, an absent one counting 0


#: each rule's quirks in the order the attribution turns them on: (its row's name, the switch and its value)
ORDER: dict[str, list[tuple[str, str, Any]]] = {
    "torchmetrics": [("crowd segments as ordinary segments", "crowd", "none"),
                     ("ground-truth areas from the pixels", "pixel_areas", True),
                     ("unlisted ground-truth ids as VOID", "unlisted_void", True),
                     ("one segment per stuff category", "stuff_merge", True),
                     ("predicted VOID out of the union", "void_union", True),
                     ("no FN for targets under predicted VOID", "fn_void", True),
                     ("float32 divisions", "float32", True)],
    "vernier-corrected": [("every crowd of a category ignores", "crowd", "all")],
    "eomt": [("ground-truth areas from the pixels", "pixel_areas", True),
             ("unlisted ground-truth ids as VOID", "unlisted_void", True),
             ("one segment per stuff category", "stuff_merge", True),
             ("predicted VOID out of the union", "void_union", True),
             ("no FN for targets under predicted VOID", "fn_void", True),
             ("float32 divisions", "float32", True),
             ("EoMT's crowd patch", "crowd", "eomt"),
             ("predicted VOID as a class", "void_class", True),
             ("absent classes count 0 in the mean", "mean_all", True)],
}


def states(rule: str) -> list[tuple[str, Quirks]]:
    """The rule's intermediate rules: panopticapi's with its first 1, 2, ... quirks on, each with its row's name."""
    q, out = Quirks(), []
    for name, switch, value in ORDER[rule]:
        q = replace(q, **{switch: value})
        out.append((name, q))
    return out


_CROWD = ("last", "all", "none", "eomt")  # the crowd modes in _rules.c's order
_SWITCHES = ("pixel_areas", "unlisted_void", "stuff_merge", "void_union", "fn_void", "float32", "void_class")


def quirk_code(q: Quirks) -> tuple[int, ...]:
    """``q`` as ``_rules.quirk_sums`` reads it: the crowd mode's number, then each switch but ``mean_all`` (which
    changes the mean, not the sums)."""
    return (_CROWD.index(q.crowd), *(int(getattr(q, name)) for name in _SWITCHES))


#: one image's table and segments as :func:`add_table_sums` takes them: the intersection table, the ground truth's
#: ids, category indices, JSON areas and crowd flags (one byte each), the predictions' category indices
Table = tuple[Any, Any, Any, Any, Any, Any]


def table_of(inter: np.ndarray, gt: Segments, pred: Segments) -> Table:
    """An image's :data:`Table` from its intersection table and segments."""
    return (np.ascontiguousarray(inter, np.int64), np.ascontiguousarray(gt.ids, np.int64),
            np.ascontiguousarray(gt.cats, np.int64), np.ascontiguousarray(gt.areas, np.int64),
            np.ascontiguousarray(gt.iscrowd, np.uint8), np.ascontiguousarray(pred.cats, np.int64))


def add_table_sums(tables: list[Table], cats: CategoryTable, codes: np.ndarray, out: np.ndarray) -> None:
    """Add the sums of each image of ``tables`` under each state of ``codes`` (:func:`quirk_code` rows) to ``out``
    (states x 4 x categories int64: TP, FP, FN, IoU in 2^-40): in C (``_rules.quirk_sums``, without the GIL), and by
    :func:`quirk_sums` what C leaves to it (EoMT's crowd picked by a set's order)."""
    isthing = np.ascontiguousarray(cats.isthing, np.uint8)
    left = _native.quirk_sums(tables, isthing, np.ascontiguousarray(codes, np.int32), out)
    for i, s in left:
        inter, g_ids, g_cats, g_areas, g_crowd, p_cats = (np.frombuffer(a, np.uint8 if k == 4 else np.int64) if
                                                          not isinstance(a, np.ndarray) else a
                                                          for k, a in enumerate(tables[i]))
        n_gt, n_pred = len(g_cats), len(p_cats)
        gt = Segments(g_ids, g_cats, np.asarray(g_crowd, bool), g_areas)
        pred = Segments(np.zeros(n_pred, np.int64), p_cats, np.zeros(n_pred, bool), np.zeros(n_pred, np.int64))
        r = quirk_sums(np.asarray(inter).reshape(n_gt + 2, n_pred + 1), gt, pred, cats, _quirks(codes[s]))
        for k, name in enumerate(("tp", "fp", "fn", "iou")):
            out[s, k] += getattr(r, name)


class RuleStates:
    """The sums of every quirk state of some rules (``rules``: rule names; those of :data:`ORDER` counted, alike
    states once) over images: where PQ's scoring adds each image's table (:meth:`sums_of` on a scoring thread, then
    :meth:`add_state_sums`), and each rule's numbers and attribution at the end (a rule is its last state)."""

    def __init__(self, cats: CategoryTable, rules: tuple[str, ...]) -> None:
        self.cats, self.rules = cats, tuple(r for r in rules if r in ORDER)
        codes: list[tuple[int, ...]] = []
        self.slots: dict[str, list[int]] = {}  # each rule's states' rows of `codes`
        for r in self.rules:
            for _, q in states(r):
                if quirk_code(q) not in codes:
                    codes.append(quirk_code(q))
            self.slots[r] = [codes.index(quirk_code(q)) for _, q in states(r)]
        self.codes = np.array(codes, np.int32).reshape(len(codes), len(_SWITCHES) + 1)
        self.sums = np.zeros((len(codes), 4, len(cats)), np.int64)  # TP, FP, FN, IoU (2^-40) a state
        self.images = 0  # the images whose sums these are

    def sums_of(self, tables: list[Table]) -> np.ndarray:
        """The sums of ``tables`` under the states, nothing added (a scoring thread's share of the work)."""
        out = np.zeros_like(self.sums)
        add_table_sums(tables, self.cats, self.codes, out)
        return out

    def add_state_sums(self, out: np.ndarray, images: int) -> None:
        """Add ``images`` images' sums under the states (:meth:`sums_of`'s)."""
        self.sums += out
        self.images += images

    def merge(self, other: RuleStates) -> None:
        """Add the sums of another count of the same rules (other images)."""
        if other.rules != self.rules:
            raise PanbenchError(f"internal: the sums of the rules {other.rules} added to those of {self.rules}; "
                                "please report")
        self.add_state_sums(other.sums, other.images)

    def state(self, row: int) -> RuleSums:
        return RuleSums(*(self.sums[row, k].copy() for k in range(4)))

    def fields(self, base: RuleSums) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
        """Each rule's PQ, SQ and RQ (:func:`rule_summary`) and its attribution against panopticapi's sums
        ``base``."""
        numbers = {r: rule_summary(r, self.state(self.slots[r][-1]), self.cats) for r in self.rules}
        rows = {r: attribution(r, [self.state(k) for k in self.slots[r]], base, self.cats) for r in self.rules}
        return numbers, rows


def _quirks(code: Any) -> Quirks:
    return Quirks(_CROWD[int(code[0])], **{name: bool(v) for name, v in zip(_SWITCHES, code[1:])})


def quirk_sums(inter: np.ndarray, gt: Segments, pred: Segments, cats: CategoryTable, q: Quirks) -> RuleSums:
    """One image's sums under panopticapi's rules with the quirks ``q`` on, from its intersection table."""
    n = len(cats)
    void: Color = (n + 1, 0)
    pairs, p_area, t_area, crowd_rows, t_crowd = _colors(inter, gt, pred, cats, q, void)
    out = RuleSums.zeros(n)  # by class (:func:`class_index`), then by category index
    p_matched: set[Color] = set()
    t_matched: set[Color] = set()
    for (pc, tc), v in pairs.items():
        if tc == void or tc in t_crowd or pc[0] != tc[0] or (pc == void):
            continue
        union = p_area[pc] - pairs.get((pc, void), 0) + t_area[tc] - v
        if q.void_union:
            union -= pairs.get((void, tc), 0)
        iou = _div(v, union, q)
        if iou > MATCH_IOU:
            p_matched.add(pc)
            t_matched.add(tc)
            out.tp[tc[0]] += 1
            out.iou[tc[0]] += int(np.rint(iou * IOU_SCALE))
    missed = set(t_area) - t_matched  # built and thinned as EoMT's set is: its order decides a category's crowd
    missed.discard(void)
    for tc in list(missed):
        if tc[0] >= n or q.fn_void and _div(pairs.get((void, tc), 0), t_area[tc], q) > IGNORED_SHARE:
            missed.discard(tc)
    crowd_of: dict[int, int] = {}
    for tc in (missed if q.crowd == "eomt" else sorted(missed)):  # EoMT's: the last crowd met stands for its class
        if tc in t_crowd:
            crowd_of[tc[0]] = tc[1]
        else:
            out.fn[tc[0]] += 1
    for pc in set(p_area) - p_matched - {void}:
        covered = pairs.get((pc, void), 0) + _on_crowd(pc, pairs, crowd_rows, crowd_of, q)
        if _div(covered, p_area[pc], q) <= IGNORED_SHARE and pc[0] < n:
            out.fp[pc[0]] += 1
    cls = class_index(cats)
    return RuleSums(out.tp[cls], out.fp[cls], out.fn[cls], out.iou[cls])


def class_index(cats: CategoryTable) -> np.ndarray:
    """Each category's class in the colours of :func:`quirk_sums`: its position among the sorted category ids (EoMT's
    ``CLASS_MAPPING``), whatever order the JSON lists the categories in. A colour is (class, instance), and EoMT's
    crowd patch iterates a set of colours, whose order follows their values: so the crowd that stands for a category
    is EoMT's whatever the order."""
    return np.argsort(np.argsort(np.asarray(cats.ids, np.int64), kind="stable"), kind="stable")


def _div(a: int, b: int, q: Quirks) -> float:
    """``a / b``: in float32 with ``q.float32`` (torch's division of integer tensors), else in float64."""
    return float(np.float32(a) / np.float32(b)) if q.float32 else a / b


def _on_crowd(pc: Color, pairs: dict[tuple[Color, Color], int], crowd_rows: dict[int, list[Color]],
              crowd_of: dict[int, int], q: Quirks) -> int:
    """A prediction's pixels on the crowd targets its rules let ignore it."""
    if q.crowd == "eomt":
        return pairs.get((pc, (pc[0], crowd_of[pc[0]])), 0) if pc[0] in crowd_of else 0
    colors = crowd_rows.get(pc[0], [])
    if q.crowd == "last":
        colors = colors[-1:]
    return sum(pairs.get((pc, tc), 0) for tc in colors) if q.crowd != "none" else 0


def _colors(inter: np.ndarray, gt: Segments, pred: Segments, cats: CategoryTable, q: Quirks, void: Color) -> tuple[
        dict[tuple[Color, Color], int], dict[Color, int], dict[Color, int], dict[int, list[Color]], set[Color]]:
    """The image as colours (a colour's class: :func:`class_index`): each (prediction, target) pair's pixels, each
    colour's area (a target's from the JSON or the pixels), the crowd targets of each class in segments_info order,
    and the crowd targets."""
    n_gt, isthing, cls = len(gt), cats.isthing, class_index(cats).tolist()
    rows = np.flatnonzero(inter[1:n_gt + 1].sum(1) > 0) if q.crowd == "eomt" else np.arange(n_gt)
    if q.crowd == "eomt":  # EoMT's input: the segments in the PNG, by id
        rows = rows[np.argsort(gt.ids[rows], kind="stable")]
    flags = [bool(gt.iscrowd[g]) for g in rows.tolist()]
    unlisted: Color = void if q.unlisted_void else (len(cats) + 2, 0)  # else a target of no class: in no match
    t_color: dict[int, Color] = {0: void, n_gt + 1: unlisted}
    json_area: dict[Color, int] = {}
    crowd_rows: dict[int, list[Color]] = {}
    t_crowd: set[Color] = set()
    for i, g in enumerate(rows.tolist()):
        c = int(gt.cats[g])
        tc = (cls[c], 0) if q.stuff_merge and not isthing[c] else (cls[c], i + (0 if q.crowd == "eomt" else 1))
        t_color[g + 1] = tc
        json_area[tc] = json_area.get(tc, 0) + int(gt.areas[g])
        crowd = (flags[0] if flags else False) if q.crowd == "eomt" and tc[1] == 0 and q.stuff_merge else (
            flags[i] if q.crowd == "eomt" else bool(gt.iscrowd[g]))
        if crowd and q.crowd != "none":
            t_crowd.add(tc)
            crowd_rows.setdefault(cls[c], []).append(tc)
    p_color: dict[int, Color] = {0: (len(cats), 0) if q.void_class else void}
    for j in range(len(pred)):
        c = int(pred.cats[j])
        p_color[j + 1] = (cls[c], 0) if q.stuff_merge and not isthing[c] else (cls[c], j + 1)
    pairs, p_area, t_area = color_table(inter, t_color, p_color)
    if not q.pixel_areas:
        t_area.update({tc: a for tc, a in json_area.items() if tc in t_area})
    return pairs, p_area, t_area, crowd_rows, t_crowd


def attribution(rule: str, sums: list[RuleSums], base: RuleSums, cats: CategoryTable) -> list[dict[str, Any]]:
    """The rows of ``rule``'s attribution from the sums of its states (:func:`states`, in order) and panopticapi's
    (``base``): each quirk's name and the PQ, PQ_th and PQ_st it adds (0-100). A state before the last averages as
    panopticapi (a mean over no class 0.0, as panbench's own numbers), the last is the rule's numbers (NaN where
    they are), so that the rows sum to the rule's numbers minus panopticapi's."""
    keys = ("PQ", "PQ_th", "PQ_st")
    before = rule_summary("panopticapi", base, cats)
    rows = []
    for i, ((name, q), s) in enumerate(zip(states(rule), sums, strict=True)):
        now = rule_summary(rule if i == len(sums) - 1 else "eomt" if q.mean_all else "panopticapi", s, cats)
        rows.append({"quirk": name, **{k: now[k] - before[k] for k in keys}})
        before = now
    return rows
