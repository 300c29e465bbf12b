"""The models: what a model family gives the evaluation (:mod:`.protocol`, :class:`PanopticModel`) and its
two families, MMDetection (:mod:`.mmdet_family`; configs, model building and weight checks in :mod:`.mm`,
``--cfg-options`` checks in :mod:`.cfg_options`) and Hugging Face ``transformers`` (:mod:`.hf_model`, loaded
by :mod:`.hf` from :mod:`.hf_hub` with the label mapping of :mod:`.hf_labels`, imported only for ``hf:``
models); the model registry (:mod:`.registry`), checkpoints (:mod:`.checkpoints`), the panoptic encoding
(:mod:`.encoding`, a leaf), post-processing (:mod:`.postprocess`), the changes to a fusion head
(:mod:`.fusion`), each architecture's fusion without mmdet's loops (:mod:`.fast_fusion`), mixed precision
around mmcv ops (:mod:`.amp`), the MMDetection reference run (:mod:`.mmdet_reference`).
Imports torch/mmdet only inside the functions that need them, except :mod:`.fast_fusion`,
:mod:`.hf` and :mod:`.hf_model` (torch).  Never imports :mod:`panbench.evaluation`."""
