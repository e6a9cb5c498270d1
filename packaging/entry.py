"""PyInstaller entry script: the frozen EmotionLens executable runs exactly ``python -m app``.

A separate script (rather than ``app/__main__.py`` itself) keeps ``app`` imported as a package, so its modules
are named ``app.*`` in the bundle just as in a checkout and ``app.core.resource_path`` sees the same layout.
"""

import sys

from app.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
