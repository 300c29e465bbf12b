"""Every wait of the commands a user waits on says what it does as it starts (panbench/announce.py): read from the
code, each call or import listed in :data:`WAITS` (each takes seconds on the 2-core machine, measured by
tests/cli/test_waits_system.py) comes after its own ``announce(...)`` in its function, with no other listed wait
between the two, or inside a loop over ``steps(...)``; and the helper's lines themselves."""

from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest

from panbench import announce
from panbench.package import REPO_ROOT

#: (module under panbench/, function) -> the waits in it, as the start of the call's or import's source text
WAITS: dict[tuple[str, str], tuple[str, ...]] = {
    ("cli/doctor.py", "collect"): ("_version('torch'", "f.doctor_checks(", "family_checks("),
    ("cli/doctor.py", "mmcv_ops_check"): ("install()", "nms("),
    ("cli/doctor.py", "amp_support"): ("mm.init_mmdet(", "open_model(spec).random_model("),
    ("cli/doctor.py", "_modes"): ("model.test_step(",),
    ("cli/doctor.py", "data_check"): ("load_dataset(",),
    ("cli/speed.py", "run"): ("import_torch(", "load_dataset("),
    ("evaluation/speed.py", "measure"): ("Run(", "compile_model("),
    ("evaluation/speed.py", "time_forward"): ("timer(",),
    ("evaluation/speed.py", "time_end_to_end"): ("timer(",),
    ("data/demo.py", "make_split"): ("random_image(",),
    ("data/demo.py", "data_command"): ("datasets.load_dataset(",),
    ("cli/viz.py", "run"): ("from panbench.evaluation.loading import", "load_dataset(", "load_model(", "predict(",
                            "draw_overlay("),
    ("cli/report.py", "run"): ("from panbench.reporting.report import",),
    ("reporting/report.py", "write_report"): ("load_records(",),
    ("reporting/report.py", "_page"): ("_dataset_section(", "_robustness("),
    ("cli/plot.py", "run"): ("from panbench.reporting.plots import", "load_records("),
    ("reporting/plots.py", "make_plots"): ("fn(records",),
}

#: the commands whose waits are listed, and the module of each that runs them
COMMANDS = {"doctor": "cli/doctor.py", "speed": "cli/speed.py", "data demo": "data/demo.py", "viz": "cli/viz.py",
            "report": "cli/report.py", "plot": "cli/plot.py"}


def _function(module: str, name: str) -> ast.FunctionDef:
    tree = ast.parse((REPO_ROOT / "panbench" / module).read_text())
    return next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == name)


def _is_announcement(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("announce", "steps")


def unannounced(fn: ast.FunctionDef, waits: tuple[str, ...]) -> tuple[list[str], set[str]]:
    """The waits of ``fn`` that no announcement starts (their source lines), and the ``waits`` found."""
    parents = {child: node for node in ast.walk(fn) for child in ast.iter_child_nodes(node)}

    def statement(node: ast.AST) -> ast.AST:
        while not isinstance(node, ast.stmt):
            node = parents[node]
        return node

    def in_steps_loop(node: ast.AST) -> bool:
        while node is not fn:
            node, child = parents[node], node
            if isinstance(node, ast.For) and child is not node.iter and _is_announcement(node.iter):
                return True
        return False

    events: list[tuple[int, str, ast.AST]] = []
    for node in ast.walk(fn):
        if _is_announcement(node):
            events.append((statement(node).lineno, "announce", node))
        elif isinstance(node, ast.Call | ast.Import | ast.ImportFrom):
            text = ast.unparse(node)
            if any(text.startswith(w) for w in waits):
                events.append((statement(node).lineno, text, node))
    found, bad, armed, last = set(), [], False, -1
    for line, what, node in sorted(events, key=lambda e: e[0]):
        if what == "announce":
            armed = True
            continue
        found |= {w for w in waits if what.startswith(w)}
        if in_steps_loop(node) or line == last:
            continue
        if not armed:
            bad.append(f"line {line}: {what[:60]}")
        armed, last = False, line
    return bad, found


@pytest.mark.parametrize(("module", "name"), list(WAITS))
def test_each_wait_of_the_commands_is_announced_as_it_starts(module: str, name: str) -> None:
    bad, found = unannounced(_function(module, name), WAITS[module, name])
    assert set(WAITS[module, name]) == found, f"{module}:{name} no longer has {set(WAITS[module, name]) - found}"
    assert bad == [], f"{module}:{name}: a wait without its announce(...) just before it: {bad}"


def test_the_check_finds_a_wait_without_its_announcement() -> None:
    fn = ast.parse("def run():\n    announce('a')\n    load_dataset(x)\n    load_model(y)\n"
                   "    for s in steps('b', xs):\n        load_model(s)\n").body[0]
    assert isinstance(fn, ast.FunctionDef)
    bad, found = unannounced(fn, ("load_dataset(", "load_model("))
    assert bad == ["line 4: load_model(y)"] and found == {"load_dataset(", "load_model("}


def test_every_listed_command_has_its_waits_listed() -> None:
    assert set(COMMANDS.values()) <= {module for module, _ in WAITS}


@pytest.fixture
def stderr(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    announce.enable(True)
    yield capsys
    announce.enable(True)


def test_a_phase_is_one_line_on_stderr_and_none_when_turned_off(stderr: pytest.CaptureFixture[str]) -> None:
    announce.announce("reading the records")
    announce.enable(False)
    announce.announce("drawing")
    assert list(announce.steps("images", [1, 2])) == [1, 2]
    assert stderr.readouterr().err == "panbench: reading the records...\n"


def test_steps_count_the_items_and_end_with_the_last(stderr: pytest.CaptureFixture[str]) -> None:
    assert list(announce.steps("images", range(3))) == [0, 1, 2]
    err = stderr.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "panbench: images (3)..." and lines[-1] == "panbench: images 3/3"
    assert all(line.startswith("panbench: images ") for line in lines) and "\r" not in err



def test_a_command_s_no_progress_ends_with_it(stderr: pytest.CaptureFixture[str]) -> None:
    """``main([... "--no-progress"])`` turns the phase lines off for its command only: the caller's process (a
    notebook, a test, an API call after it) announces again."""
    from panbench.cli import main

    assert main(["eval", "--model", "no-such-model", "--dataset", "demo", "--no-progress"]) == 2
    stderr.readouterr()
    announce.announce("after the command")
    assert stderr.readouterr().err == "panbench: after the command...\n"
