"""The command line: ``boltir <command>``; see :mod:`boltir.cli.main` (Lightning's CLI: :mod:`boltir.cli.lightning`)."""

from .main import main

__all__ = ["main"]
