"""Entry point of `python -m trainer_engine`."""

import sys

from trainer_engine.cli import main

sys.exit(main())
