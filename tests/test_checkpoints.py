"""Checkpoint safety: sha256 prefix, truncated files, pickled extras, wrong architecture."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest
import torch

from panbench import checkpoints
from panbench.errors import PanbenchError


class NotATensor:  # a pickled extra that weights_only loading must refuse
    def __init__(self) -> None:
        self.x = 1


def _save(obj, folder: Path, stem: str) -> Path:
    tmp = folder / "t.pth"
    torch.save(obj, tmp)
    d = hashlib.sha256(tmp.read_bytes()).hexdigest()
    out = folder / f"{stem}-{d[:8]}.pth"
    tmp.rename(out)
    return out


def test_good_checkpoint_loads_with_meta_and_numpy(tmp_path) -> None:
    import numpy as np

    p = _save({"meta": {"dataset_meta": {"classes": ("a", "b")}, "arr": np.arange(3)},
               "state_dict": {"w": torch.ones(2)}}, tmp_path, "m")
    assert checkpoints.verify(p, checkpoints.expected_prefix(p.name)) == hashlib.sha256(p.read_bytes()).hexdigest()
    state, meta = checkpoints.load_checkpoint(p)
    assert torch.equal(state["w"], torch.ones(2)) and meta["dataset_meta"]["classes"] == ("a", "b")


def test_sha256_mismatch_is_refused(tmp_path) -> None:
    p = _save({"state_dict": {"w": torch.ones(2)}}, tmp_path, "m")
    wrong = p.with_name("m-00000000.pth")
    p.rename(wrong)
    with pytest.raises(PanbenchError, match="does not match the expected 00000000.*re-download"):
        checkpoints.verify(wrong, checkpoints.expected_prefix(wrong.name))


def test_truncated_file_is_refused(tmp_path) -> None:
    p = tmp_path / "t.pth"
    torch.save({"state_dict": {"w": torch.ones(1000)}}, p)
    p.write_bytes(p.read_bytes()[:500])
    with pytest.raises(PanbenchError, match="truncated or corrupt"):
        checkpoints.load_checkpoint(p)


def test_pickled_extras_need_explicit_trust(tmp_path) -> None:
    p = tmp_path / "t.pth"
    torch.save({"meta": {"extra": NotATensor()}, "state_dict": {"w": torch.ones(1)}}, p, pickle_module=pickle)
    with pytest.raises(PanbenchError, match="--trust-checkpoint"):
        checkpoints.load_checkpoint(p)
    state, _ = checkpoints.load_checkpoint(p, trust=True)
    assert "w" in state
