"""``python -m app.batch INPUT... --out DIR`` (app.batch._cli has the options)."""

import sys

from app.batch._cli import main

sys.exit(main())
