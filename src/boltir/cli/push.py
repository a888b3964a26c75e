"""``boltir push DIR REPO_ID [--private] [--token T] [--message M]``: upload a saved model to the Hugging Face Hub.

``HF_ENDPOINT`` picks the Hub, ``HF_TOKEN`` (or ``--token``, or ``hf auth login``) the credentials; the model card
in ``DIR`` goes along (boltir's own card then loads the model from ``REPO_ID``).
"""

from __future__ import annotations

import argparse

from ..models.hub import push_directory


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="a model directory written by save_pretrained or boltir fit")
    parser.add_argument("repo_id", help="the Hub repository, e.g. my-org/scifact-minilm")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--token", default=None, help="a Hub token with write access (default: HF_TOKEN or the login)")
    parser.add_argument("--message", default="Upload boltir model", help="the commit message")


def run(args: argparse.Namespace) -> int:
    # a BoltirError goes to the dispatcher (boltir.cli.main), which prints it in one line
    url = push_directory(args.directory, args.repo_id, private=args.private or None, token=args.token,
                         commit_message=args.message)
    print(f"pushed {args.directory} to {args.repo_id}: {url}", flush=True)
    return 0


if __name__ == "__main__":
    main_parser = argparse.ArgumentParser(prog="boltir push", description=__doc__.splitlines()[0])
    add_arguments(main_parser)
    raise SystemExit(run(main_parser.parse_args()))
