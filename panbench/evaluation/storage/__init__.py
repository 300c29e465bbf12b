"""What a run writes beside its record: the per-image statistics of the resume cache (:mod:`.cache`) and the
``--save-predictions`` files in the COCO panoptic format (:mod:`.predictions`: the writer, made once per node); and
across runs and commands, the model facts cache (:mod:`.facts`: parameter and FLOPs counts).
Imports :mod:`panbench.evaluation.options` and :mod:`panbench.evaluation.runtime` of the evaluation."""
