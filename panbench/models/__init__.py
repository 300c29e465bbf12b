"""The models: what a model family gives the evaluation (:mod:`.protocol`, :class:`PanopticModel`) and the families, one
subpackage each: MMDetection (:mod:`.mmdet`) and Hugging Face ``transformers`` (:mod:`.hf`, imported only for ``hf:``
models); the model registry (:mod:`.registry`), checkpoints (:mod:`.checkpoints`), the panoptic encoding
(:mod:`.encoding`, a leaf), post-processing on query masks (:mod:`.postprocess`), mixed precision (:mod:`.amp`).
Imports torch/mmdet only inside the functions that need them, except :mod:`.postprocess` and the families' modules that
run a model (torch).  Never imports :mod:`panbench.evaluation`."""
