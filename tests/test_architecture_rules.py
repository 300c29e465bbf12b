"""Rules of the code read from its source: the IoU threshold is written once, as ``MATCH_IOU``; the C
extensions share one id table and one AVX2 switch (``panbench/pq/_common.h``); the PQ formula is written once,
in ``panbench/pq/sums.py`` (``category_pq``)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from panbench.pq.matching import IGNORED_SHARE, MATCH_IOU

PACKAGE = Path(__file__).resolve().parents[1] / "panbench"
C_MATCH = PACKAGE / "pq" / "_match_core.h"  # the match in C (_match.c wraps it, _native.c runs it)


def _names(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return out


def _iou_literal(node: ast.AST) -> bool:
    """A comparison with the literal 0.5 of which one side names an IoU (``iou``, ``ious``, ...)."""
    if not isinstance(node, ast.Compare):
        return False
    operands = [node.left, *node.comparators]
    if not any(isinstance(o, ast.Constant) and o.value == 0.5 for o in operands):
        return False
    return any("iou" in name.lower() for name in _names(node))


def bare_iou_thresholds(source: str) -> list[int]:
    """Lines of ``source`` that compare an IoU with a bare 0.5 instead of ``MATCH_IOU``."""
    return sorted(n.lineno for n in ast.walk(ast.parse(source)) if _iou_literal(n))


def test_no_iou_threshold_is_a_bare_literal() -> None:
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line in bare_iou_thresholds(path.read_text())
    ]
    assert not found, f"compare the IoU with panbench.pq.matching.MATCH_IOU, not 0.5: {found}"


def test_the_rule_catches_a_bare_threshold() -> None:
    assert bare_iou_thresholds("hit = iou > 0.5\nok = iou > MATCH_IOU\nshare = px / area > 0.5\n") == [1]
    assert bare_iou_thresholds("m = 0.5 < pair_ious(a, b)\n") == [1]


def test_the_c_matcher_uses_the_python_thresholds() -> None:
    text = C_MATCH.read_text()
    defined = dict(re.findall(r"#define (PB_MATCH_IOU|PB_IGNORED_SHARE) ([0-9.]+)", text))
    assert float(defined["PB_MATCH_IOU"]) == MATCH_IOU
    assert float(defined["PB_IGNORED_SHARE"]) == IGNORED_SHARE
    for path in sorted(PACKAGE.rglob("*.[ch]")):
        code = re.sub(r"/\*.*?\*/", "", path.read_text(), flags=re.S)
        assert not re.search(r"[<>]=?\s*0\.5\b", code), f"{path.name} compares with a bare 0.5: use PB_MATCH_IOU"


def own_c_copies(text: str) -> list[str]:
    """What a C file defines that ``_common.h`` holds: an id hash table or an AVX2 switch of its own."""
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    rules = {"a hash function": r"\bhash32\s*\(", "an id table": r"\bidmap_(init|get)\s*\(",
             "an AVX2 flag": r"static int [^;]*\bhave_avx2\b", "a CPU probe": r"__builtin_cpu_supports\(\"avx2\"\)",
             "use_avx2": r"PyObject \*py_use_avx2"}
    return [what for what, rule in rules.items() if re.search(rule, code)]  # \b: pb_hash32 is not hash32


def test_the_c_extensions_share_one_id_table_and_one_avx2_switch() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.c")):
        text = path.read_text()
        if "avx2" in text.lower() or "idmap" in text:
            assert '#include "_common.h"' in text, f"{path.name}: include _common.h for the id table and AVX2 switch"
        if own := own_c_copies(text):
            found[path.name] = own
    assert not found, f"defined beside panbench/pq/_common.h: {found}"


def test_the_c_rule_catches_a_copy() -> None:
    assert own_c_copies("static inline uint32_t hash32(uint32_t x) { return x; }") == ["a hash function"]
    assert own_c_copies("static int have_avx2, cpu_avx2;") == ["an AVX2 flag"]
    assert own_c_copies("x = pb_hash32(k); pb_idmap_get(m, k); /* hash32( */") == []


def pq_denominators(source: str) -> list[int]:
    """Lines of ``source`` that write PQ's denominator (``0.5 * fp`` or ``0.5 * fn`` in code, any spacing)."""
    return sorted(n.lineno for n in ast.walk(ast.parse(source)) if isinstance(n, ast.BinOp)
                  and isinstance(n.op, ast.Mult) and any(isinstance(o, ast.Constant) and o.value == 0.5
                                                         for o in (n.left, n.right))
                  and any(isinstance(o, ast.Name) and o.id.lower() in ("fp", "fn") for o in (n.left, n.right)))


def test_the_pq_formula_is_written_once() -> None:
    found = [f"{path.relative_to(PACKAGE.parent)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
             if path != PACKAGE / "pq" / "sums.py" for line in pq_denominators(path.read_text())]
    assert not found, f"use panbench.pq.sums.category_pq / group_average: {found}"
    assert pq_denominators((PACKAGE / "pq" / "sums.py").read_text())  # it is there


def test_the_formula_rule_catches_a_copy() -> None:
    assert pq_denominators("d = tp + 0.5 * fp + 0.5 * fn\nx = 0.5 * area\n") == [1, 1]


# The match carries PQ's columns (ImageMatch.to_stats) and, beside them, per-segment facts that only the
# intersection table of the image can give (docs/architecture.md, "match"); each of those is read by an analysis.
PQ_COLUMNS = {"tp_cats", "tp_ious", "fn_cats", "fp_cats"}


def unread_match_columns(columns: tuple[str, ...], analysis_sources: list[str]) -> list[str]:
    """The match's columns beyond PQ's that no module of ``panbench/analysis`` names."""
    words = set().union(*(_names(ast.parse(s)) | {n.value for n in ast.walk(ast.parse(s))
                                                  if isinstance(n, ast.Constant) and isinstance(n.value, str)}
                          for s in analysis_sources))
    return [c for c in columns if c not in PQ_COLUMNS and c not in words]


def test_every_column_of_the_match_beyond_pq_is_read_by_an_analysis() -> None:
    from panbench.pq.matching import MATCH_FIELDS
    sources = [p.read_text() for p in sorted((PACKAGE / "analysis").rglob("*.py"))]
    assert PQ_COLUMNS < set(MATCH_FIELDS)
    assert not unread_match_columns(MATCH_FIELDS, sources), "drop the column from ImageMatch and _match.c"


def test_the_column_rule_catches_a_column_nobody_reads() -> None:
    from panbench.pq.matching import MATCH_FIELDS
    sources = [p.read_text() for p in sorted((PACKAGE / "analysis").rglob("*.py"))]
    assert unread_match_columns((*MATCH_FIELDS, "fp_unused"), sources) == ["fp_unused"]
