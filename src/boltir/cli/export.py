"""``boltir export onnx --model DIR --out DIR [--quantize int8]``: a model's backbones as ONNX graphs.

The output directory loads with ``BiEncoderModule(OUT, backend="onnx")`` (or the model's own module class)
and runs on ONNX Runtime with the same API; see :mod:`boltir.integrations.onnx`.
"""

from __future__ import annotations

import argparse

from ..integrations.onnx import QUANTIZATIONS, export_onnx
from ..models import MODEL_FAMILIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("format", choices=["onnx"], help="the export format")
    parser.add_argument("--model", required=True, help="a saved boltir model directory, an HF directory or a hub name")
    parser.add_argument("--out", required=True, help="the directory to write (replaced atomically)")
    parser.add_argument("--quantize", choices=list(QUANTIZATIONS), default=None,
                        help="ONNX Runtime's dynamic int8 quantisation of the weights")
    parser.add_argument("--family", choices=sorted(MODEL_FAMILIES), default=None,
                        help="the model family of a plain HF directory (saved boltir models name their own)")


def run(args: argparse.Namespace) -> int:
    out = export_onnx(args.model, args.out, quantize=args.quantize, family=args.family)  # errors: the dispatcher's one line
    print(f"exported {args.model} to {out} (load it with backend='onnx')", flush=True)
    return 0


if __name__ == "__main__":
    main_parser = argparse.ArgumentParser(prog="boltir export", description=__doc__.splitlines()[0])
    add_arguments(main_parser)
    raise SystemExit(run(main_parser.parse_args()))
