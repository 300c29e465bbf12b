"""``python -m panbench`` (also what ``torchrun -m panbench`` runs)."""

import sys

from panbench.console import start

sys.exit(start())
