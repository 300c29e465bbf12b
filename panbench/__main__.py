"""``python -m panbench`` (also what ``torchrun -m panbench`` runs)."""

import sys

from panbench.cli.main import main

sys.exit(main())
