"""Running panbench on a Slurm cluster: the ``--launcher slurm`` environment (:mod:`.launcher`)."""
