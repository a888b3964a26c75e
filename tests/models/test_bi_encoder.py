"""The bi-encoder family: pooling, similarity, save/load round trips, sentence-transformers folders."""

from __future__ import annotations

import pytest
import torch

from boltir import BiEncoderConfig, BiEncoderModule, ConfigError
from boltir.models import BiEncoderModel, load_model
from tests.conftest import liven

TEXTS = ["berlin is the capital of germany", "paris is the capital of france", "the moon causes the ocean tide"]


@pytest.mark.parametrize("fixture", ["tiny_bert_dir", "tiny_electra_dir", "tiny_llama_dir", "tiny_qwen2_dir"])
def test_any_backbone_scores_and_round_trips(fixture, request, tmp_path):
    directory = request.getfixturevalue(fixture)
    pooling = "last" if "llama" in fixture or "qwen" in fixture else "mean"
    config = BiEncoderConfig(query_pooling=pooling, doc_pooling=pooling, similarity="dot", embedding_dim=8)
    module = BiEncoderModule(directory, config=config)
    scores = module.score("capital of germany", TEXTS).scores
    assert scores.shape == (3,) and torch.isfinite(scores).all()
    module.save_pretrained(tmp_path / "saved")
    reloaded = BiEncoderModule(tmp_path / "saved")
    assert reloaded.config == module.config
    torch.testing.assert_close(reloaded.score("capital of germany", TEXTS).scores, scores)


def test_decoder_last_pooling_ignores_padding_side(tiny_llama_dir):
    config = BiEncoderConfig(query_pooling="last", doc_pooling="last")
    module = BiEncoderModule(tiny_llama_dir, config=config)
    together = module.encode_docs(TEXTS)
    alone = torch.cat([module.encode_docs([t]) for t in TEXTS])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


def test_batching_does_not_change_vectors(tiny_bert_dir):
    module = BiEncoderModule(tiny_bert_dir)
    torch.testing.assert_close(module.encode_docs(TEXTS, batch_size=1), module.encode_docs(TEXTS, batch_size=3), atol=1e-5, rtol=1e-4)


def test_untied_encoders_round_trip(tiny_bert_dir, tmp_path):
    module = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(tied=False))
    with torch.no_grad():
        for p in module.model.query_backbone.parameters():
            p.add_(0.1)
    before = module.encode_queries(TEXTS)
    module.save_pretrained(tmp_path / "untied")
    reloaded = load_model(tmp_path / "untied")
    assert isinstance(reloaded, BiEncoderModel) and reloaded.query_backbone is not None
    after = BiEncoderModule(model=reloaded).encode_queries(TEXTS)
    torch.testing.assert_close(before, after)


def test_unknown_config_option_is_named():
    with pytest.raises(ConfigError, match="poolng"):
        BiEncoderConfig.from_dict({"poolng": "mean"})
    with pytest.raises(ConfigError, match="query_pooling"):
        BiEncoderConfig(query_pooling="average")
    with pytest.raises(ConfigError, match="similarity"):
        BiEncoderConfig(similarity="manhattan")


@pytest.mark.slow
def test_packaged_minilm_ranks_berlin_first(minilm_dir, tmp_path):
    module = BiEncoderModule("sentence-transformers/all-MiniLM-L6-v2")
    assert module.config.doc_pooling == "mean" and module.config.normalize and module.config.similarity == "cosine"
    out = module.score("What is the capital of Germany?", ["Berlin is the capital of Germany.", "Paris is the capital of France."])
    assert out.ranking() == [0, 1]
    module.save_pretrained(tmp_path / "minilm")
    torch.testing.assert_close(BiEncoderModule(tmp_path / "minilm").score(
        "What is the capital of Germany?", ["Berlin is the capital of Germany.", "Paris is the capital of France."]).scores, out.scores)


def test_score_refuses_empty_query_and_empty_candidates(tiny_bert_dir):
    module = BiEncoderModule(tiny_bert_dir)
    with pytest.raises(ConfigError, match="a query is empty"):
        module.score("  ", TEXTS)
    with pytest.raises(ConfigError, match="candidate list .* is empty"):
        module.score("capital", [])


def test_unknown_hub_name_says_what_to_pass(monkeypatch):
    from boltir import ModelNotFoundError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="pass the path of a local model directory"):
        BiEncoderModule("nobody/no-such-model")


def test_unused_bert_pooler_is_frozen(tmp_path):
    """A BERT checkpoint with a pooler (all-MiniLM-L6-v2 has one) trains under DDP: the pooler gets no gradients."""
    from transformers import BertConfig, BertModel

    from tests.conftest import make_bert_tokenizer

    tokenizer = make_bert_tokenizer(tmp_path)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64)
    BertModel(config).save_pretrained(tmp_path)
    model = BiEncoderModel.from_pretrained(tmp_path)
    assert not any(p.requires_grad for p in model.backbone.pooler.parameters())
    assert all(p.requires_grad for p in model.backbone.encoder.parameters())


def test_decoder_sequences_never_start_with_padding(tiny_llama_dir):
    """A leading pad position under a causal mask attends to nothing (NaN gradients in fused CUDA attention)."""
    model = BiEncoderModule(tiny_llama_dir, config=BiEncoderConfig(query_pooling="last", doc_pooling="last")).model
    mask = model.tokenize_docs(["x", *TEXTS])["attention_mask"]
    assert mask[:, 0].all() and not mask[:, -1].all()


# -- packed texts (end to end without padding; the variable-length flash kernel on GPUs) ------------------------

PACKED_TEXTS = ["berlin is the capital of germany and a city on a river", "paris", "the moon causes the ocean tide",
         "genes in cells increase cancer risk in humans"]


@pytest.mark.parametrize(("fixture", "pooling"), [("tiny_bert_dir", "mean"), ("tiny_bert_dir", "cls"),
                                                   ("tiny_electra_dir", "mean")])
def test_packed_texts_embed_as_padded_texts(fixture, pooling, request):
    config = BiEncoderConfig(query_pooling=pooling, doc_pooling=pooling)
    model = liven(BiEncoderModule(request.getfixturevalue(fixture), config=config)).eval().model
    assert model.packable
    tokens = model.tokenize_docs(PACKED_TEXTS)
    with torch.no_grad():
        torch.testing.assert_close(model.encode_docs(model.pack(tokens)), model.encode_docs(tokens), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(model.encode_queries(model.pack(tokens)), model.encode_queries(tokens), atol=1e-5,
                                   rtol=1e-4)


def test_only_tied_dense_single_vector_models_pack(tiny_bert_dir, tiny_bert_mlm_dir, tiny_llama_dir):
    from boltir import ColBERTModule, SpladeModule

    assert BiEncoderModule(tiny_bert_dir).model.packable
    assert not BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(tied=False)).model.packable
    assert not BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(doc_pooling="max")).model.packable
    assert not BiEncoderModule(tiny_llama_dir, config=BiEncoderConfig(query_pooling="last", doc_pooling="last")).model.packable
    assert not ColBERTModule(tiny_bert_dir).model.packable and not SpladeModule(tiny_bert_mlm_dir).model.packable
    model = BiEncoderModule(tiny_bert_dir, config=BiEncoderConfig(doc_pooling="max")).model
    with pytest.raises(ConfigError, match="padded texts"):
        model.encode_docs(model.pack(model.tokenize_docs(PACKED_TEXTS)))


def test_saved_bi_encoder_does_not_name_boltir_attention(tiny_bert_dir, tmp_path):
    """The backbone runs boltir's attention (to run packed), but what is saved is a plain HF folder."""
    module = BiEncoderModule(tiny_bert_dir)
    module.save_pretrained(tmp_path / "saved")
    assert "boltir" not in (tmp_path / "saved" / "config.json").read_text()


def test_module_packs_texts_where_the_kernel_runs(tiny_bert_dir, monkeypatch):
    """On a GPU in half precision (faked here) every encoded batch goes packed, from texts and from tokens made by
    the DataLoader's workers, and the vectors equal padded ones; training keeps padded rows."""
    from boltir.models.layers.packing import PackedTokens
    from boltir.modules import device

    module = liven(BiEncoderModule(tiny_bert_dir)).eval()
    with torch.no_grad():
        padded = module.embed_docs(PACKED_TEXTS, batch_size=2)
    monkeypatch.setattr(device, "varlen_runs", lambda device, dtype: True)
    assert module.packs_sequences() and not module.train().packs_sequences()
    module.eval()
    seen, encode = [], module.model.encode_docs
    module.model.encode_docs = lambda tokens: seen.append(isinstance(tokens, PackedTokens)) or encode(tokens)
    with torch.no_grad():
        torch.testing.assert_close(module.embed_docs(PACKED_TEXTS, batch_size=2), padded, atol=1e-5, rtol=1e-4)
        from_workers = module.embed_docs(PACKED_TEXTS, encoding=module.model.tokenize_docs(PACKED_TEXTS))
    torch.testing.assert_close(from_workers, padded, atol=1e-5, rtol=1e-4)
    assert seen == [True] * 3
