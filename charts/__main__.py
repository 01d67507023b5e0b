"""`python -m charts`: see charts.command."""

import sys

from charts.command import main

sys.exit(main())
