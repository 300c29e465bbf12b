"""``eval --save-predictions DIR``: a second run saving the same predictions into DIR while the first one runs
is refused in one line before any image runs; the lock goes with the run."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from panbench.errors import PanbenchError
from panbench.evaluation.storage import STATE, PredictionWriter, prediction_writer, results_name

MODEL = "demo-mask2former"
NAME = results_name("panoptic_val2017", MODEL)


def _hold(folder: Path, name: str = NAME):
    """The lock as another run holds it (its own open file: a lock of another process, to flock)."""
    path = folder / STATE / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+")
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    f.write(f"{socket.gethostname()} 4242\n")
    f.flush()
    return f


def _writer(folder: Path, model: str = MODEL) -> PredictionWriter:
    return PredictionWriter(folder, "panoptic_val2017", model, "k" * 16, [], [])


def test_a_second_run_into_the_folder_is_refused_in_one_line(tmp_path) -> None:
    out = tmp_path / "preds"
    other = _hold(out)
    spec = SimpleNamespace(name=MODEL)
    cats = SimpleNamespace(ids=[1], names=["a"], isthing=[True])
    dataset = SimpleNamespace(ann_file=Path("panoptic_val2017.json"), categories=cats, samples=[])
    opts = SimpleNamespace(save_predictions=out, resume=True)
    with pytest.raises(PanbenchError) as e:
        prediction_writer(spec, dataset, opts, "k" * 16)  # type: ignore[arg-type]
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{out}: another panbench run (process 4242 on ")
    assert NAME in msg and "another --save-predictions folder" in msg and "nothing was run" in msg
    assert not (out / NAME).exists()  # refused before the folders were made
    other.close()  # the other run ends: its lock goes with it
    writer = prediction_writer(spec, dataset, opts, "k" * 16)  # type: ignore[arg-type]
    assert writer is not None and writer.claim()  # held by this process: taken again
    assert (out / STATE / f"{NAME}.lock").read_text() == f"{socket.gethostname()} {os.getpid()}\n"
    writer.clean_up()  # the JSON written: the lock is let go of and nothing is left in DIR/.panbench
    assert not (out / STATE).exists()
    _hold(out).close()


def test_other_models_share_the_folder(tmp_path) -> None:
    out = tmp_path / "preds"
    other = _hold(out)
    mine = _writer(out, "demo-panoptic-fpn")
    assert mine.claim() and not _writer(out).claim()
    mine.release()
    other.close()


def test_eval_into_a_folder_another_run_saves_into_stops_in_one_line_before_a_model_loads(demo_root, tmp_path,
                                                                                          monkeypatch, capsys) -> None:
    import panbench.evaluation.run as run_mod
    from panbench.cli import main

    out, res = tmp_path / "preds", tmp_path / "res"
    other = _hold(out)
    args = ["eval", "--model", MODEL, "--dataset", "demo", "--data-root", str(demo_root), "--results", str(res),
            "--limit", "2", "--workers", "0", "--no-progress", "--save-predictions", str(out)]
    with monkeypatch.context() as m:
        m.setattr(run_mod, "load_model", lambda *a, **k: pytest.fail("a model loaded before the refusal"))
        assert main([*args, "--cpu-procs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and f"{out}: another panbench run" in err
    assert not (res / "runs").exists() and not (out / NAME).exists()
    other.close()
    assert main([*args, "--cpu-procs", "2"]) == 0  # the forked processes do not refuse their parent's lock
    assert (out / f"{NAME}.json").is_file() and not (out / STATE).exists()
