"""Options Lightning IR users set, in boltir: sum pooling, markers for single-vector models, ColBERT query-token
masking and aggregations, SPLADE without document expansion and inference-free SPLADE, the Set-Encoder's pattern."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import BiEncoderModule, CrossEncoderModule
from boltir.errors import ConfigError
from boltir.models import BiEncoderConfig, ColBERTConfig, CrossEncoderConfig, SpladeConfig
from boltir.models.layers import Pooling, TokenVectors, maxsim, pairwise_similarity
from boltir.models.layers.attention import SetLayout
from boltir.modules import ColBERTModule, SpladeModule
from tests.conftest import liven

QUERY = "what causes cancer in human cells"
DOCS = ["the study of cancer cells in mice", "a river bank in the city", "genes and protein of the cell",
        "high blood risk", "the moon and the tide"]


def test_sum_pooling_adds_the_real_tokens():
    states = torch.randn(2, 4, 3)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    summed = Pooling("sum")(states, mask)
    torch.testing.assert_close(summed, Pooling("mean")(states, mask) * mask.sum(1, keepdim=True).float())


def test_a_single_vector_model_puts_its_markers_after_the_first_token(tiny_bert_dir):
    config = BiEncoderConfig(query_pooling="sum", doc_pooling="sum", query_marker="[unused0]", doc_marker="[unused1]",
                             query_length=6)
    with pytest.raises(ConfigError, match="query_marker"):  # the tiny vocabulary has no [unused0]
        BiEncoderModule(tiny_bert_dir, config=config)
    module = BiEncoderModule(tiny_bert_dir, config=config.replace(query_marker="[MASK]", doc_marker="?"))
    model = module.model
    ids = model.tokenize_queries([QUERY])["input_ids"][0]
    assert ids[1] == model.tokenizer.mask_token_id and len(ids) == 6 and ids[-1] == model.tokenizer.sep_token_id
    assert model.tokenize_docs(["a"])["input_ids"][0].tolist()[1] == model.tokenizer.convert_tokens_to_ids("?")
    plain = BiEncoderModule(tiny_bert_dir, config=config.replace(query_marker=None, doc_marker=None))
    assert not torch.allclose(module.embed_queries([QUERY]), plain.embed_queries([QUERY]))


def test_euclidean_similarity_is_the_unsquared_distance():
    q, d = torch.randn(3, 4), torch.randn(5, 4)
    torch.testing.assert_close(pairwise_similarity("euclidean", q, d), -torch.cdist(q, d))
    torch.testing.assert_close(pairwise_similarity("l2", q, d), -torch.cdist(q, d) ** 2)


def _reference_late_interaction(q: TokenVectors, d: TokenVectors, query_agg: str, doc_agg: str) -> torch.Tensor:
    """Loops over every query and document, as the aggregations are defined."""
    reduce = {"sum": sum, "max": max, "mean": lambda xs: sum(xs) / len(xs)}
    out = torch.zeros(len(q), len(d))
    for i, qv in enumerate(q.unpadded()):
        for j, dv in enumerate(d.unpadded()):
            per_token = [reduce[doc_agg]([float(a @ b) for b in dv]) if len(dv) else 0.0 for a in qv]
            out[i, j] = reduce[query_agg](per_token)
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), query_agg=st.sampled_from(["sum", "mean", "max"]),
       doc_agg=st.sampled_from(["sum", "mean", "max"]))
def test_late_interaction_aggregations_match_their_definition(seed, query_agg, doc_agg):
    g = torch.Generator().manual_seed(seed)
    q = TokenVectors(torch.randn(2, 4, 3, generator=g), torch.rand(2, 4, generator=g) < 0.7)
    q.mask[:, 0] = True  # every query keeps a token
    d = TokenVectors(torch.randn(3, 5, 3, generator=g), torch.rand(3, 5, generator=g) < 0.7)
    d.mask[:, 0] = True
    q.vectors[~q.mask] = 0
    torch.testing.assert_close(maxsim(q, d, query_agg, doc_agg), _reference_late_interaction(q, d, query_agg, doc_agg),
                               atol=1e-5, rtol=1e-5)


def test_colbert_query_tokens_can_be_masked_from_scoring(tiny_bert_dir):
    config = ColBERTConfig(embedding_dim=8, query_augmentation=False, query_mask_tokens=["cancer"],
                           query_mask_punctuation=True)
    module = liven(ColBERTModule(tiny_bert_dir, config=config)).eval()
    model = module.model
    encoding = model.tokenize_queries([QUERY + "?"])
    vectors = model.encode_queries(encoding)
    ids = encoding["input_ids"][0]
    masked = {model.tokenizer.convert_tokens_to_ids(t) for t in ("cancer", "?")}
    assert vectors.mask[0].tolist() == [int(i) not in masked for i in ids]
    # the masked tokens add nothing: the score is that of the query without them
    docs = model.encode_docs(model.tokenize_docs(DOCS))
    kept = TokenVectors(vectors.vectors[:, vectors.mask[0]], vectors.mask[:, vectors.mask[0]])
    torch.testing.assert_close(model.score(vectors, docs), maxsim(kept, docs))


def test_colbert_mean_aggregation_scores_differ_from_sum_by_the_query_length(tiny_bert_dir):
    summed = liven(ColBERTModule(tiny_bert_dir, config=ColBERTConfig(embedding_dim=8, query_augmentation=False))).eval()
    mean = ColBERTModule(tiny_bert_dir, config=summed.config.replace(query_aggregation="mean")).eval()
    mean.model.load_state_dict(summed.model.state_dict())
    n = int(summed.model.tokenize_queries([QUERY])["attention_mask"].sum())
    torch.testing.assert_close(mean.score(QUERY, DOCS).scores * n, summed.score(QUERY, DOCS).scores)
    with pytest.raises(ConfigError, match="doc_aggregation"):
        ColBERTConfig(doc_aggregation="median")


def test_splade_without_document_expansion_weighs_only_the_documents_tokens(tiny_bert_mlm_dir):
    module = liven(SpladeModule(tiny_bert_mlm_dir, config=SpladeConfig(doc_expansion=False, zero_special_tokens=False))).eval()
    model = module.model
    encoding = model.tokenize_docs(DOCS[:2])
    vectors = model.encode_docs(encoding)
    for vector, ids, mask in zip(vectors, encoding["input_ids"], encoding["attention_mask"]):
        own = set(ids[mask.bool()].tolist())
        assert set(vector.nonzero().flatten().tolist()) <= own
        assert vector[model.tokenizer.cls_token_id] > 0  # special tokens keep their weight (zero_special_tokens=False)
    expanded = SpladeModule(tiny_bert_mlm_dir, config=SpladeConfig()).eval()
    expanded.model.load_state_dict(model.state_dict())
    assert (expanded.model.encode_docs(encoding) > 0).sum() > (vectors > 0).sum()


def test_inference_free_splade_weighs_query_tokens_from_its_table_without_the_encoder(tiny_bert_mlm_dir, monkeypatch):
    config = SpladeConfig(query_weighting="static", query_expansion=False)
    module = SpladeModule(tiny_bert_mlm_dir, config=config).eval()
    model = module.model
    with torch.no_grad():
        model.query_weights.copy_(torch.rand(model.embedding_dim) + 0.5)
    encoding = model.tokenize_queries([QUERY])
    assert model.tokenizer.cls_token_id not in encoding["input_ids"][0].tolist()  # no special tokens
    monkeypatch.setattr(model.backbone, "forward", lambda *a, **k: pytest.fail("the query encoder ran"))
    vector = model.encode_queries(encoding)[0]
    ids = encoding["input_ids"][0].tolist()
    assert set(vector.nonzero().flatten().tolist()) == set(ids)
    torch.testing.assert_close(vector[ids], model.query_weights[ids].detach())
    with pytest.raises(ConfigError, match="query_expansion"):
        SpladeConfig(query_weighting="static")


def test_a_two_logit_head_scores_log_p_relevant(tiny_bert_dir):
    plain = liven(CrossEncoderModule(tiny_bert_dir)).eval()
    logp = CrossEncoderModule(tiny_bert_dir, config=plain.config.replace(relevance_log_prob=True)).eval()
    logp.model.load_state_dict(plain.model.state_dict())
    logits = plain.score(QUERY, DOCS).scores
    torch.testing.assert_close(logp.score(QUERY, DOCS).scores, torch.nn.functional.logsigmoid(logits))


# -- the Set-Encoder ------------------------------------------------------------------------------------------------
def _set_encoder(directory, **config):
    return liven(CrossEncoderModule(directory, config=CrossEncoderConfig(attention="set", **config))).eval()


@settings(max_examples=12, deadline=None)
@given(size=st.integers(1, 5), seed=st.integers(0, 1000), extra_token=st.booleans())
def test_set_encoder_scores_are_permutation_invariant(tiny_bert_dir, size, seed, extra_token):
    module = _set_encoder(tiny_bert_dir, interaction_token="[MASK]" if extra_token else None)
    docs = DOCS[:size]
    order = list(range(size))
    random.Random(seed).shuffle(order)
    scores = module.score(QUERY, docs).scores
    torch.testing.assert_close(module.score(QUERY, [docs[i] for i in order]).scores, scores[order], atol=1e-5, rtol=1e-5)


def test_every_token_of_a_passage_attends_to_the_other_passages_interaction_tokens():
    torch.manual_seed(0)
    heads, tokens, dim = 2, 4, 8
    query, key, value = (torch.randn(3, heads, tokens, dim) for _ in range(3))
    layout = SetLayout.from_list_sizes(torch.ones(3, tokens, dtype=torch.bool), [3], interaction=1)
    out = layout.attend(query, key, value, dim**-0.5, 0.0)
    changed = value.clone()
    changed[2, :, 1] += 1.0  # passage 2's interaction token
    after = layout.attend(query, key, changed, dim**-0.5, 0.0)
    assert not torch.allclose(out[0], after[0])  # every token of passage 0 saw it...
    assert all(not torch.allclose(out[0, :, t], after[0, :, t]) for t in range(tokens))
    changed = value.clone()
    changed[2, :, 3] += 1.0  # ...but no other token of passage 2
    torch.testing.assert_close(layout.attend(query, key, changed, dim**-0.5, 0.0)[:2], out[:2])


def test_the_interaction_token_goes_after_the_first_token(tiny_bert_dir):
    module = _set_encoder(tiny_bert_dir, interaction_token="[MASK]", max_length=16, query_length=6)
    batch = module.model.tokenize_pairs([QUERY] * 2, DOCS[:2], list_sizes=[2])
    ids = batch.inputs["input_ids"]
    assert (ids[:, 1] == module.model.tokenizer.mask_token_id).all() and ids.shape[1] <= 16
    with pytest.raises(ConfigError, match="interaction_token"):
        CrossEncoderConfig(interaction_token="[MASK]")


def test_set_depth_draws_nothing_for_full_lists_and_is_seeded_otherwise(tiny_bert_dir):
    plain = _set_encoder(tiny_bert_dir)
    deep = CrossEncoderModule(tiny_bert_dir, config=plain.config.replace(set_depth=3)).eval()
    deep.model.load_state_dict(plain.model.state_dict())
    torch.testing.assert_close(deep.score(QUERY, DOCS[:3]).scores, plain.score(QUERY, DOCS[:3]).scores)
    short = [deep.score(QUERY, DOCS[:2]).scores for _ in range(2)]
    assert not torch.allclose(short[0], plain.score(QUERY, DOCS[:2]).scores)  # one drawn "other" in every layer
    torch.manual_seed(7)
    first = deep.score(QUERY, DOCS[:2]).scores
    torch.manual_seed(7)
    swapped = deep.score(QUERY, DOCS[1::-1]).scores  # the draws depend on the list's statistics, not its order
    torch.testing.assert_close(swapped, first.flip(0), atol=1e-5, rtol=1e-5)


def test_a_single_passage_draws_its_own_interaction_state():
    torch.manual_seed(0)
    heads, tokens, dim = 2, 3, 4
    hidden = torch.randn(1, tokens, heads * dim)
    key, value = torch.nn.Linear(heads * dim, heads * dim), torch.nn.Linear(heads * dim, heads * dim)
    split = lambda x: x.view(1, tokens, heads, dim).transpose(1, 2)  # noqa: E731
    q, k, v = split(torch.randn(1, tokens, heads * dim)), split(key(hidden)), split(value(hidden))
    layout = SetLayout.from_list_sizes(torch.ones(1, tokens, dtype=torch.bool), [1], depth=3)
    layout.draw_missing(hidden, key, value, heads)  # std 0 with one passage: both draws are its state
    out = layout.attend(q, k, v, dim**-0.5, 0.0)
    keys = torch.cat([k, k[:, :, :1], k[:, :, :1]], 2)
    values = torch.cat([v, v[:, :, :1], v[:, :, :1]], 2)
    torch.testing.assert_close(out, torch.nn.functional.scaled_dot_product_attention(q, keys, values, scale=dim**-0.5))
