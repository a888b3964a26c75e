#!/usr/bin/env bash
# The effectiveness runs made on the lent GPU machine (one machine kept warm across the three calls), from the
# repository root there; results land in $OUT. Carried folders (git-ignored, each call under the 64 MiB limit):
#   call1  carry .carry/g1 .carry/sf   wheels into /tmp/site; SciFact into /tmp/scifact; MS MARCO int8 ONNX → HF;
#                                      BM25 → MS MARCO MiniLM-L12 zero-shot re-ranking; SeDR 2,048-token encoding cost
#   call2  carry .carry/g2 .carry/sf   MiniLM (xz) into /tmp/minilm; bi-encoder fine-tuning (finetune_minilm.py);
#                                      cross-encoder fine-tuning + re-ranking (cross_encoder_scifact.py)
#   call3  (nothing new)               FirstP / MaxP / SeDR fine-tuned and compared (sedr_scifact.py)
set -o pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true HF_HUB_OFFLINE=1
ROOT=$PWD; OUT=${OUT:-$ROOT/benchmarks/results}; mkdir -p "$OUT"
export PYTHONPATH=$ROOT/src:/tmp/site
need() { [ -e "$1" ] || { echo "missing $1: the machine was given back between calls; start again with call1"; exit 3; }; }
data() { mkdir -p /tmp/scifact && [ -s /tmp/scifact/corpus.jsonl ] || { xz -T8 -dc .carry/sf/corpus.jsonl.xz > /tmp/scifact/corpus.jsonl && cp -r .carry/sf/queries.jsonl .carry/sf/qrels /tmp/scifact/; }; }
case "$1" in
  call1)
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .carry/g1/wheels/*.whl > /tmp/install.log 2>&1 || { tail /tmp/install.log; exit 1; }
    data
    python3 -c "import boltir, faiss, bm25s, Stemmer, ir_measures, scipy; print('imports ok', boltir.__file__)" || exit 1
    python3 -c "from boltir.models.convert import onnx_int8_bert_to_hf as c; c('.carry/g1/reranker/model.onnx', '.carry/g1/reranker', '/tmp/reranker', kind='classifier')" || exit 1
    timeout 330 python3 benchmarks/cross_encoder_scifact.py --data /tmp/scifact --zero-shot /tmp/reranker --epochs 0 \
      --device cuda --precision bf16-mixed --out "$OUT" 2>&1 | tail -12
    timeout 120 python3 benchmarks/sedr_encoding.py --device cuda --out "$OUT" 2>&1 | tail -12 ;;
  call2)
    need /tmp/site/faiss; data
    mkdir -p /tmp/minilm && cp -r .carry/g2/shape/. /tmp/minilm/ && xz -T8 -dc .carry/g2/model.safetensors.xz > /tmp/minilm/model.safetensors || exit 1
    timeout 300 python3 benchmarks/finetune_minilm.py --data /tmp/scifact --model /tmp/minilm --device cuda --out "$OUT" 2>&1 | tail -12
    timeout 240 python3 benchmarks/cross_encoder_scifact.py --data /tmp/scifact --base /tmp/minilm --zero-shot '' \
      --device cuda --precision bf16-mixed --out "$OUT/ce-finetune" 2>&1 | tail -12 ;;
  call3)
    need /tmp/site/faiss; need /tmp/minilm/model.safetensors; data
    timeout 540 python3 benchmarks/sedr_scifact.py --device cuda --data /tmp/scifact --model /tmp/minilm --out "$OUT" 2>&1 | tail -20 ;;
  *) echo "usage: bash benchmarks/gpu_lead.sh call1|call2|call3"; exit 2 ;;
esac
