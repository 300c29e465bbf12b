"""One run of a model on a dataset, in floors: a module imports only modules of its floor or below.

1. The run's vocabulary, importing no other evaluation module: :mod:`.options` (``EvalOptions``, built once
   from the command line), :mod:`.timings` (what a run measures, and the arithmetic it uses), :mod:`.context`
   (who ran beside it).
2. :mod:`.runtime`: where it executes: the device, the torchrun ranks, out-of-memory handling and peak memory.
3. :mod:`.storage`: what it writes beside the record: the resume cache, the saved predictions.
4. :mod:`.loading`: config, checked weights, class mapping, test pipeline: one ``LoadedModel``.
5. :mod:`.evaluators`: the evaluator contract and ``RunEvaluators``, the list of a run's evaluators (PQ on the
   library's ``PanopticAccumulator``, mask AP, the semantic confusion, the user's), written through to the resume
   cache; :mod:`.inference`: the images through the model, in one process or in forked CPU processes, under the
   progress bar over every image of the run, into that list.
6. The run: :mod:`.run` (``Run``, the owner of a run's state, and ``evaluate_model``), :mod:`.record_fields`
   (what a record says of its run, and the record of ``panbench score --name``, made as a run's is),
   :mod:`.flops` (GFLOPs per image) and :mod:`.speed` (``panbench speed``).
"""
