"""`python -m mailstats`. Guarded: worker processes re-import the main module."""

import multiprocessing

from mailstats.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the PyInstaller build starts spawn workers
    raise SystemExit(main())
