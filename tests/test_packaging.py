"""panbench as a package: ``python -m build`` makes an sdist and a wheel that pass ``twine check``; the wheel,
installed with its extras into a fresh venv outside the clone, lists and runs the zoo and demo models from its
package data (the demo PQs as pinned in docs/demo.md).

How this differs from a user's fresh install: the fresh venv gets panbench from the wheel, but its
dependencies (torch, mmdet, ...) from this clone's .venv (its site-packages is on the fresh venv's path through a
plain path entry, so the clone's editable install and its ``.pth`` files are not active), and pip resolves the
``[mmdet,report]`` extras against them with ``--no-index`` instead of downloading: the test checks the wheel's
files, metadata and extras, not PyPI's packages.

The tests on the fresh venv are marked ``system`` (``make test-system``); the build's checks and the missing-extra
messages are in ``make test``.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from panbench.package import REPO_ROOT

pytestmark = pytest.mark.slow

PINNED_PQ = {"demo-mask2former": 78.084, "demo-maskformer": 72.293, "demo-panoptic-fpn": 83.552}  # docs/demo.md


def _run(cmd: list[str], cwd: Path, timeout: int = 600, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stdout[-3000:]}" \
                                f"\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel built from it (``python -m build``: the wheel is built from the unpacked sdist)."""
    if importlib.util.find_spec("build") is None:
        pytest.fail("the `build` package is missing: rerun make setup (scripts/setup.sh step 6 installs it)")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO_ROOT)], cwd=out)
    return out


@pytest.fixture(scope="module")
def fresh(dist, tmp_path_factory) -> dict[str, Path]:
    """A venv outside the clone with the wheel installed (``[mmdet,report]``); the clone's .venv supplies the
    dependencies (module docstring)."""
    root = tmp_path_factory.mktemp("fresh")
    venv = root / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=root).strip())
    here = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz-clone-venv-dependencies.pth").write_text("".join(f"{p}\n" for p in sorted(here)))
    wheel = next(dist.glob("panbench-*.whl"))
    pip = [str(py), "-m", "pip", "install", "-q", "--no-index", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")} | {"PIP_CONFIG_FILE": os.devnull}
    _run(pip + ["--force-reinstall", "--no-deps", str(wheel)], cwd=root, env=env)
    _run(pip + [f"{wheel}[mmdet,report]"], cwd=root, env=env)  # the extras' requirements, resolved offline
    work = root / "work"
    work.mkdir()
    return {"py": py, "bin": venv / "bin", "site": site, "work": work}


@pytest.mark.system
def test_build_makes_an_sdist_and_a_wheel_that_pass_twine_check(dist) -> None:
    files = sorted(p.name for p in dist.iterdir())
    assert any(f.endswith(".tar.gz") for f in files) and any(f.endswith(".whl") for f in files), files
    if importlib.util.find_spec("twine") is None:
        pytest.fail("twine is missing: rerun make setup (scripts/setup.sh step 6 installs it)")
    out = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())], cwd=dist)
    assert out.count("PASSED") == 2, out


@pytest.mark.system
def test_the_sdist_carries_the_c_sources_and_the_wheel_their_builds(dist) -> None:
    """The extensions are optional (a missing header would build a wheel without them, silently): the sdist
    holds every .c and .h of the package and the wheel every extension built from them."""
    import tarfile
    import zipfile

    with tarfile.open(next(dist.glob("panbench-*.tar.gz"))) as t:
        sdist = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
    sources = {str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "panbench").rglob("*.[ch]")}
    assert sources and sources <= sdist, sorted(sources - sdist)
    assert "examples/evaluators/image_count.py" in sdist  # docs/api.md's evaluator of your own
    with zipfile.ZipFile(next(dist.glob("panbench-*.whl"))) as w:
        built = {n.split(".")[0].replace("/", ".") for n in w.namelist() if n.endswith(".so")}
    assert {"panbench.pq._native", "panbench.pq._match", "panbench.pq._boundary", "panbench.ops._cpu"} <= built


@pytest.mark.system
def test_the_wheel_outside_the_clone_lists_runs_and_scores_the_demo_models_as_pinned(fresh) -> None:
    py, work, panbench = fresh["py"], fresh["work"], str(fresh["bin"] / "panbench")
    where = _run([str(py), "-c", "import panbench, panbench.resources as r; print(panbench.__file__); "
                  "print(r.config_dir())"], cwd=work).split()
    assert all(w.startswith(str(fresh["site"])) for w in where), where  # the wheel's files, not the clone's
    listed = _run([panbench, "ls"], cwd=work)
    for name in ("mask2former_r50", "panoptic-fpn_r50_1x", "maskformer_r50", *PINNED_PQ):
        assert name in listed, listed
    doctor = _run([panbench, "doctor"], cwd=work)
    assert "[ok  ] configs      13 zoo and 3 demo configs" in doctor, doctor
    _run([panbench, "data", "demo"], cwd=work)
    _run([panbench, "eval", "--model", "all", "--dataset", "demo"], cwd=work, timeout=900)
    with open(work / "results" / "runs.csv", newline="") as f:
        pq = {row["model"]: round(float(row["PQ"]), 3) for row in csv.DictReader(f)}
    assert pq == PINNED_PQ


@pytest.mark.system
def test_the_wheel_outside_the_clone_gives_the_python_api(fresh, coco_sample, tmp_path) -> None:
    """``from panbench import pq_compute, PanopticQuality`` in the installed wheel, on COCO's own PNGs with
    perturbed predictions: the wheel's files, and the clone's numbers."""
    from helpers import write_perturbed_sample

    from panbench import pq_compute

    ann = coco_sample / "annotations"
    pred_json, pred_dir = write_perturbed_sample(ann, tmp_path, 11)
    code = f"""
import json, panbench
from panbench import pq_compute, PanopticQuality
from panbench.pq.kernels import rgb2id
from panbench.pq.png import decode_png
gt = json.load(open({str(ann / "panoptic_val2017.json")!r}))
pred = json.load(open({str(pred_json)!r}))
m = PanopticQuality(gt["categories"])
for g, p in zip(gt["annotations"], pred["annotations"]):
    m.update(rgb2id(decode_png(panbench.pathlib_Path({str(pred_dir)!r}) / p["file_name"], "p")), p["segments_info"],
             rgb2id(decode_png(panbench.pathlib_Path({str(ann / "panoptic_val2017")!r}) / g["file_name"], "g")),
             g["segments_info"], g["image_id"])
print(json.dumps([panbench.__file__, pq_compute({str(ann / "panoptic_val2017.json")!r}, {str(pred_json)!r}),
                  m.compute().to_panopticapi()]))
""".replace("panbench.pathlib_Path", "__import__('pathlib').Path")
    where, api, streamed = json.loads(_run([str(fresh["py"]), "-c", code], cwd=fresh["work"]).splitlines()[-1])
    assert where.startswith(str(fresh["site"])), where  # the wheel's panbench, not the clone's
    ours = json.loads(json.dumps(pq_compute(ann / "panoptic_val2017.json", pred_json)))
    assert api == streamed == ours and ours["All"]["pq"] < 0.99


@pytest.mark.system
def test_the_wheel_carries_the_mmcv_ext_hook_and_mmdet_works_there_without_panbench(fresh) -> None:
    assert (fresh["site"] / "panbench-mmcv-ext.pth").is_file()
    code = ("import sys; from mmdet.utils import register_all_modules; register_all_modules(); "
            "import mmdet.models, mmcv.ops; print(sys.modules['mmcv._ext'].__name__)")
    assert _run([str(fresh["py"]), "-W", "ignore", "-c", code], cwd=fresh["work"]).split() == ["panbench.ops.ext"]


def test_eval_without_torch_names_the_extra_in_one_line_exit_2(tmp_path) -> None:
    code = ("import sys; sys.modules['torch'] = None; from panbench.cli import main; "
            "sys.exit(main(['eval', '--model', 'panoptic-fpn', '--dataset', 'demo', '--limit', '1']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip().splitlines() == [
        "panbench: error: this command needs torch, which is not installed; install panbench's 'mmdet' extra: "
        "pip install \"panbench[mmdet]\" (or in a clone: pip install -e \".[mmdet]\"; docs/setup.md)"]


# the pip name of an import name where the two differ
PIP_NAMES = {"mmcv": "mmcv-lite", "skimage": "scikit-image"}


def test_every_missing_package_hint_names_the_extra_or_the_command_that_installs_it() -> None:
    import re

    import tomllib

    from panbench.models.families import FAMILIES, extras
    from panbench.ops.pairing import NEEDS_TORCHVISION, install_command
    from panbench.resources import EXTRAS, missing_extra_message

    optional = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    hints = {**EXTRAS, **extras()}
    assert {name for f in FAMILIES.values() for name in f.packages} <= set(hints)  # every family package has one
    for module, extra in hints.items():
        assert extra in optional, (module, extra)
        pip = PIP_NAMES.get(module, module)
        assert any(re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0] == pip for req in optional[extra]), (module, extra)
        # torchvision (and timm): the build that loads beside the installed torch, one command (ops/pairing.py)
        want = install_command(module) if module in NEEDS_TORCHVISION else f'pip install "panbench[{extra}]"'
        assert want in (missing_extra_message(module, extras()) or ""), module


def test_the_c_extensions_are_compiled_side_by_side_one_per_core() -> None:
    """setup.py's build_ext builds the extensions in parallel (one job per core the process may use) unless told
    otherwise with --parallel."""
    code = """
import os, sys, setuptools
captured = {}
setuptools.setup = lambda **kw: captured.update(kw)
sys.argv = ["setup.py"]
exec(compile(open("setup.py").read(), "setup.py", "exec"), {"__file__": os.path.abspath("setup.py")})
from setuptools.dist import Distribution
cmd = captured["cmdclass"]["build_ext"](Distribution({"ext_modules": captured["ext_modules"]}))
cmd.initialize_options(); cmd.finalize_options(); print(cmd.parallel)
told = captured["cmdclass"]["build_ext"](Distribution({"ext_modules": captured["ext_modules"]}))
told.initialize_options(); told.parallel = 1; told.finalize_options(); print(told.parallel)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [str(len(os.sched_getaffinity(0))), "1"], out
