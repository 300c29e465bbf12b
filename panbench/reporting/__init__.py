"""What a run leaves behind and how it is shown: result records (:mod:`.records`), comparison
tables (:mod:`.tables`, pandas), plots (:mod:`.plots`, matplotlib), panoptic overlays
(:mod:`.viz`), the self-contained HTML page (:mod:`.report`), the plain-text tables printed in the
terminal (:mod:`.text`)."""
