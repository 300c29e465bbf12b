"""The models: what a model family gives the evaluation (:mod:`.protocol`) and the families, one subpackage each
(:mod:`.mmdet`, :mod:`.hf`); docs/architecture.md says the rest and what it may import."""
