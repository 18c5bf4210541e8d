"""`python -m backend …`: the headless CLI (see backend/cli)."""

import sys

from backend.cli import main

sys.exit(main())
