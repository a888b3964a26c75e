"""Re-ranking with and without the sort window, interleaved in one process (CPU): ``CrossEncoderModule.score`` with
``SORT_WINDOW = 1`` (batches tokenised and padded one by one, in character order) and with the default window
(pairs regrouped by token count), alternating for ``--rounds`` rounds; medians.

Run: ``python -m benchmarks.sort_window_cpu --model MINILM_DIR --data SCIFACT_DIR --run BM25.run --queries 4``
"""

from __future__ import annotations

import argparse
import statistics

from .common import emit, random_weights_copy, timed
from .reranking import rerank_lists


def main() -> None:
    import torch

    from boltir import CrossEncoderModule
    from boltir.modules import cross_encoder

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a model directory whose shape to use (random weights)")
    parser.add_argument("--data", required=True, help="SciFact BEIR folder")
    parser.add_argument("--run", required=True, help="first-stage TREC run of the test queries")
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = random_weights_copy(args.model, classifier=True)
    module = CrossEncoderModule(str(model), config_overrides={"query_length": 64, "max_length": 512}).eval()
    lists = rerank_lists(args.data, args.run, args.depth, args.queries)
    queries, docs = [q for _, q, _, _ in lists], [ds for _, _, _, ds in lists]
    default = cross_encoder.SORT_WINDOW
    times: dict[int, list[float]] = {1: [], default: []}
    with torch.inference_mode():
        module.score(queries[:1], [docs[0][:8]])  # warm-up
        for _ in range(args.rounds):
            for window in times:
                cross_encoder.SORT_WINDOW = window
                times[window].append(timed(lambda: module.score(queries, docs), "cpu"))
    cross_encoder.SORT_WINDOW = default
    pairs = sum(len(d) for d in docs)
    medians = {window: statistics.median(seconds) for window, seconds in times.items()}
    emit({"row": "sort-window", "device": "cpu", "pairs": pairs, "batch": module.forward_batch_size, "times": times,
          "median_s": medians, "speedup": medians[1] / medians[default]})


if __name__ == "__main__":
    main()
