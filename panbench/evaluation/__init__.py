"""One run of a model on a dataset: :mod:`.run` (config to result record), :mod:`.loop` (the
inference loop feeding the streaming evaluator; forked CPU processes; torch.distributed),
:mod:`.cache` (per-image statistics on disk, for resuming)."""
