"""The Hugging Face ``transformers`` family (``--model hf:<hub id or directory>``): a model loaded by
:mod:`.load` from :mod:`.hub` with the label mapping of :mod:`.labels`, run as a
:class:`panbench.models.protocol.PanopticModel` by :mod:`.model`.  Imported only for ``hf:`` models."""
