"""The ``panbench`` command line: one module per command."""
