"""``boltir verify INDEX_DIR``: check every file of an index against the size and SHA-256 its manifest records."""

from __future__ import annotations

import argparse
import sys

from ..errors import IndexMismatchError
from ..index import resolve_index, verify_index


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("index_dir", metavar="INDEX_DIR", help="an index directory written by `boltir index`")


def run(args: argparse.Namespace) -> int:
    """0 when every file matches; 1, with one line naming each damaged or missing file, when not."""
    try:
        manifest = verify_index(args.index_dir)
    except IndexMismatchError as exc:
        print(f"boltir verify: {exc}", file=sys.stderr, flush=True)
        return 1
    files = manifest["files"]
    size = sum(entry["size"] for entry in files.values())
    print(f"{resolve_index(args.index_dir)}: {len(files)} files ({size:,} bytes) match their SHA-256 in the manifest", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boltir verify", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
