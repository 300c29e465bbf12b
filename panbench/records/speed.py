"""The speed record of ``panbench speed`` (``results/speed/*.json``): FPS measured by a stated protocol
(MMDetection's ``tools/analysis_tools/benchmark.py``: warm-up iterations left out, then batch-1 forward passes
timed with device synchronisation), with the input size, device, precision, compile state and the machine's
load beside it, and the published FPS of the model where its device is the one measured on."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEED_SCHEMA = 1
PROTOCOL = "mmdet-benchmark"  # the protocol's name in records and tables
PROTOCOL_TEXT = ("MMDetection's tools/analysis_tools/benchmark.py: batch 1, the warm-up iterations left out, then "
                 "the model's forward (mmdet's test_step: preprocessing on the device, network, panoptic fusion) "
                 "timed with device synchronisation on inputs already loaded and resized")


@dataclass(frozen=True, kw_only=True)
class SpeedRecord:
    """One ``panbench speed`` measurement of one model."""

    schema: int = SPEED_SCHEMA
    model: str
    framework: str = "mmdet"  # mmdet or transformers
    architecture: str | None = None
    dataset: str = ""  # the images the inputs came from (their size is the model's test size of them)
    date: str = ""  # UTC, ISO 8601
    # name (PROTOCOL), text, warmup, iters (timed), batch, images (distinct inputs cycled), clock
    protocol: dict[str, Any] = field(default_factory=dict)
    input_size: str | None = None  # "HxW" of the network's input (after the test resize, before padding), most common
    input_sizes: dict[str, int] = field(default_factory=dict)  # "HxW" -> timed forward iterations at that size
    device: str = ""  # GPU name, or "cpu (<cpu>, N threads)"
    amp: str = "fp32"  # fp32, bf16, fp16 (autocast)
    precision: dict[str, Any] = field(default_factory=dict)  # panbench.evaluation.timings.precision_info
    compile: dict[str, Any] = field(default_factory=dict)  # on, modules, backend, mode
    forward: dict[str, Any] = field(default_factory=dict)  # fps, ms_mean, ms_median, ms_min, network/fusion ms
    end_to_end: dict[str, Any] | None = None  # fps, ms_mean, ms_median: load + preprocess + forward + segments
    published_fps: float | None = None  # the registry's published FPS of the model
    published_fps_device: str | None = None  # the device it was measured on
    published_fps_source: str | None = None
    pq_check: dict[str, Any] | None = None  # --check-pq: PQ eager and compiled on the same images
    speed_context: dict[str, Any] | None = None  # panbench.evaluation.context.speed_context
    provenance: dict[str, Any] = field(default_factory=dict)  # versions (torch ...), git commit, command
    record: str | None = None  # path of the JSON below the results folder

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SpeedRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in obj.items() if k in names})

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def fps(self) -> float | None:
        """Forward FPS by the protocol."""
        return self.forward.get("fps")

    @property
    def published_matches(self) -> bool:
        """Whether the published FPS was measured on this record's device (:func:`same_device`)."""
        return self.published_fps is not None and same_device(self.device, self.published_fps_device)

    def setup(self) -> str:
        """Device, precision, compile state and input size in a few words (the table's ``FPS_setup``)."""
        device = self.device.split(" (")[0]
        state = "compiled" if self.compile.get("on") else "eager"
        return ", ".join(x for x in (device, self.amp, state, self.input_size) if x)


def same_device(device: str, published: str | None) -> bool:
    """Whether ``device`` (a GPU's full name, e.g. ``NVIDIA H100 80GB HBM3``) is the ``published`` one (e.g.
    ``NVIDIA H100``): every word of the published name but the vendor's, as a word of the device's name."""
    if not published or not device:
        return False
    words = set(re.findall(r"[a-z0-9]+", device.lower()))
    want = [w for w in re.findall(r"[a-z0-9]+", published.lower()) if w not in ("nvidia", "amd", "intel")]
    return bool(want) and all(w in words for w in want)


def write_speed_record(results_dir: Path, rec: SpeedRecord) -> SpeedRecord:
    """Write ``rec`` (its name claimed atomically, never over another record: ``write_new``); returns it with
    ``record`` set."""
    from panbench.records.io import record_path, write_new

    def named(path: Path) -> SpeedRecord:
        return dataclasses.replace(rec, record=str(path.relative_to(results_dir)))

    return named(write_new(record_path(results_dir, rec.model, rec.dataset, rec.date, "speed"),
                           lambda path: (json.dumps(named(path).to_json(), indent=1, default=str) + "\n").encode()))


def load_speed_records(results_dir: Path) -> list[SpeedRecord]:
    """Every speed record under ``results_dir/speed``, oldest first (a file that is not one is left out, named in one
    line: :func:`panbench.records.io.note_skipped`)."""
    from panbench.records.io import note_skipped

    out = []
    for p in sorted((Path(results_dir) / "speed").glob("*.json")):
        try:
            raw = json.loads(p.read_text())
            if not (isinstance(raw, dict) and "model" in raw and "forward" in raw):
                raise ValueError("no 'model' and 'forward'")
            out.append(SpeedRecord.from_json(raw))
        except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as e:
            note_skipped(f"{p}: not a panbench speed record ({e}); move it out of {p.parent} (it holds the records "
                         "of `panbench speed` only)")
    return sorted(out, key=lambda r: r.date)


def latest_speed(records: list[SpeedRecord]) -> dict[tuple[str, str], SpeedRecord]:
    """The newest speed record of each (model, dataset)."""
    return {(r.model, r.dataset): r for r in sorted(records, key=lambda r: r.date)}
