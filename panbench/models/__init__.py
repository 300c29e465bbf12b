"""Everything MMDetection: the model registry (:mod:`.registry`), checkpoints (:mod:`.checkpoints`),
configs, model building and weight checks (:mod:`.mm`), post-processing (:mod:`.postprocess`),
every patch of the panoptic fusion head and mmdet's panoptic encoding (:mod:`.fusion`), mixed
precision around mmcv ops (:mod:`.amp`), the MMDetection reference run (:mod:`.mmdet_reference`).
Imports torch/mmdet only inside the functions that need them, except :mod:`.postprocess` (torch).
Never imports :mod:`panbench.evaluation`."""
