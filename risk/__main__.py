"""``python -m risk backtest ...``: see :mod:`risk.cli`."""

import sys

from risk.cli import main

raise SystemExit(main(sys.argv[1:]))
