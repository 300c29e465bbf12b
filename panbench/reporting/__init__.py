"""How runs are shown, from their result records: tables, the verdict, plots, robustness figures, overlays, the HTML
report and terminal text; the modules and their layers are in docs/architecture.md."""
