"""Data sources that notebooks and tests can load without external services."""
