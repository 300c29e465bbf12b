"""`panbench data coco --from DIR` on small zip files built here: a good pair, an entry with ../,
an entry that is a symbolic link, a truncated zip, a wrong checksum; nothing is ever written outside the root."""

from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from panbench.cli import main
from panbench.data.synth import coco_like_categories, random_image


def _png_bytes(ids: np.ndarray) -> bytes:
    from PIL import Image

    from panbench.data.synth import id2rgb

    buf = io.BytesIO()
    Image.fromarray(id2rgb(ids)).save(buf, "PNG")
    return buf.getvalue()


def _add_link(z: zipfile.ZipFile, name: str, target: str) -> None:
    """A symbolic-link entry as Info-ZIP writes one (``zip --symlinks``): mode S_IFLNK, the target as data."""
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    z.writestr(info, target)


def make_zips(folder: Path, evil: str | None = None, link: str | None = None) -> None:
    """Miniature official zips: val2017.zip and panoptic_annotations_trainval2017.zip (with its inner zips);
    ``link`` adds a symbolic-link entry to val2017.zip ("images") or to the inner panoptic PNG zip ("pngs")."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    cats = coco_like_categories(3, 2)
    images, anns = [], []
    inner = io.BytesIO()
    with zipfile.ZipFile(folder / "val2017.zip", "w") as zv, zipfile.ZipFile(inner, "w") as zi:
        for k in range(3):
            im = random_image(rng, 30, 40, cats)
            name = f"{k + 1:012d}"
            zv.writestr(f"val2017/{name}.jpg", b"\xff\xd8 jpeg bytes")
            zi.writestr(f"panoptic_val2017/{name}.png", _png_bytes(im.ids))
            images.append({"id": k + 1, "file_name": f"{name}.jpg", "height": 30, "width": 40})
            anns.append({"image_id": k + 1, "file_name": f"{name}.png", "segments_info": im.segments_info})
        if evil:
            zv.writestr(evil, b"owned")
        if link == "images":
            _add_link(zv, "val2017/000000000009.jpg", "/etc/passwd")
        if link == "pngs":
            _add_link(zi, "panoptic_val2017/000000000009.png", "../../../../etc/passwd")
    with zipfile.ZipFile(folder / "panoptic_annotations_trainval2017.zip", "w") as za:
        za.writestr("annotations/panoptic_val2017.json",
                    json.dumps({"images": images, "annotations": anns, "categories": cats}))
        za.writestr("annotations/panoptic_val2017.zip", inner.getvalue())
        za.writestr("annotations/panoptic_train2017.json", "{}")
        za.writestr("annotations/panoptic_train2017.zip", b"not extracted")


def test_good_pair_is_extracted_and_rerun_skips(tmp_path, capsys) -> None:
    make_zips(tmp_path / "zips")
    root = tmp_path / "coco"
    assert main(["data", "coco", "--root", str(root), "--from", str(tmp_path / "zips")]) == 0
    assert len(list((root / "val2017").glob("*.jpg"))) == 3
    assert len(list((root / "annotations" / "panoptic_val2017").glob("*.png"))) == 3
    assert (root / "annotations" / "panoptic_val2017.json").is_file()
    assert not (root / "annotations" / "panoptic_train2017.json").exists()
    sums = json.loads((root / ".panbench-checksums.json").read_text())
    assert set(sums) == {"val2017.zip", "panoptic_annotations_trainval2017.zip"}
    (root / "val2017" / "000000000001.jpg").write_bytes(b"marker")  # a re-run must not redo the step
    assert main(["data", "coco", "--root", str(root), "--from", str(tmp_path / "zips")]) == 0
    assert (root / "val2017" / "000000000001.jpg").read_bytes() == b"marker"
    # and the result loads as a dataset
    from panbench.data.datasets import load_dataset

    assert len(load_dataset(root).samples) == 3


@pytest.mark.parametrize("evil", ["val2017/../../escaped.txt", "/tmp/panbench-abs-escape.txt"])
def test_entry_escaping_the_root_is_refused(tmp_path, capsys, evil) -> None:
    make_zips(tmp_path / "zips", evil=evil)
    root = tmp_path / "work" / "coco"
    rc = main(["data", "coco", "--root", str(root), "--from", str(tmp_path / "zips")])
    err = capsys.readouterr().err
    assert rc == 2 and "outside the data root" in err and "\n" not in err.strip()
    assert not (tmp_path / "work" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()
    assert not Path("/tmp/panbench-abs-escape.txt").exists()
    assert not list((root / "val2017").glob("*")) if (root / "val2017").exists() else True


def test_truncated_zip_is_refused(tmp_path, capsys) -> None:
    make_zips(tmp_path / "zips")
    z = tmp_path / "zips" / "val2017.zip"
    z.write_bytes(z.read_bytes()[:-200])
    rc = main(["data", "coco", "--root", str(tmp_path / "coco"), "--from", str(tmp_path / "zips")])
    assert rc == 2 and "truncated" in capsys.readouterr().err


def test_wrong_checksum_is_refused(tmp_path, capsys) -> None:
    make_zips(tmp_path / "zips")
    sums = tmp_path / "sums.json"
    sums.write_text(json.dumps({"val2017.zip": "0" * 64}))
    rc = main(["data", "coco", "--root", str(tmp_path / "coco"), "--from", str(tmp_path / "zips"),
               "--checksums", str(sums)])
    assert rc == 2 and "differs from the expected" in capsys.readouterr().err
    assert not (tmp_path / "coco" / "val2017").exists()


@pytest.mark.parametrize("where", ["images", "pngs"])
def test_entry_that_is_a_link_is_refused(tmp_path, capsys, where) -> None:
    make_zips(tmp_path / "zips", link=where)
    root = tmp_path / "coco"
    rc = main(["data", "coco", "--root", str(root), "--from", str(tmp_path / "zips")])
    err = capsys.readouterr().err
    assert rc == 2 and "is a symbolic link" in err and "000000000009" in err and "\n" not in err.strip()
    folder = root / "val2017" if where == "images" else root / "annotations" / "panoptic_val2017"
    assert not folder.exists() or not list(folder.iterdir())  # nothing of the refused archive is written
    assert not any(p.is_symlink() for p in root.rglob("*"))


def test_offline_download_names_from_dir_not_a_checkpoint_flag(tmp_path, monkeypatch) -> None:
    from panbench.data import coco
    from panbench.errors import PanbenchError

    monkeypatch.setattr(coco, "URLS", {name: f"http://127.0.0.1:9/{name}" for name in coco.URLS})
    with pytest.raises(PanbenchError) as e:
        coco.prepare_coco(tmp_path / "coco", progress=False)
    msg = str(e.value)
    assert "yourself into one folder and pass --from DIR" in msg and "--checkpoint" not in msg
