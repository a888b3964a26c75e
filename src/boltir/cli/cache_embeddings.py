"""``boltir cache-embeddings MODEL_DIR``: build a LightRetriever model's query token cache beside it."""

from __future__ import annotations

import argparse

import torch

from ..modules import LightRetrieverModule


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="a saved asymmetric dense LightRetriever model directory")
    parser.add_argument("--cache_path", "--cache-path", default=None, help="where the cache goes (default: in the model directory)")
    parser.add_argument("--batch_size", "--batch-size", type=int, default=1024, help="vocabulary tokens per forward pass")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--bf16", action="store_true", help="run the LLM under bf16 autocast (GPU)")


def run(args: argparse.Namespace) -> int:
    module = LightRetrieverModule(args.model).to(args.device)
    with torch.autocast(torch.device(args.device).type, dtype=torch.bfloat16, enabled=args.bf16):
        module.cache_embeddings(args.batch_size, args.cache_path)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="boltir cache-embeddings", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
