"""What a run measures: per-stage seconds, timed and warm-up images, OOM splits and CPU
fallbacks (as detectron2's ``inference_on_dataset``: warm-up batches excluded, CUDA
synchronized before the clocks are read), and the arithmetic the run used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Timings:
    """One process's measurements; :meth:`merge` adds another process's (forked CPU processes,
    torchrun ranks), the one place that says which fields add up and which take the maximum."""

    data_s: float = 0.0
    forward_s: float = 0.0
    postprocess_s: float = 0.0
    fusion_s: float = 0.0  # the fusion head's predict, a part of postprocess_s
    scoring_s: float = 0.0
    wall_s: float = 0.0
    timed_images: int = 0
    warmup_images: int = 0
    oom_splits: int = 0
    cpu_fallback_images: list = field(default_factory=list)
    extra: dict[str, float] = field(default_factory=dict)
    corrupt_s: float = 0.0  # --corruption: seconds spent corrupting images (data-loading side), every image
    corrupt_images: int = 0  # the images those seconds are of
    batches: dict[int, int] = field(default_factory=dict)  # batch size -> forward passes run with that many images
    # a grid's (docs/eval.md, "Grids"): each setting's own post-processing, fusion and scoring seconds, in order
    settings: list[dict[str, float]] = field(default_factory=list)

    #: per-stage seconds and counts that add over processes (wall time takes the maximum)
    SUMMED = ("data_s", "forward_s", "postprocess_s", "fusion_s", "scoring_s", "timed_images", "warmup_images",
              "oom_splits", "corrupt_s", "corrupt_images")

    def merge(self, other: Timings) -> None:
        """Add ``other``'s measurements: :attr:`SUMMED` fields summed, wall time the maximum, the rest joined."""
        for f in self.SUMMED:
            setattr(self, f, getattr(self, f) + getattr(other, f))
        self.wall_s = max(self.wall_s, other.wall_s)
        self.cpu_fallback_images = sorted([*self.cpu_fallback_images, *other.cpu_fallback_images])
        for size, n in other.batches.items():
            self.batches[size] = self.batches.get(size, 0) + n
        if not self.settings:
            self.settings = [dict(d) for d in other.settings]
        elif other.settings:
            self.settings = [{k: a[k] + b[k] for k in a} for a, b in zip(self.settings, other.settings)]

    def of_setting(self, k: int) -> Timings:
        """These timings as a grid's setting ``k`` reads them: the shared forward (and the wall time of every
        setting's work), its own post-processing."""
        from dataclasses import replace

        if not self.settings:
            return self
        own = self.settings[k]
        return replace(self, postprocess_s=own["postprocess_s"], fusion_s=own["fusion_s"], scoring_s=own["scoring_s"],
                       settings=[])

    def as_dict(self) -> dict[str, Any]:
        return {
            "data_s": self.data_s, "forward_s": self.forward_s, "postprocess_s": self.postprocess_s,
            "fusion_s": self.fusion_s, "scoring_s": self.scoring_s, "wall_s": self.wall_s,
            "timed_images": self.timed_images, "warmup_images": self.warmup_images,
            "images_per_s": self.timed_images / self.wall_s if self.wall_s > 0 else 0.0,
            "ms_per_image": 1000 * self.wall_s / max(self.timed_images, 1), "oom_splits": self.oom_splits,
            "cpu_fallback_images": list(self.cpu_fallback_images),
            "batches": {str(k): v for k, v in sorted(self.batches.items())}, **self.extra,
            **({"corrupt_s": self.corrupt_s, "corrupt_images": self.corrupt_images} if self.corrupt_images else {}),
        }


def precision_info(device: str, amp: str | None) -> dict[str, Any]:
    """The arithmetic the run used: the autocast mode, and on a GPU whether TF32 was allowed for fp32 matmuls and
    convolutions (PyTorch allows it for cuDNN's on Ampere and newer: "fp32" alone would overstate it)."""
    import torch

    out: dict[str, Any] = {"autocast": amp or "off", "float32_matmul_precision": torch.get_float32_matmul_precision()}
    if device.startswith("cuda"):
        out["cuda_matmul_allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        out["cudnn_conv_allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
        major, _ = torch.cuda.get_device_capability(torch.device(device))
        tf32_hw = major >= 8  # TF32 tensor cores: Ampere (sm_80) and newer
        out["matmul"] = "tf32" if tf32_hw and out["cuda_matmul_allow_tf32"] else "fp32"
        out["conv"] = "tf32" if tf32_hw and out["cudnn_conv_allow_tf32"] else "fp32"
    else:
        out["matmul"] = out["conv"] = "fp32"
    if amp:
        out["matmul"] = out["conv"] = amp
    return out
