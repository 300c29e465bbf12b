"""The MMDetection family: a detector built from a config under ``configs/`` (:mod:`.mm`, ``--cfg-options``
checks in :mod:`.cfg_options`) run as a :class:`panbench.models.protocol.PanopticModel` (:mod:`.family`), the
changes panbench makes to its panoptic fusion head (:mod:`.fusion`, :mod:`.fast_fusion`) and MMDetection's own
test loop as a reference (:mod:`.reference`).  The family's entry (:class:`panbench.models.protocol.FamilyEntry`)
is :mod:`.loading`.  Imports torch and mmdet inside the functions that need them, except :mod:`.fast_fusion`
(torch)."""

from panbench.models.mmdet.loading import check_options, load_model, random_model, weights_state

__all__ = ["check_options", "load_model", "random_model", "weights_state"]
