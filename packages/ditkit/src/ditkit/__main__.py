"""``python -m ditkit`` runs the ``ditkit`` command."""

import sys

from .cli import main

sys.exit(main())
