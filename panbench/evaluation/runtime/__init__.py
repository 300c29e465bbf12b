"""Where a run executes: the device (:mod:`.device`: choice, seeding, its name in a record), the torchrun ranks
(:mod:`.distributed`: backend, init, the reductions, abort) and out-of-memory handling and peak memory
(:mod:`.memory`).  Imports :mod:`panbench.evaluation.timings` only of the evaluation."""
