"""A model family is a subclass of ``Family`` registered by its name in ``FAMILIES``: one lacking a method the
evaluation calls cannot be made, and the handle it opens for a model is the one a run checks, describes and loads the
model through, so that an mmdet config is read once per run, a grid's settings included."""

from __future__ import annotations

from pathlib import Path

import pytest

from panbench.cli import main
from panbench.models.families import FAMILIES, by_prefix, family, open_model
from panbench.models.protocol import Family, ModelHandle
from panbench.models.spec import ModelSpec


class PlainHandle(ModelHandle):
    def check_options(self, categories, cfg_options, postprocess):
        return None

    def config_text(self, cfg_options, ap):
        return "plain", "0" * 16

    def load_model(self, categories, checkpoint, trust, device, cfg_options, ap, any_rank, dataset):
        raise AssertionError("not loaded here")

    def random_model(self, device):
        return None


class Plain(Family):
    name = "plain"
    prefix = "plain"

    def open(self, spec):
        return PlainHandle(spec)

    def weights_state(self, spec):
        return "none"

    def doctor_checks(self, probes):
        return []


def test_each_family_is_an_instance_of_its_family_subclass_registered_by_name() -> None:
    assert {name: type(f).__name__ for name, f in FAMILIES.items()} == {"mmdet": "MMDetFamily",
                                                                        "transformers": "TransformersFamily"}
    assert all(isinstance(f, Family) and f.name == name and family(name) is f for name, f in FAMILIES.items())
    assert by_prefix("hf:org/model") == (FAMILIES["transformers"], "org/model")


def test_a_family_registered_as_a_class_opens_its_models(monkeypatch) -> None:
    monkeypatch.setitem(FAMILIES, "plain", Plain())
    spec = ModelSpec("p", Path("p.py"), framework="plain")
    handle = open_model(spec)
    assert type(handle) is PlainHandle and handle.spec is spec
    assert handle.grid_kind() is None  # the defaults a family may keep: no grid, not counted, nothing listed
    assert family("plain").config_files(spec) is None and family("plain").registered_models() == []
    assert by_prefix("plain:x") == (FAMILIES["plain"], "x")


#: what the evaluation calls of a family and of the handle it opens, which each subclass writes
ABSTRACT = {Family: ("open", "weights_state", "doctor_checks"),
            ModelHandle: ("check_options", "config_text", "load_model", "random_model")}


def test_what_evaluation_calls_is_abstract() -> None:
    assert {base: set(base.__abstractmethods__) for base in ABSTRACT} == {b: set(m) for b, m in ABSTRACT.items()}


@pytest.mark.parametrize("base, concrete, missing", [(b, c, m) for b, c in ((Family, Plain), (ModelHandle, PlainHandle))
                                                     for m in ABSTRACT[b]])
def test_a_family_subclass_missing_an_abstract_method_cannot_be_instantiated(base, concrete, missing) -> None:
    lacking = type(f"Without_{missing}", (base,), {k: v for k, v in vars(concrete).items() if k != missing})
    with pytest.raises(TypeError, match=missing):
        lacking(ModelSpec("p", Path("p.py"))) if base is ModelHandle else lacking()


@pytest.mark.slow
@pytest.mark.parametrize("grid", [[], ["--grid", "object_mask_thr=0.7,0.8"]], ids=["plain", "grid"])
def test_an_eval_reads_the_mmdet_config_once(grid, demo_root, tmp_path, monkeypatch) -> None:
    """The options' check, the grid's kind, the load and each setting's config text all read the run's handle."""
    from mmengine.config import Config

    reads = []
    fromfile = Config.fromfile

    def counted(filename, *args, **kwargs):
        reads.append(str(filename))
        return fromfile(filename, *args, **kwargs)

    monkeypatch.setattr(Config, "fromfile", staticmethod(counted))
    rc = main(["eval", "--model", "demo-mask2former", "--dataset", "demo", "--data-root", str(demo_root), "--results",
               str(tmp_path / "results"), "--limit", "1", "--workers", "0", "--cpu-procs", "1", "--no-progress",
               "--flops-images", "0", *grid])
    assert rc == 0
    assert [Path(r).name for r in reads] == ["mask2former.py"], reads
    if grid:
        assert len(list((tmp_path / "results" / "runs").glob("*.json"))) == 2
