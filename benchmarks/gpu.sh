#!/usr/bin/env bash
# The benchmark runs made on the lent GPU machine, from the repository root there. Results land in $OUT.
#   bash benchmarks/gpu.sh speed   carry: .whl .whl-bench .carry/scifact .carry/minilm-shape       (~6 min)
#          GPU indexing rows (st, boltir-encode, boltir-index, lightning-ir; fp32, bf16, st fp16) + scaling
#   bash benchmarks/gpu.sh extra   carry: .whl .whl-bench .carry/scifact .carry/minilm-shape       (~5 min)
#          search overhead (10k/100k/1M), CPU indexing rows (500 docs), training rows (needs .whl-bench/train)
#   bash benchmarks/gpu.sh parity  carry: .carry/bench-parity .carry/minilm-shape                  (~2 min)
#          SciFact nDCG@10 parity with the real weights (xz-compressed to fit the 64 MiB carry limit)
# .whl holds boltir's wheels; .whl-bench/lir Lightning IR + transformers<5; .whl-bench/train `datasets`;
# .carry/minilm-shape all-MiniLM-L6-v2's config and tokenizer (the speed rows use random weights of its shape).
set -o pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true
ROOT=$PWD; OUT=${OUT:-$ROOT/benchmarks/results}; mkdir -p "$OUT/results"
install() { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$1" "${@:2}" > /tmp/install.log 2>&1 || { tail /tmp/install.log; exit 1; }; }
case "$1" in
  speed|extra)
    [ -d /tmp/site/faiss ] || install /tmp/site .whl/*.whl $( [ -d .whl-bench/train ] && echo .whl-bench/train/*.whl )
    [ -d /tmp/lir/lightning_ir ] || install /tmp/lir .whl-bench/lir/*.whl
    export PYTHONPATH=$ROOT/src:/tmp/site
    LIR="--lir-python python3 --lir-path /tmp/lir:/tmp/site"; MODEL="--model $ROOT/.carry/minilm-shape --random-weights"
    if [ "$1" = speed ]; then
      python3 -m benchmarks.run --device cuda --rows indexing,scaling $MODEL --data $ROOT/.carry/scifact --st-fp16 $LIR \
        --out "$OUT/results" --md "$OUT/RESULTS-bench.md" 2>&1 | tee /tmp/speed.log | grep -E "exit|rror|^\|"
    else
      python3 -m benchmarks.run --device cuda --rows search $MODEL --data $ROOT/.carry/scifact \
        --search-args "--latency-queries 20 --repeats 3" --out "$OUT/results" --md "$OUT/RESULTS-bench.md" 2>&1 | grep -E "exit|rror|^\|"
      python3 -m benchmarks.run --device cuda --rows training --precisions bf16 $MODEL --data $ROOT/.carry/scifact \
        --training-args "--batch-size 64 --steps 40" --out "$OUT/results" --md "$OUT/RESULTS-bench.md" 2>&1 | grep -E "exit|rror|^\|"
      python3 -m benchmarks.run --device cpu --rows indexing --precisions fp32,bf16 --limit 500 $MODEL --data $ROOT/.carry/scifact \
        --st-batch-sizes 32,128 --boltir-batch-sizes 32,128 --index-batch-sizes 32,128 $LIR --lir-batch-sizes 32,128 \
        --out "$OUT/results" --md "$OUT/RESULTS-bench.md" 2>&1 | grep -E "exit|rror|^\|"
    fi ;;
  parity)
    P=$ROOT/.carry/bench-parity
    install /tmp/site $P/wheels/*.whl
    mkdir -p /tmp/minilm /tmp/scifact && cp -r .carry/minilm-shape/. /tmp/minilm/ \
      && xz -T4 -dc $P/model.safetensors.xz > /tmp/minilm/model.safetensors && xz -dc $P/corpus.jsonl.xz > /tmp/scifact/corpus.jsonl \
      && cp -r $P/queries.jsonl $P/qrels /tmp/scifact/ || exit 1
    export PYTHONPATH=$ROOT/src:/tmp/site
    python3 -m benchmarks.parity_scifact --model /tmp/minilm --data /tmp/scifact --device cuda --precisions fp32,bf16 \
      --cpu-precisions bf16 --out "$OUT/results" > /tmp/parity.log 2>&1; grep -E "nDCG@10 |PASS|FAIL|Error" /tmp/parity.log ;;
  *) echo "usage: bash benchmarks/gpu.sh speed|extra|parity"; exit 2 ;;
esac
