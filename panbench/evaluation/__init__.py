"""One run of a model on a dataset.

* :mod:`.run`: the pipeline of one run, config to result record (``evaluate_model``).
* :mod:`.options`: ``EvalOptions``, built once from the command line.
* :mod:`.loading`: config, checked weights, class mapping, test pipeline: one ``LoadedModel``.
* :mod:`.loop`: the single-process inference loop feeding the streaming evaluator.
* :mod:`.cpu_procs`: inference in CPU processes forked after the model is loaded.
* :mod:`.distributed`: torch.distributed under torchrun: backend, init, all-reduce, abort.
* :mod:`.memory`: out-of-memory handling (batch split, CPU fallback) and peak memory.
* :mod:`.timings`: what a run measures, and the arithmetic it used.
* :mod:`.progress`: the progress bar over every image of the run.
* :mod:`.device`: device choice, seeding, the device's name in a record.
* :mod:`.cache`: per-image statistics on disk, for resuming.
"""
