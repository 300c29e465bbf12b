"""The installed stack: `panbench doctor`, mmcv's ops (compiled or panbench's), the zoo configs bundled in mmdet."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from panbench.cli.doctor import mmcv_ops_check
from panbench.models.mmdet import mm
from panbench.ops import active


@pytest.fixture(scope="module")
def doctors(tmp_path_factory) -> dict[str, Any]:
    """`panbench doctor` as its own process twice, the two started together: "works" with --data-root an empty
    folder (also given as "empty"); "broken" with a package named mmdet that fails to import first on the path."""
    empty, shadow = tmp_path_factory.mktemp("data"), tmp_path_factory.mktemp("shadow")
    (shadow / "mmdet").mkdir()
    (shadow / "mmdet" / "__init__.py").write_text("raise ImportError('broken on purpose')\n")
    doctor = [sys.executable, "-m", "panbench", "doctor"]
    runs = {"works": ([*doctor, "--data-root", str(empty)], None),
            "broken": (doctor, {"PYTHONPATH": str(shadow), "PATH": "/usr/bin:/bin"})}
    procs = {k: subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for k, (argv, env) in runs.items()}
    out: dict[str, Any] = {}
    for k, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        out[k] = subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)
    out["empty"] = empty
    return out


def test_doctor_runs_and_reports_every_part(doctors) -> None:
    r = doctors["works"]
    assert r.returncode == 0, r.stdout + r.stderr
    for part in ("python", "numpy", "torch", "mmcv", "mmcv ops/cpu", "mmengine", "mmdet", "panopticapi", "data",
                 "pq-fast-path", "c-extensions", "versions/mmdet", "versions/transformers"):
        assert f" {part}" in r.stdout, part
    # a missing dataset is a notice, not a failure; the folder named is the one --data-root gave
    assert f"no COCO-layout panoptic val at {doctors['empty']}" in r.stdout


def test_doctor_fails_when_a_required_part_is_broken(doctors) -> None:
    # a package named mmdet that fails to import, first on the path: doctor reports it and exits 1
    r = doctors["broken"]
    assert r.returncode == 1
    assert "mmdet" in r.stdout and "fix:" in r.stdout


def test_every_c_extension_setup_py_builds_imports_and_is_the_list_doctor_checks() -> None:
    """The extensions are required: each one setup.py builds imports, and panbench's list of them
    (doctor's ``c-extensions`` line) is setup.py's."""
    import importlib
    import re

    from panbench.cli.doctor import extensions_check
    from panbench.package import REPO_ROOT
    from panbench.pq.extensions import EXTENSIONS

    built = re.findall(r'Extension\("([\w.]+)"', (REPO_ROOT / "setup.py").read_text())
    assert sorted(built) == sorted(EXTENSIONS) and len(built) == 9
    for module in EXTENSIONS:
        importlib.import_module(module)
    check = extensions_check()
    assert check.ok and check.required, check.detail


def test_an_extension_not_built_is_one_line_naming_it_and_how_to_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from panbench.cli import doctor
    from panbench.errors import PanbenchError
    from panbench.pq.extensions import load_extension

    with pytest.raises(PanbenchError, match=r"^panbench's C extension panbench\.pq\._absent is not built in .*make "
                                            r"setup.*apt-get install gcc python3-dev") as e:
        load_extension("panbench.pq._absent")
    assert "\n" not in str(e.value)
    monkeypatch.setattr(doctor, "EXTENSIONS", (*doctor.EXTENSIONS, "panbench.pq._absent"))
    check = doctor.extensions_check()
    assert not check.ok and check.detail == "not built: panbench.pq._absent" and "make setup" in check.fix


def test_an_install_without_a_c_compiler_stops_with_one_line_saying_what_to_install(tmp_path: Path) -> None:
    """setup.py's build_ext with a compiler that fails (CC=/bin/false): the build stops, its last line says to
    install a C compiler and the Python headers."""
    from panbench.package import REPO_ROOT

    env = {**os.environ, "CC": "/bin/false"}
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-temp", str(tmp_path / "t"),
                        "--build-lib", str(tmp_path / "l")], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: panbench compiles its C extensions at install: install a C compiler and the "
                           "Python headers (Debian/Ubuntu: apt-get install gcc python3-dev"), r.stderr[-2000:]


def test_mmcv_ops_run_on_cpu_with_the_installed_backend() -> None:
    check = mmcv_ops_check("cpu")
    assert check.ok, check.detail
    assert {"mmcv": "compiled mmcv", "panbench": "panbench's ops"}[active()] in check.detail


def test_mmcv_ops_directly() -> None:
    import torch

    from panbench.ops import install

    install()
    from mmcv.ops import MultiScaleDeformableAttention, RoIAlign, nms

    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 9, 10], [50, 50, 60, 60]])
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2]
    feat = torch.ones(1, 2, 8, 8)
    out = RoIAlign((2, 2), 1.0, 2)(feat, torch.tensor([[0.0, 0, 0, 4, 4]]))
    assert torch.allclose(out, torch.ones(1, 2, 2, 2))
    assert MultiScaleDeformableAttention(embed_dims=16, num_heads=2, num_levels=1, num_points=1)


@pytest.mark.parametrize("zoo_config", [
    "panoptic_fpn/panoptic-fpn_r50_fpn_1x_coco.py",
    "maskformer/maskformer_r50_ms-16xb1-75e_coco.py",
    "mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py",
])
def test_zoo_r50_configs_build_on_cpu_from_the_mmdet_package(zoo_config, tmp_path) -> None:
    import torch

    path = tmp_path / "cfg.py"
    path.write_text(f"_base_ = 'mmdet::{zoo_config}'\n")  # resolved inside the installed mmdet wheel
    cfg = mm.load_config(path)
    model = mm.build_model(cfg, path)
    assert mm.count_parameters(model) > 20_000_000
    assert next(model.parameters()).device == torch.device("cpu")


def test_doctor_fix_outside_the_setup_venv_is_pip_with_the_mmdet_extra(monkeypatch) -> None:
    from panbench.cli import doctor
    from panbench.package import REPO_ROOT

    assert doctor.in_setup_venv() == (Path(sys.prefix).resolve() == (REPO_ROOT / ".venv").resolve())
    monkeypatch.setattr(doctor, "in_setup_venv", lambda: False)  # as after `pip install .[mmdet]` on Colab
    check = doctor._version("panbench_no_such_module")
    assert not check.ok and check.fix == f"{sys.executable} -m pip install -e '{REPO_ROOT}[mmdet]'"
    assert doctor.fix_setuptools().startswith(f"{sys.executable} -m pip install 'setuptools")
    monkeypatch.setattr(doctor, "in_setup_venv", lambda: True)
    assert doctor._version("panbench_no_such_module").fix == "run `make setup` from the repository root"


def test_the_stack_is_at_the_tested_versions() -> None:
    """The tests run on the versions each family's row names (Family.tested), which the set-up pins."""
    import importlib

    from panbench.models.families import tested_versions

    got = {name: importlib.import_module(name).__version__ for name in tested_versions()}
    assert got == tested_versions()


def test_doctor_lists_each_familys_versions_and_notes_another_transformers(monkeypatch) -> None:
    import importlib.metadata as md

    from panbench.cli.doctor import family_checks
    from panbench.models.families import FAMILIES

    tested = dict(FAMILIES["transformers"].tested)["transformers"]
    # the installed distributions' files, read once for the test's three calls (each reads them per package)
    monkeypatch.setattr(md, "packages_distributions", functools.cache(md.packages_distributions))
    lines = {c.name: c for c in family_checks("pip", set())}
    assert all(c.ok for c in lines.values()) and set(lines) == {f"versions/{f}" for f in FAMILIES}
    assert lines["versions/mmdet"].detail.startswith("torch ")
    assert "mmcv 2.1.0, mmengine 0.10.7, mmdet 3.3.0: the tested versions" in lines["versions/mmdet"].detail
    real = md.version
    for colab, how in (("5.15.0", "older"), ("99.0.0", "newer")):
        monkeypatch.setattr(md, "version", lambda d, v=colab: v if d == "transformers" else real(d))
        (line,) = [c.line() for c in family_checks("pip", set()) if c.name == "versions/transformers"]
        assert line.startswith("[note] versions/transformers torch ") and "\n" not in line
        assert f"transformers {colab} ({how} than the tested {tested}): hf: models were checked" in line
        assert line.endswith(f"-> fix: pip install 'transformers=={tested}'")


def _bytecode_block() -> str:
    """The lines of step 7 that compile bytecode: from the ``if`` that guards them to its ``fi``."""
    from panbench.package import REPO_ROOT

    script = (REPO_ROOT / "scripts" / "setup.sh").read_text().splitlines()
    step7 = next(i for i, line in enumerate(script) if line.startswith("step 7 "))
    line = next(i for i, line in enumerate(script) if line.endswith("# compile-bytecode"))
    start = max(i for i in range(step7, line) if script[i].startswith("if "))
    end = next(i for i in range(line, len(script)) if script[i] == "fi")
    assert "compile_imports.py" in script[line]
    return "\n".join(script[start:end + 1])


@pytest.mark.parametrize("dont_write", ["1", None])
def test_the_setup_compiles_bytecode_only_where_python_does_not_write_it(tmp_path: Path, dont_write: str | None
                                                                         ) -> None:
    """Step 7 runs scripts/compile_imports.py only under PYTHONDONTWRITEBYTECODE (elsewhere Python writes each
    module's bytecode on its first import). The step's lines run here with a stand-in Python that notes its
    arguments."""
    import os

    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'calls'}\n")
    fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"PY": str(fake), "ROOT": str(tmp_path)}, **({"PYTHONDONTWRITEBYTECODE": dont_write} if dont_write
                                                              else {}))
    r = subprocess.run(["bash", "-c", _bytecode_block()], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "calls").read_text() if (tmp_path / "calls").exists() else ""
    assert (f"{tmp_path}/scripts/compile_imports.py" in calls) == bool(dont_write), calls
    assert ("PYTHONDONTWRITEBYTECODE is set" in r.stdout) == bool(dont_write)


def test_compile_imports_writes_the_bytecode_of_imported_modules_under_dont_write(tmp_path: Path,
                                                                                    monkeypatch) -> None:
    """scripts/compile_imports.py compiles the files of the modules in sys.modules, and writes their .pyc even
    where Python itself writes none (sys.dont_write_bytecode, as under PYTHONDONTWRITEBYTECODE)."""
    import importlib
    import importlib.util

    from panbench.package import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    (tmp_path / "standin_mod.py").write_text("X = 1\n")
    compile_imports = importlib.import_module("compile_imports")
    importlib.import_module("standin_mod")
    try:
        src = str(tmp_path / "standin_mod.py")
        assert src in compile_imports.sources()
        assert not Path(importlib.util.cache_from_source(src)).exists()  # the import wrote none
        assert compile_imports._compile([src]) == 1
        assert Path(importlib.util.cache_from_source(src)).is_file()
    finally:
        sys.modules.pop("standin_mod", None)


def test_compile_imports_with_an_earlier_list_compiles_its_files_without_importing(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    """With ``--list`` of an earlier set-up of the same inputs, scripts/compile_imports.py compiles the files it lists
    (relative to the venv or the clone, or absolute) and panbench's own modules, and imports nothing; without the
    list it imports, then writes the list."""
    import importlib
    import importlib.util

    from panbench.package import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    compile_imports = importlib.import_module("compile_imports")
    outside = tmp_path / "outside_mod.py"
    outside.write_text("X = 1\n")
    listed = tmp_path / "cache" / "list.txt"
    in_venv = Path(sys.prefix) / "bin" / "python"
    compile_imports.write_list([str(outside), str(REPO_ROOT / "panbench" / "errors.py"), str(in_venv)], listed)
    assert listed.read_text().splitlines() == [f"abs:{outside}", "repo:panbench/errors.py", "venv:bin/python"]
    monkeypatch.setattr(compile_imports, "import_what_commands_import", lambda: pytest.fail("imported"))
    compiled: list[str] = []
    monkeypatch.setattr(compile_imports, "ProcessPoolExecutor", _InProcess)
    monkeypatch.setattr(compile_imports, "_compile", lambda files: compiled.extend(files) or len(files))
    assert compile_imports.main(["--list", str(listed)]) == 0
    assert str(outside) in compiled and str(REPO_ROOT / "panbench" / "pq" / "score.py") in compiled
    missing = tmp_path / "new" / "list.txt"
    monkeypatch.setattr(compile_imports, "import_what_commands_import", lambda: [])
    monkeypatch.setattr(compile_imports, "sources", lambda: [str(outside)])
    assert compile_imports.main(["--list", str(missing)]) == 0
    assert missing.read_text() == f"abs:{outside}\n"


class _InProcess:
    """ProcessPoolExecutor's use in compile_imports, run in this process."""

    def __init__(self, jobs: int) -> None:
        pass

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def map(self, fn, chunks):  # noqa: ANN001, ANN201
        return [fn(c) for c in chunks]
