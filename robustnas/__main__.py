"""``python -m robustnas``."""

import sys

from robustnas.cli import main

sys.exit(main())
