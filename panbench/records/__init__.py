"""The result record of one run, declared once: its schema (:mod:`.schema`), how it is built
(:mod:`.build`), written and read (:mod:`.io`, the one place that migrates older records), its
``runs.csv`` row and speed (:mod:`.rows`) and the provenance helpers (:mod:`.provenance`).

Layering: this package sits below :mod:`panbench.evaluation`, :mod:`panbench.analysis`,
:mod:`panbench.robustness` and :mod:`panbench.reporting`; it imports only :mod:`panbench.pq`,
:mod:`panbench.errors`, :mod:`panbench.analyses` (the analysis fields) and the standard library at module level.
"""

from panbench.records.build import external_fields, make_record, record_run
from panbench.records.io import load_record, load_records, write_record
from panbench.records.schema import RunRecord

__all__ = ["RunRecord", "external_fields", "load_record", "load_records", "make_record", "record_run",
           "write_record"]
