"""panbench: how panoptic segmentation models really compare.

The package is layered by what each part may import (docs/architecture.md draws the data flow):

* :mod:`panbench.pq`: panoptic quality itself: COCO-panoptic file reading, per-image matching,
  per-category sums, the streaming evaluator and ``score``.  numpy only (plus its C extension);
  never torch or mmdet.
* :mod:`panbench.analysis`: analyses beyond one PQ from per-image matches: bootstrap intervals,
  PQ by object size, PQ-dagger, the error breakdown, boundary PQ (C extension).  numpy and
  :mod:`panbench.pq`; never torch.
* :mod:`panbench.data`: datasets in the COCO panoptic layout, the COCO download, the synthetic
  demo set.  numpy and :mod:`panbench.pq`.
* :mod:`panbench.models`: everything MMDetection: the model registry, configs, checkpoints,
  model building, post-processing and the fusion-head patches; Hugging Face ``transformers``
  models behind the same interface (``hf.py``).  torch, mmengine, mmdet, transformers.
* :mod:`panbench.evaluation`: one run of a model on a dataset: the inference loop, forked CPU
  processes, torch.distributed, the resume cache.  Uses all of the above.
* :mod:`panbench.reporting`: result records, tables (pandas), plots (matplotlib), visualizations,
  the HTML report, the text tables printed in the terminal.  Reads records; never runs a model,
  except ``viz``, which draws one image.
* :mod:`panbench.cli`: the ``panbench`` command, one module per command.  Imports each layer
  only when its command runs, so ``panbench --help`` and ``panbench score`` never import torch.

Beside them: :mod:`panbench.errors` (the one error type the CLI prints in one line, exit 2) and
:mod:`panbench.downloads` (downloads with progress and resume; standard library only).
"""

from pathlib import Path

__version__ = "0.3.1"

REPO_ROOT = Path(__file__).resolve().parents[1]  # the checkout: configs/, checkpoints/, results/
