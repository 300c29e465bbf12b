"""The model facts cache (panbench.evaluation.flops): where it is, what it keys, that an entry that does not
read back is counted again, that PANBENCH_NO_FACTS_CACHE bypasses it; eval's FLOPs pass (run_gflops) served from it
only for the same model, images and settings; ``ls``'s counts (random_facts) of a model with seeded random weights."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from panbench.evaluation import flops as facts
from panbench.evaluation import flops as flops_mod
from panbench.resources import user_cache_dir


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PANBENCH_NO_FACTS_CACHE", raising=False)
    return tmp_path / "cache" / "model-facts"


def test_the_cache_folder_is_panbench_cache_else_xdg_else_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PANBENCH_CACHE", str(tmp_path / "own"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "own"
    monkeypatch.delenv("PANBENCH_CACHE")
    assert user_cache_dir() == tmp_path / "xdg" / "panbench"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_cache_dir() == tmp_path / "home" / ".cache" / "panbench"


def test_facts_read_back_only_under_their_own_parts(cache) -> None:
    parts = {"fact": "x", "config": "abc", "versions": {"torch": "2"}}
    assert facts.read_facts(parts) is None
    facts.write_facts(parts, {"params": 7})
    got = facts.read_facts(parts)
    assert got is not None and got["params"] == 7 and got["counted"]
    assert facts.read_facts({**parts, "config": "abd"}) is None
    assert facts.read_facts({**parts, "versions": {"torch": "3"}}) is None
    assert [p.name for p in cache.iterdir()] == [facts.facts_path(parts).name]  # no temporary file left


@pytest.mark.parametrize("damage", ["", "{", "[1, 2]", '{"facts": 3}', "other parts"])
def test_an_entry_that_does_not_read_back_is_ignored(cache, damage) -> None:
    parts = {"fact": "x", "config": "abc"}
    facts.write_facts(parts, {"params": 7})
    path = facts.facts_path(parts)
    if damage == "other parts":  # a file under this name holding another key's entry
        entry = json.loads(path.read_text())
        entry["key_parts"]["config"] = "zzz"
        damage = json.dumps(entry)
    path.write_text(damage)
    assert facts.read_facts(parts) is None


def test_panbench_no_facts_cache_neither_reads_nor_writes(cache, monkeypatch) -> None:
    parts = {"fact": "x"}
    facts.write_facts(parts, {"params": 7})
    monkeypatch.setenv("PANBENCH_NO_FACTS_CACHE", "1")
    assert facts.read_facts(parts) is None
    facts.write_facts({"fact": "y"}, {"params": 8})
    assert len(list(cache.iterdir())) == 1


def test_an_unwritable_cache_is_said_once_and_the_command_goes_on(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("PANBENCH_CACHE", str(tmp_path / "file"))
    monkeypatch.setattr(facts, "_WARNED", [])
    facts.write_facts({"fact": "x"}, {"params": 1})
    facts.write_facts({"fact": "y"}, {"params": 2})
    err = capsys.readouterr().err
    assert err.count("cannot keep model facts there") == 1 and "PANBENCH_CACHE" in err


def _run_objects(tmp_path: Path):
    images = []
    for k in range(2):
        p = tmp_path / f"{k}.jpg"
        p.write_bytes(b"image %d" % k)
        images.append(SimpleNamespace(image_id=k, image_path=p))
    lm = SimpleNamespace(cfg_hash="c" * 16, weights=SimpleNamespace(sha256="w" * 64))
    return lm, SimpleNamespace(samples=images)


def test_evals_flops_pass_is_served_only_for_the_same_model_images_and_settings(cache, tmp_path,
                                                                                 monkeypatch) -> None:
    counts = []

    def count(lm, dataset, n, device):
        counts.append(n)
        return {"gflops": 1.5 * n, "images": n, "per_image_gflops": [1.5] * n, "input_hw": [[8, 8]] * n,
                "seconds": 0.25}

    monkeypatch.setattr(flops_mod, "dataset_gflops", count)
    lm, ds = _run_objects(tmp_path)
    settings = {"postprocess": "default", "fusion": "panbench", "ap": True}
    first = flops_mod.run_gflops(lm, ds, 1, "cpu", settings, ("torch",))
    second = flops_mod.run_gflops(lm, ds, 1, "cpu", settings, ("torch",))
    assert counts == [1] and first is not None and second is not None
    assert first["from_cache"] is None and second["from_cache"]  # when it was counted
    assert {k: v for k, v in second.items() if k != "from_cache"} == {k: v for k, v in first.items()
                                                                      if k != "from_cache"}
    flops_mod.run_gflops(lm, ds, 2, "cpu", settings, ("torch",))  # another image
    flops_mod.run_gflops(lm, ds, 1, "cuda:0", settings, ("torch",))  # another device type
    flops_mod.run_gflops(lm, ds, 1, "cpu", {**settings, "postprocess": "maskwise"}, ("torch",))
    other_weights = SimpleNamespace(cfg_hash=lm.cfg_hash, weights=SimpleNamespace(sha256="v" * 64))
    flops_mod.run_gflops(other_weights, ds, 1, "cpu", settings, ("torch",))
    assert counts == [1, 2, 1, 1, 1]
    ds.samples[0].image_path.write_bytes(b"other content")  # the same file name, another image
    flops_mod.run_gflops(lm, ds, 1, "cpu", settings, ("torch",))
    unknown = SimpleNamespace(cfg_hash=lm.cfg_hash, weights=SimpleNamespace(sha256=None))  # no digest: not cached
    flops_mod.run_gflops(unknown, ds, 1, "cpu", settings, ("torch",))
    flops_mod.run_gflops(unknown, ds, 1, "cpu", settings, ("torch",))
    assert counts == [1, 2, 1, 1, 1, 1, 1, 1]


def test_random_weights_are_the_same_every_time(cache) -> None:
    import torch

    from panbench.models.families import open_model
    from panbench.models.registry import resolve

    handle = open_model(resolve("demo-maskformer", dataset="demo")[0])
    torch.manual_seed(5)
    first_draw = torch.rand(1)
    torch.manual_seed(5)
    a = handle.random_model("cpu").module.state_dict()
    assert torch.equal(torch.rand(1), first_draw)  # the caller's random state is left as it was
    torch.manual_seed(6)
    b = handle.random_model("cpu").module.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_demo_configs_files_are_itself_and_its_local_bases(tmp_path) -> None:
    from panbench.models.mmdet import config_files
    from panbench.models.registry import ModelSpec, resolve

    demo = resolve("demo-mask2former", dataset="demo")[0]
    files = config_files(demo)
    assert files is not None and files[0] == demo.config.resolve()
    assert [f.name for f in files[1:]] == ["demo_dataset.py"]
    zoo = resolve("mask2former_r50")[0]
    assert config_files(zoo) == [zoo.config.resolve()]  # mmdet:: bases: fixed by mmdet's version
    odd = tmp_path / "odd.py"
    for text in ("_base_ = ['./' + 'x.py']\n", "_base_ = 3\n", "_base_ = [3]\n",
                 "with read_base():\n    from .x import *\n"):
        odd.write_text(text)
        assert config_files(ModelSpec(name="odd", config=odd)) is None  # unknown without mmengine: not cached
    assert config_files(ModelSpec(name="none", config=tmp_path / "none.py")) is None
