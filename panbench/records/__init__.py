"""The result record of one run, declared once: its schema (:mod:`.schema`), how it is built
(:mod:`.build`), written and read (:mod:`.io`, the one place that migrates older records), its
``runs.csv`` row and speed (:mod:`.rows`) and the provenance helpers (:mod:`.provenance`).

Layering: this package sits below :mod:`panbench.evaluation`, :mod:`panbench.analysis`,
:mod:`panbench.robustness` and :mod:`panbench.reporting`; it imports only :mod:`panbench.pq`,
:mod:`panbench.errors` and the standard library at module level.
"""

from panbench.records.schema import RunRecord

__all__ = ["RunRecord"]
