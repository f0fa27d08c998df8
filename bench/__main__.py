"""``python -m cowbench``."""

import sys

from cowbench.cli import main

sys.exit(main())
