"""panbench inside other frameworks' loops: ``panbench.integrations.mmdet`` is an MMEngine/MMDetection
evaluator (``PanbenchPanopticMetric``, a drop-in for MMDetection's ``CocoPanopticMetric``) on the PQ core of
:mod:`panbench.metrics`.  Nothing of panbench imports this package: a config's ``custom_imports`` or a user's
``import`` does (docs/api.md, "MMDetection / MMEngine")."""
