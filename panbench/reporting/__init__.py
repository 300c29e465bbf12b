"""How runs are shown, from their result records: tables (:mod:`.tables`, :mod:`.columns`, :mod:`.formats`), the
verdict, plots (:mod:`.plots` with :mod:`.figure_style`, :mod:`.placing`, :mod:`.figure_files`), robustness
(:mod:`.robustness`), overlays (:mod:`.viz`), the HTML report (:mod:`.report`) and terminal text (:mod:`.text`).
Imports point down only: :mod:`.labels`, :mod:`.figure_files` and :mod:`.figure_style` are the leaves, the
tables, text and report on top (docs/architecture.md)."""
