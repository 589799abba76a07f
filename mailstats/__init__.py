"""mailstats: which mail header signals really separate ham from spam."""

__version__ = "0.1.0"
