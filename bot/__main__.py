"""`python -m bot` runs the same command line as `coalition-bot`."""

import sys

from bot.app.cli import main

sys.exit(main())
