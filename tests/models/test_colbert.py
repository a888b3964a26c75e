"""The ColBERT family: query augmentation, markers, punctuation masking, MaxSim, save/load."""

from __future__ import annotations

import pytest
import torch

from boltir import ConfigError
from boltir.models import ColBERTConfig, ColBERTModel, load_model
from boltir.models.layers import TokenVectors, maxsim
from boltir.modules import ColBERTModule

TEXTS = ["berlin is the capital of germany.", "paris, the capital of france!", "the moon causes the ocean tide"]


@pytest.fixture()
def module(tiny_bert_dir) -> ColBERTModule:
    return ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=8, query_length=10, doc_length=16))


def test_queries_are_augmented_with_mask_tokens_to_a_fixed_length(module):
    model = module.model
    encoding = model.tokenize_queries(["capital of germany", "tide"])
    assert encoding["input_ids"].shape == (2, 10)
    assert (encoding["input_ids"][1, 3:] == model.tokenizer.mask_token_id).all()
    assert encoding["attention_mask"][1, 3:].eq(0).all()  # ColBERTv2: the query does not attend to its [MASK]s
    vectors = module.encode_queries(["capital of germany", "tide"])
    assert isinstance(vectors, TokenVectors) and vectors.mask.all()  # yet every [MASK] vector scores
    norms = vectors.vectors.norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))


def test_without_augmentation_only_real_query_tokens_count(tiny_bert_dir):
    module = ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=8, query_augmentation=False))
    vectors = module.encode_queries(["capital of germany", "tide"])
    assert vectors.mask.sum(-1).tolist() == [5, 3]


def test_documents_mask_punctuation_and_padding(module):
    tokenizer = module.model.tokenizer
    docs = module.encode_docs(TEXTS)
    punctuation = {tokenizer.convert_tokens_to_ids(c) for c in ".,!"}
    for text, mask in zip(TEXTS, docs.mask):
        ids = tokenizer(text)["input_ids"]
        expected = [i not in punctuation for i in ids]
        assert mask[: len(ids)].tolist() == expected and not mask[len(ids) :].any()
    assert (docs.vectors[~docs.mask] == 0).all()


def test_markers_go_after_the_first_token(tiny_bert_dir):
    config = ColBERTConfig(embedding_dim=8, query_marker="[unused0]", doc_marker="[unused1]")
    with pytest.raises(ConfigError, match="query_marker"):  # the tiny vocabulary has no [unused0]
        ColBERTModule(tiny_bert_dir, config=config)
    module = ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=8, query_marker="?", doc_marker="!"))
    tokenizer = module.model.tokenizer
    query = module.model.tokenize_queries(["tide"])["input_ids"][0]
    doc = module.model.tokenize_docs(["the tide"])["input_ids"][0]
    assert query[:2].tolist() == [tokenizer.cls_token_id, tokenizer.convert_tokens_to_ids("?")]
    assert doc.tolist()[:2] == [tokenizer.cls_token_id, tokenizer.convert_tokens_to_ids("!")]
    assert len(query) == 32


def test_score_is_maxsim_and_batching_does_not_change_it(module):
    scores = module.score("capital of germany", TEXTS).scores
    expected = maxsim(module.encode_queries(["capital of germany"]), module.encode_docs(TEXTS))[0]
    torch.testing.assert_close(scores, expected)
    one_by_one = TokenVectors.cat([module.encode_docs([t]) for t in TEXTS])
    torch.testing.assert_close(maxsim(module.encode_queries(["tide"]), one_by_one),
                               maxsim(module.encode_queries(["tide"]), module.encode_docs(TEXTS, batch_size=2)), atol=1e-5, rtol=1e-4)


def test_saved_colbert_reloads_with_its_projection(module, tmp_path):
    with torch.no_grad():
        module.model.projection.weight.add_(0.5)
    before = module.score("capital of germany", TEXTS).scores
    module.save_pretrained(tmp_path / "colbert")
    reloaded = load_model(tmp_path / "colbert")
    assert isinstance(reloaded, ColBERTModel) and reloaded.config == module.config
    torch.testing.assert_close(ColBERTModule(model=reloaded).score("capital of germany", TEXTS).scores, before)


def test_colbert_without_projection_keeps_the_hidden_size(tiny_bert_dir):
    module = ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=None))
    assert module.model.projection is None and module.encode_docs(TEXTS).dim == 32


def test_colbert_config_refuses_single_vector_options():
    with pytest.raises(ConfigError, match="doc_pooling"):
        ColBERTConfig(doc_pooling="mean")
    with pytest.raises(ConfigError, match="similarity"):
        ColBERTConfig(similarity="l2")
    with pytest.raises(ConfigError, match="append_eos"):
        ColBERTConfig(append_eos=True)
