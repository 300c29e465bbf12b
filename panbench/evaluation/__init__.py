"""One run of a model on a dataset, in floors: a module imports only modules of its floor or below (each module:
docs/architecture.md, "The packages and what each may import").

1. The run's vocabulary and its progress bar, importing no other evaluation module: :mod:`.options`, :mod:`.timings`,
   :mod:`.context`, :mod:`.progress`.
2. :mod:`.runtime`: where it executes: the device, the torchrun ranks, out of memory, peak memory.
3. :mod:`.storage`: what it writes beside the record: the resume cache, the saved predictions.
4. :mod:`.loading`: config, checked weights, class mapping, test pipeline: one ``LoadedModel``.
5. :mod:`.inference`: the images through the model into the run's evaluators (``panbench.evaluators.Evaluators``,
   the package below, with the resume cache as their observer).
6. The run: :mod:`.run`, :mod:`.record_fields`, :mod:`.flops` and :mod:`.speed`.
"""
