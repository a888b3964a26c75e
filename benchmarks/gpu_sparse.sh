#!/usr/bin/env bash
# Issue #5's GPU figures, from the repository root on the lent GPU machine (one machine kept warm across both calls:
# it is given back after ~30 s idle, so start call2 as soon as call1 returns); results land in $OUT.
# Carried folders (git-ignored; each call under the 64 MiB limit):
#   call1  carry .carry/sparse1 .carry/g2 .carry/sf   (62.6 MiB)  boltir's wheels into /tmp/site; SciFact into /tmp/scifact;
#          MiniLM (fp16, xz) into /tmp/minilm; the zero-shot MiniLM run over the train queries (every family's hard
#          negatives); the dense bi-encoder zero-shot and fine-tuned, on Faiss Flat                         (~2-3 min)
#   call2  carry .carry/sparse2                       (43.3 MiB)  fast-plaid + Seismic wheels; SPLADE-tiny and the ColBERT
#          int8 ONNX (xz); PLAID smoke test; SPLADE (zero-shot and fine-tuned: exact vs Seismic) and ColBERT (fine-tuned:
#          exhaustive MaxSim vs Faiss candidates 16/64 per token vs PLAID n_ivf_probe 4/8/16/32), reported with
#          call1's dense rows in sparse_multivector_scifact.{md,json}                                         (~6-8 min)
#   call3  (optional, nothing new)                                plaid_scifact.py on the zero-shot ColBERT backbone
#          (384-d tokens, no projection): the same searchers at 4x the exact cost                              (~3-4 min)
# Fine-tuning: every family EPOCHS epochs (default 4 = 104 steps of 32 queries x 8 documents), each fit capped at
# FIT_CAP (Lightning's DD:HH:MM:SS). CPU rehearsal (tiny slices, nothing installed):
#   PY=/work/main/.venv/bin/python DEVICE=cpu PRECISION=fp32 INSTALL=0 SCRATCH=/tmp/sparse-rehearsal \
#   SLICE="--limit-docs 150 --limit-queries 6" FIT_SLICE="--max-steps 2 --train-batch-size 4" bash benchmarks/gpu_sparse.sh call1
set -o pipefail; shopt -s nullglob
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1
ROOT=$PWD; OUT=${OUT:-$ROOT/benchmarks/results}; mkdir -p "$OUT"
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}; PRECISION=${PRECISION:-bf16}; INSTALL=${INSTALL:-1}
T=${SCRATCH:-/tmp}; SITE=$T/site; WORK=$T/smv; EPOCHS=${EPOCHS:-4}; FIT_CAP=${FIT_CAP:-00:00:02:00}
SLICE=${SLICE:-}; FIT_SLICE=${FIT_SLICE:-}   # CPU rehearsal only
export PYTHONPATH=$ROOT/src:$SITE BOLTIR_CACHE=$T/boltir-cache   # the ColBERT backbone is converted there
COMMON="--data $T/scifact --device $DEVICE --precision $PRECISION --batch-size 256 $SLICE"
need() { [ -e "$1" ] || { echo "missing $1: the machine was given back after call1; run call1 again, then call2 at once"; exit 3; }; }
install() {  # wheels the machine lacks; those under if-missing only when their import fails (never shadow its own)
  [ "$INSTALL" = 1 ] || return 0
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$1"/wheels/*.whl > "$T/install.log" 2>&1 \
    || { tail "$T/install.log"; exit 1; }
  for wheel in "$1"/if-missing/*.whl; do
    module=$(basename "$wheel" | cut -d- -f1)
    $PY -c "import $module" 2>/dev/null || $PY -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$wheel" || exit 1
  done
}
unxz_to() { mkdir -p "$2" && cp -r "$1"/. "$2"/ && for f in "$2"/*.xz; do xz -T8 -dc "$f" > "${f%.xz}" && rm "$f"; done; }
case "$1" in
  call1)
    mkdir -p "$T" "$WORK"; install .carry/sparse1
    [ -s "$T/scifact/corpus.jsonl" ] || unxz_to .carry/sf "$T/scifact" || exit 1
    [ -s "$T/minilm/model.safetensors" ] || { unxz_to .carry/g2/shape "$T/minilm" && xz -T8 -dc .carry/g2/model.safetensors.xz > "$T/minilm/model.safetensors"; } || exit 1
    $PY -c "import boltir, boltir.cli.main, lightning, torchmetrics, jsonargparse, faiss, ir_measures, scipy, torch, transformers
print('imports ok: torch', torch.__version__, 'transformers', transformers.__version__, 'lightning', lightning.__version__, 'cuda', torch.cuda.is_available())" || exit 1
    timeout 480 $PY benchmarks/sparse_multivector_scifact.py $COMMON --families dense --minilm "$T/minilm" \
      --max-epochs "$EPOCHS" --max-time "$FIT_CAP" $FIT_SLICE --work "$WORK" --out "$T/smv-out" --name sparse_multivector_dense \
      > "$OUT/call1.log" 2>&1; status=$?
    cp "$T"/smv-out/* "$OUT"/ 2>/dev/null; grep -v "Warning\|warn(" "$OUT/call1.log" | tail -25; exit $status ;;
  call2)
    [ "$INSTALL" != 1 ] || need "$SITE/lightning"; need "$T/scifact/corpus.jsonl"; need "$WORK/negatives/zero-shot-train.run"
    install .carry/sparse2
    [ -s "$T/splade/model.safetensors" ] || unxz_to .carry/sparse2/splade "$T/splade" || exit 1
    [ -s "$T/colbert-onnx/model.onnx" ] || unxz_to .carry/sparse2/colbert-onnx "$T/colbert-onnx" || exit 1
    WITHOUT=""; ldd --version 2>&1 | head -1
    $PY -c "import seismic" || { WITHOUT="seismic"; echo "pyseismic-lsr does not load (its wheel needs glibc >= 2.34): SPLADE without Seismic"; }
    $PY - <<'EOF' || { WITHOUT="$WITHOUT plaid"; echo "PLAID smoke test failed: ColBERT without PLAID"; }
# fast-plaid through boltir on random token vectors, before the long run relies on it
import tempfile, torch
from boltir.index import PlaidIndexConfig, open_searcher
from boltir.models.layers import TokenVectors
class Model:  # what an indexer asks of a model
    representation, dim = "multi-vector", 96
    def describe(self): return {"name_or_path": "plaid-smoke"}
    def index_fingerprint(self): return {"dim": 96, "similarity": "dot"}
g, directory = torch.Generator().manual_seed(0), tempfile.mkdtemp() + "/plaid"
indexer = PlaidIndexConfig(use_triton_kmeans=False).indexer(directory, Model())
for batch in range(4):
    docs = torch.nn.functional.normalize(torch.randn(300, 40, 96, generator=g), dim=-1)
    indexer.add([f"d{batch}-{i}" for i in range(300)], TokenVectors(docs, torch.ones(300, 40)))
indexer.finish()
scores, ids = open_searcher(directory).search(TokenVectors(docs[:2, :8], torch.ones(2, 8)), 5)
assert ids[0][0] == "d3-0" and ids[1][0] == "d3-1", ids
print("PLAID smoke ok:", ids[0][:3], scores[0][:3])
EOF
    DENSE=$T/smv-out/sparse_multivector_dense.json; [ -s "$DENSE" ] || { echo "no dense rows from call1"; DENSE=""; }
    timeout 480 $PY benchmarks/sparse_multivector_scifact.py $COMMON --families splade colbert --zero-shot splade ${WITHOUT:+--without $WITHOUT} \
      --splade "$T/splade" --colbert-onnx "$T/colbert-onnx" --negatives "$WORK/negatives/zero-shot-train.run" \
      ${DENSE:+--include "$DENSE"} --candidates 16 --plaid-probes 4 16 32 --max-epochs "$EPOCHS" --max-time "$FIT_CAP" \
      $FIT_SLICE --work "$WORK" --out "$OUT" > "$OUT/call2.log" 2>&1; status=$?
    grep -v "Warning\|warn(" "$OUT/call2.log" | tail -40; exit $status ;;
  call3)
    [ "$INSTALL" != 1 ] || need "$SITE/fast_plaid"; need "$T/colbert-onnx/model.onnx"
    timeout 500 $PY benchmarks/plaid_scifact.py $COMMON --colbert-onnx "$T/colbert-onnx" --out "$OUT" > "$OUT/call3.log" 2>&1; status=$?
    grep -v "Warning\|warn(" "$OUT/call3.log" | tail -20; exit $status ;;
  *) echo "usage: bash benchmarks/gpu_sparse.sh call1|call2|call3"; exit 2 ;;
esac
