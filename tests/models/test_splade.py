"""The SPLADE family: sparse term weights from an MLM head, expansion, pruning, save/load, the packaged model."""

from __future__ import annotations

import pytest
import torch

from boltir import ConfigError
from boltir.models import SpladeConfig, SpladeModel, load_model
from boltir.modules import SpladeModule

TEXTS = ["berlin is the capital of germany", "paris is the capital of france", "the moon causes the ocean tide"]


def test_vectors_are_non_negative_vocabulary_weights(tiny_bert_mlm_dir):
    module = SpladeModule(tiny_bert_mlm_dir)
    docs = module.encode_docs(TEXTS)
    assert docs.shape == (3, module.model.embedding_dim) and (docs >= 0).all() and (docs > 0).any()
    queries = module.encode_queries(["capital of germany"])
    torch.testing.assert_close(module.score("capital of germany", TEXTS).scores, (queries @ docs.T)[0])
    assert module.model.representation == "sparse"


def test_sum_pooling_is_at_least_max_pooling(tiny_bert_mlm_dir):
    max_docs = SpladeModule(tiny_bert_mlm_dir).encode_docs(TEXTS)
    sum_docs = SpladeModule(tiny_bert_mlm_dir, config=SpladeConfig(doc_pooling="sum")).encode_docs(TEXTS)
    assert (sum_docs >= max_docs - 1e-6).all() and (sum_docs > max_docs + 1e-4).any()


def test_no_query_expansion_keeps_only_the_query_tokens(tiny_bert_mlm_dir):
    module = SpladeModule(tiny_bert_mlm_dir, config=SpladeConfig(query_expansion=False))
    query = "what causes the ocean tide"
    vector = module.encode_queries([query])[0]
    tokenizer = module.model.tokenizer
    own = set(tokenizer(query, add_special_tokens=False)["input_ids"])
    assert set(vector.nonzero().flatten().tolist()) <= own
    expanded = SpladeModule(tiny_bert_mlm_dir).encode_queries([query])[0]
    assert (expanded > 0).sum() > (vector > 0).sum()
    torch.testing.assert_close(vector[list(own)], expanded[list(own)])


def test_top_k_pruning_bounds_document_terms_and_may_empty_none(tiny_bert_mlm_dir):
    module = SpladeModule(tiny_bert_mlm_dir, config=SpladeConfig(doc_top_k=5, query_top_k=3))
    assert ((module.encode_docs(TEXTS) > 0).sum(-1) <= 5).all()
    assert ((module.encode_queries(TEXTS) > 0).sum(-1) <= 3).all()


def test_saved_splade_reloads_as_its_family(tiny_bert_mlm_dir, tmp_path):
    module = SpladeModule(tiny_bert_mlm_dir, config=SpladeConfig(doc_top_k=20, tied=False, doc_pooling="sum"))
    with torch.no_grad():
        for p in module.model.query_backbone.parameters():
            p.mul_(0.9)
    before = module.score("capital of germany", TEXTS).scores
    module.save_pretrained(tmp_path / "splade")
    reloaded = load_model(tmp_path / "splade")
    assert isinstance(reloaded, SpladeModel) and reloaded.config == module.config
    torch.testing.assert_close(SpladeModule(model=reloaded).score("capital of germany", TEXTS).scores, before)


def test_splade_config_refuses_dense_options():
    with pytest.raises(ConfigError, match="embedding_dim"):
        SpladeConfig(embedding_dim=64)
    with pytest.raises(ConfigError, match="normalize"):
        SpladeConfig(normalize=True)
    with pytest.raises(ConfigError, match="doc_pooling"):
        SpladeConfig(doc_pooling="mean")
    with pytest.raises(ConfigError, match="similarity"):
        SpladeConfig(similarity="cosine")
    with pytest.raises(ConfigError, match="doc_top_k"):
        SpladeConfig(doc_top_k=0)


@pytest.mark.slow
def test_packaged_splade_tiny_matches_its_verified_output():
    module = SpladeModule("boltir/splade-tiny")
    query = module.encode_queries(["what causes ocean tides"])[0]
    terms = module.model.terms(query, top=5)
    assert [t for t, _ in terms] == ["tide", "causes", "ocean", "cause", "sea"]
    assert [w for _, w in terms] == pytest.approx([2.14, 2.14, 2.11, 1.95, 1.44], abs=0.01)
    assert int((query > 0).sum()) == 13
    scores = module.score("what causes ocean tides", [
        "Tides are caused by the gravitational pull of the moon on the oceans.",
        "Mix flour, sugar and eggs to bake a cake.",
    ]).scores
    assert scores[0] == pytest.approx(19.94, abs=0.05) and scores[1] == 0.0
