"""`python -m b3_quotes.charts`: see b3_quotes.charts.command."""

import sys

from b3_quotes.charts.command import main

sys.exit(main())
