"""``python -m training.anneal``: see training.anneal.cli."""

import os
import sys

from training.anneal.cli import main

if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
