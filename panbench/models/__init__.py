"""The models: what a model family gives the evaluation (:mod:`.protocol`) and the families, one subpackage each
(:mod:`.mmdet`, :mod:`.hf`); the registry, checkpoints, the panoptic encoding (a leaf), post-processing on query masks,
mixed precision.  torch and mmdet only inside the functions that need them, except in the families' modules that run
a model.  Never imports :mod:`panbench.evaluation`."""
