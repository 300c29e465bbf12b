"""How runs are shown, from their result records (:mod:`panbench.records`): comparison tables (:mod:`.tables`,
pandas; their columns' kinds, FPS and analysis columns in :mod:`.columns`), the verdict (in :mod:`.tables`), plots
(:mod:`.plots`, matplotlib, with the figure helpers), robustness tables and plots
(:mod:`.robustness`), panoptic overlays (:mod:`.viz`), the self-contained HTML page (:mod:`.report`) and the
plain-text tables printed in the terminal (:mod:`.text`).

Layering, imports pointing down only: :mod:`.labels` (how a run is named) and :mod:`.figure_files` (how and
where figures are written: format, resolution, the manifest of a plots folder) and :mod:`.figure_style` (the
figures' width, style and layout helpers) are the leaves; :mod:`.placing` (where the texts inside a figure go)
sits on :mod:`.figure_style`; :mod:`.pairing` (the paired difference of runs on the same images) and
:mod:`.plots` sit on them; :mod:`.columns` and
:mod:`.robustness` on those; :mod:`.tables`, :mod:`.text` and :mod:`.report` on top.  Below the package:
:mod:`panbench.records`, :mod:`panbench.analysis`, :mod:`panbench.robustness` (summaries), :mod:`panbench.pq`.
"""
