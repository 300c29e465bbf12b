"""The MMDetection family's lines of ``panbench doctor``: mmcv, its compiled ops on each device (compiled mmcv or
panbench's), the AMP modes each architecture runs, pkg_resources (mmengine imports it), mmengine and mmdet; run
with the doctor's probes (:class:`panbench.cli.doctor.Probes`)."""

from __future__ import annotations

from typing import Any


def checks(probes: Any) -> list[Any]:
    """The family's checks, in the order the doctor prints them."""
    out = [mmcv := probes.version("mmcv")]
    if mmcv.ok and probes.torch_ok:
        devices = ("cpu", "cuda") if probes.cuda else ("cpu",)
        out += [probes.mmcv_ops(device) for device in devices]
        if not probes.skip_amp:
            for device in devices:
                out += probes.amp(device)
    return [*out, probes.pkg_resources(), probes.version("mmengine"), probes.version("mmdet")]
