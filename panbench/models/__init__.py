"""Everything MMDetection: the model registry (:mod:`.registry`), checkpoints (:mod:`.checkpoints`),
configs, model building and weight checks (:mod:`.mm`), post-processing and the fusion-head
patches (:mod:`.postprocess`).  Imports torch/mmdet only inside the functions that need them,
except :mod:`.postprocess` (torch)."""
