"""``panbench ls --params``: progress on stderr, the counts kept in the model facts cache so that a second call
counts nothing, a damaged entry counted again; what a ``-`` in the params and GFLOPs columns means."""

from __future__ import annotations

import pytest

from panbench.cli import main


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PANBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("PANBENCH_NO_FACTS_CACHE", raising=False)
    return tmp_path / "cache" / "model-facts"


def _cells(out: str, model: str) -> tuple[str, str]:
    """The params and GFLOPs cells of ``model``'s row in ``ls``'s table."""
    lines = out.splitlines()
    head = lines[0]
    row = next(line for line in lines if line.split()[0] == model)
    i, j, k = head.index("params"), head.index("GFLOPs"), head.index("weights")
    return row[i:j].strip(), row[j:k].strip()


def _refuse_to_count(monkeypatch) -> None:
    """Building or counting any model fails the test."""
    from panbench.evaluation import flops
    from panbench.models.mmdet import handle

    def refuse(*a, **k):
        raise AssertionError("counted again")

    monkeypatch.setattr(flops, "random_gflops", refuse)
    monkeypatch.setattr(flops, "count_parameters", refuse)
    monkeypatch.setattr(handle.MMDetHandle, "random_model", refuse)


@pytest.mark.slow
def test_a_second_ls_params_counts_nothing_and_prints_the_same_table(cache, monkeypatch, capsys) -> None:
    assert main(["ls", "--only-dataset", "demo", "--params"]) == 0
    out, err = capsys.readouterr()
    assert len(list(cache.glob("*.json"))) == 3
    for name in ("demo-mask2former", "demo-maskformer", "demo-panoptic-fpn"):
        assert f"{name}: counting ..." in err and f"{name}: counted in " in err  # progress: stderr only
        assert "counting" not in out and name in out
    assert "ls: 3 model(s) counted in" in err and "0 from the model facts cache" in err
    assert _cells(out, "demo-mask2former") == ("1.0M", "0.2")  # GFLOPs at 640x480 (156x208 after the resize)

    _refuse_to_count(monkeypatch)
    assert main(["ls", "--only-dataset", "demo", "--params"]) == 0
    out2, err2 = capsys.readouterr()
    assert out2 == out and "counting" not in err2 and "0 model(s) counted" in err2 and "3 from the" in err2
    assert main(["ls", "--only-dataset", "demo"]) == 0  # the parameter counts without --params: the same entries
    assert "1.0M" in capsys.readouterr().out


def test_a_damaged_entry_is_counted_again(cache, monkeypatch, capsys) -> None:
    assert main(["ls", "--only-dataset", "demo"]) == 0
    out = capsys.readouterr().out
    entries = sorted(cache.glob("*.json"))
    assert len(entries) == 3
    entries[0].write_text(entries[0].read_text()[:40])  # a truncated file
    assert main(["ls", "--only-dataset", "demo"]) == 0
    assert capsys.readouterr().out == out
    assert all(e.read_text().endswith("}") for e in entries)  # written whole again
    _refuse_to_count(monkeypatch)
    assert main(["ls", "--only-dataset", "demo"]) == 0
    assert capsys.readouterr().out == out


def test_panbench_no_facts_cache_counts_again_and_keeps_nothing(cache, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PANBENCH_NO_FACTS_CACHE", "1")
    assert main(["ls", "--only-dataset", "demo"]) == 0
    assert "1.0M" in capsys.readouterr().out and not cache.exists()


def test_ls_says_what_a_dash_in_params_and_gflops_means(cache, capsys) -> None:
    assert main(["ls", "--only-dataset", "coco"]) == 0
    out = capsys.readouterr().out
    hf = [line.split()[0] for line in out.splitlines() if line.startswith("hf-")]
    assert hf and all(_cells(out, name) == ("-", "-") for name in hf)
    assert ("params/GFLOPs -: a transformers model is built from its hub download, which ls does not make; "
            "`panbench eval --model NAME` downloads it and records both") in out
    assert "GFLOPs: counted by `panbench ls --params`" in out
