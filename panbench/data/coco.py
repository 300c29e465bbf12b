"""``panbench data coco``: COCO-2017 panoptic val (about 1.6 GB of zips), downloads resumed and every archive checked
before extraction (CRC-32, a pinned sha256, entry names), steps done skipped on a re-run (docs/data.md)."""

from __future__ import annotations

import io
import json
import shutil
import stat
import sys
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from panbench.downloads import download, sha256_file
from panbench.errors import InputError

URLS = {"val2017.zip": "http://images.cocodataset.org/zips/val2017.zip",
        "panoptic_annotations_trainval2017.zip":
            "http://images.cocodataset.org/annotations/panoptic_annotations_trainval2017.zip"}


def check_members(zf: zipfile.ZipFile, archive: Path) -> None:
    """Refuse entries that would land outside the extraction root, and links."""
    for info in zf.infolist():
        name = info.filename
        p = PurePosixPath(name.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or (len(name) > 1 and name[1] == ":"):
            raise InputError(f"{archive}: entry '{name}' would be written outside the data root; "
                             "the archive is not an official COCO file: delete it and download again")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InputError(f"{archive}: entry '{name}' is a symbolic link; refusing the archive")


def open_checked(path: Path, expected_sha256: str | None) -> zipfile.ZipFile:
    """Open a zip after checking its sha256 (when pinned), CRCs and entry names."""
    if expected_sha256:
        digest = sha256_file(path)
        if digest != expected_sha256:
            raise InputError(f"{path}: sha256 {digest[:16]}... differs from the expected {expected_sha256[:16]}...; "
                             "the file is corrupt or not the official one: delete it and download again")
    try:
        zf = zipfile.ZipFile(path)
        bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(f"{path}: not a complete zip archive ({e}); the download is truncated: "
                         "delete it and run again") from e
    if bad is not None:
        raise InputError(f"{path}: entry '{bad}' fails its CRC check; the file is corrupt: "
                         "delete it and download again")
    check_members(zf, path)
    return zf


def _extract(zf: zipfile.ZipFile, members: list[zipfile.ZipInfo], dest: Path, strip: int) -> None:
    """Extract ``members`` under ``dest``, dropping the first ``strip`` path components."""
    root = dest.resolve()
    for info in members:
        parts = PurePosixPath(info.filename).parts[strip:]
        if not parts or info.is_dir():
            continue
        target = (root / Path(*parts)).resolve()
        if root not in target.parents:  # defence in depth; check_members already refused such names
            raise InputError(f"entry '{info.filename}' escapes {root}")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        with zf.open(info) as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        tmp.replace(target)


def prepare_coco(root: Path, from_dir: Path | None = None, checksums: dict[str, str] | None = None,
                 progress: bool = True) -> Path:
    """Download (or take from ``from_dir``), check and extract COCO panoptic val under ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    zips = _coco_zips(root, from_dir, progress)
    done = root / ".panbench-done"
    state = set(done.read_text().split()) if done.exists() else set()
    used = {}
    for step, (name, extract) in {"images": ("val2017.zip", _extract_images), "annotations": (
            "panoptic_annotations_trainval2017.zip", _extract_annotations)}.items():
        if step not in state:
            extract(root, zips[name], (checksums or {}).get(name))
            used[name] = sha256_file(zips[name])
            state.add(step)
            done.write_text("\n".join(sorted(state)))
    if used:
        ck = root / ".panbench-checksums.json"
        old = json.loads(ck.read_text()) if ck.exists() else {}
        ck.write_text(json.dumps({**old, **used}, indent=1))
    verify_tree(root)
    return root


def _coco_zips(root: Path, from_dir: Path | None, progress: bool) -> dict[str, Path]:
    """Each official zip of :data:`URLS`: from ``from_dir`` when given, else downloaded to ``root/downloads``."""
    zips = {}
    for name, url in URLS.items():
        if from_dir is not None:
            p = Path(from_dir) / name
            if not p.is_file():
                raise InputError(f"{p}: not found; --from needs {', '.join(URLS)} (the official COCO zips)")
        else:
            p = root / "downloads" / name
            if not p.exists():
                download(url, p, progress=progress, instead=f"download {', '.join(URLS)} yourself into one folder and "
                         "pass --from DIR")
        zips[name] = p
    return zips


def _extract_images(root: Path, zip_path: Path, checksum: str | None) -> None:
    """The images of val2017.zip into ``root/val2017``."""
    with open_checked(zip_path, checksum) as zf:
        members = [i for i in zf.infolist() if i.filename.startswith("val2017/") and not i.is_dir()]
        if not members:
            raise InputError(f"{zip_path}: no val2017/ entries; pass the official val2017.zip")
        _extract(zf, members, root / "val2017", strip=1)


def _extract_annotations(root: Path, zip_path: Path, checksum: str | None) -> None:
    """panoptic_val2017.json and the PNGs of its inner panoptic_val2017.zip into ``root/annotations``."""
    with open_checked(zip_path, checksum) as zf:
        names = {PurePosixPath(i.filename).name: i for i in zf.infolist()}
        if "panoptic_val2017.json" not in names or "panoptic_val2017.zip" not in names:
            raise InputError(f"{zip_path}: lacks panoptic_val2017.json or panoptic_val2017.zip; "
                             "pass the official panoptic_annotations_trainval2017.zip")
        _extract(zf, [names["panoptic_val2017.json"]], root / "annotations",
                 strip=len(PurePosixPath(names["panoptic_val2017.json"].filename).parts) - 1)
        inner_bytes = zf.read(names["panoptic_val2017.zip"])
    inner = zipfile.ZipFile(io.BytesIO(inner_bytes))
    if inner.testzip() is not None:
        raise InputError(f"{zip_path}: its panoptic_val2017.zip fails the CRC check; download again")
    check_members(inner, zip_path)
    pngs = [i for i in inner.infolist() if i.filename.endswith(".png")]
    _extract(inner, pngs, root / "annotations" / "panoptic_val2017",
             strip=len(PurePosixPath(pngs[0].filename).parts) - 1 if pngs else 0)


def verify_tree(root: Path) -> None:
    """Every annotated image and PNG is present (a stuff rule warning: :func:`_note_stuff_rule`)."""
    ann = root / "annotations" / "panoptic_val2017.json"
    try:
        data = json.loads(ann.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{ann}: unreadable after extraction ({e}); delete {root} and run again") from e
    missing = [im["file_name"] for im in data.get("images", []) if not (root / "val2017" / im["file_name"]).is_file()]
    missing += [a["file_name"] for a in data.get("annotations", [])
                if not (root / "annotations" / "panoptic_val2017" / a["file_name"]).is_file()]
    if missing:
        raise InputError(f"{root}: {len(missing)} files listed in {ann.name} are missing (e.g. {missing[0]}); "
                         "delete the folder and run again")
    _note_stuff_rule(ann, data)


def _note_stuff_rule(ann: Path, data: dict[str, Any]) -> None:
    """A warning, not a refusal, where a stuff category has two or more segments in one image."""
    from panbench.pq.stuff_rule import repeated_stuff, stuff_rule_message

    anns, cats = data.get("annotations"), data.get("categories")
    if not isinstance(anns, list) or not isinstance(cats, list):
        return
    if note := stuff_rule_message(ann, repeated_stuff(anns, cats), cats, "each further segment is a false negative "
                                  "when scored; the official panoptic_val2017.json keeps one: check that the archive "
                                  "is the official one"):
        print(f"panbench: warning: {note}", file=sys.stderr)


def data_command(root: Path, args: Any) -> str:
    """``panbench data coco``: download (or take from ``--from``), check and extract; the line to print."""
    from panbench.pq.coco_format import read_json

    sums = read_json(args.checksums, "checksums file") if args.checksums else None
    root = prepare_coco(root, Path(args.from_dir) if args.from_dir else None, sums, progress=not args.no_progress)
    return f"COCO panoptic val ready at {root}"
