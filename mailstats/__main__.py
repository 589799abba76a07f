"""`python -m mailstats`. Guarded: worker processes re-import the main module."""

from mailstats.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
