"""``python -m panbench`` (also what ``torchrun -m panbench`` runs)."""

import sys

from panbench.cli import main

sys.exit(main())
