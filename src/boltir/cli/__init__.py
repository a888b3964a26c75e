"""The command line: ``boltir fit|index|search|re_rank --config x.yaml``."""

from .main import BoltirCLI, main

__all__ = ["BoltirCLI", "main"]
