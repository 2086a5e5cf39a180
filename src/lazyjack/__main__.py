"""Entry point for `python -m lazyjack`."""

from lazyjack.cli import entry

entry()
