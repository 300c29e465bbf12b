"""The images of a run through the model: one process's loop (:mod:`.loop`: DataLoader workers, forward,
a scoring thread) and forked CPU processes (:mod:`.cpu_procs`), each feeding the run's
:class:`~panbench.evaluation.evaluators.RunEvaluators`."""
