"""Host and device time of PyTorch's attention kernels on the shapes text batches have (GPU only).

For each backend (cuDNN, memory-efficient, flash without a mask), ``--calls`` forward + backward passes of
scaled-dot-product attention with a padding mask, each at a new sequence length (``new``: as random training
batches and length-sorted inference batches arrive) and then again at lengths already seen (``seen``).
Prints one JSON line per (backend, shapes): milliseconds per call, the device drained at the end.
Run: ``python -m benchmarks.sdpa_backends --batch 64 --heads 12 --head-dim 32``
"""

from __future__ import annotations

import argparse
import time

from .common import emit


def main() -> None:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--calls", type=int, default=40, help="distinct sequence lengths (from 24 up)")
    args = parser.parse_args()
    device, dtype = "cuda", torch.bfloat16
    lengths = [24 + 5 * i for i in range(args.calls)]

    def call(length: int, backend: SDPBackend) -> None:
        q, k, v = (torch.randn(args.batch, args.heads, length, args.head_dim, device=device, dtype=dtype,
                               requires_grad=True) for _ in range(3))
        mask = None
        if backend != SDPBackend.FLASH_ATTENTION:  # flash takes no mask: it stands for batches without padding
            mask = torch.ones(args.batch, 1, 1, length, dtype=torch.bool, device=device)
            mask[::2, ..., length // 2 :] = False
        with sdpa_kernel([backend]):
            F.scaled_dot_product_attention(q, k, v, attn_mask=mask).sum().backward()

    for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION):
        call(64, backend)  # libraries loaded
        for shapes in ("new", "seen"):
            torch.cuda.synchronize()
            start = time.perf_counter()
            for length in lengths:
                call(length, backend)
            torch.cuda.synchronize()
            emit({"row": "sdpa", "backend": backend.name, "shapes": shapes, "batch": args.batch, "heads": args.heads,
                  "head_dim": args.head_dim, "ms_per_call": 1000 * (time.perf_counter() - start) / len(lengths)})


if __name__ == "__main__":
    main()
