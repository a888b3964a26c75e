"""Long documents as segments: splitting, FirstP/MaxP/SeDR/transformer-head encoding, and max-over-segments scoring."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import BiEncoderConfig, BiEncoderModule, ConfigError
from boltir.models.layers.segments import SegmentedVectors, max_over_segments, split_into_segments

SHORT = "the moon causes the ocean tide"
LONG = " ".join(["berlin is the capital of germany"] * 4 + ["the moon causes the ocean tide"] * 4 + ["genes in cells"] * 3)
QUERY = "what causes the ocean tide"


def module(directory, aggregation: str | None, pooling: str = "mean", **segments) -> BiEncoderModule:
    options = None if aggregation is None else {"aggregation": aggregation, "max_segments": 4, **segments}
    config = BiEncoderConfig(query_pooling=pooling, doc_pooling=pooling, doc_length=16, segments=options)
    return BiEncoderModule(directory, config=config)


def test_split_gives_every_segment_special_tokens_prefix_and_overlap(tiny_bert_dir):
    tokenizer = module(tiny_bert_dir, "maxp").model.tokenizer
    words = " ".join(["berlin", "paris", "moon", "tide", "gene", "cell"] * 5)  # 30 single-token words
    plain = tokenizer(words, add_special_tokens=False)["input_ids"]
    out = split_into_segments(tokenizer, [words, "paris"], length=12, max_segments=3, overlap=2, prefix="the ")
    prefix = tokenizer("the ", add_special_tokens=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert out["segment_mask"].tolist() == [[True, True, True], [True, False, False]]
    ids = out["input_ids"]
    room = 12 - 2 - len(prefix)  # per segment: [CLS] prefix chunk [SEP]
    for i in range(3):
        row = ids[i][out["attention_mask"][i].bool()].tolist()
        assert row[0] == cls and row[-1] == sep and row[1 : 1 + len(prefix)] == prefix
        assert row[1 + len(prefix) : -1] == plain[i * (room - 2) : i * (room - 2) + room]
    assert len(ids) == 4  # 3 segments of the long text, 1 of the short


def test_short_document_is_one_segment_equal_to_plain_tokenisation(tiny_bert_dir):
    model = module(tiny_bert_dir, "maxp").model
    segmented = model.tokenize_docs([SHORT])
    plain = module(tiny_bert_dir, None).model.tokenize_docs([SHORT])
    assert segmented["segment_mask"].sum() == 1
    assert torch.equal(segmented["input_ids"], plain["input_ids"])


@pytest.mark.parametrize("fixture,pooling", [("tiny_bert_dir", "mean"), ("tiny_bert_dir", "cls"), ("tiny_llama_dir", "last")])
def test_short_document_scores_the_same_under_every_strategy(fixture, pooling, request):
    directory = request.getfixturevalue(fixture)
    scores = {agg: module(directory, agg, pooling).score(QUERY, [SHORT, "paris is the capital of france"]).scores
              for agg in (None, "firstp", "maxp", "sedr", "transformer_head")}
    for agg, value in scores.items():
        torch.testing.assert_close(value, scores[None], msg=f"{agg} differs from plain encoding")


def test_maxp_scores_a_long_document_by_its_best_segment(tiny_bert_dir):
    maxp = module(tiny_bert_dir, "maxp")
    vectors = maxp.encode_docs([LONG])
    assert vectors.mask.sum() == 4
    query = maxp.encode_queries([QUERY])
    per_segment = torch.nn.functional.cosine_similarity(query, vectors.vectors[0])
    torch.testing.assert_close(maxp.score(QUERY, [LONG]).scores, per_segment.max().unsqueeze(0))
    firstp = module(tiny_bert_dir, "firstp").score(QUERY, [LONG]).scores
    torch.testing.assert_close(firstp, per_segment[:1])


@given(st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**16))
@settings(max_examples=40, deadline=None)
def test_padding_segments_never_win(queries, width, seed):
    generator = torch.Generator().manual_seed(seed)
    scores = -torch.rand(queries, 3, width, generator=generator) * 10  # every real segment scores below zero
    mask = torch.rand(3, width, generator=generator) < 0.5
    mask[:, 0] = True  # every document has at least one segment
    poisoned = scores.masked_fill(~mask.unsqueeze(0), 1e6)
    best = max_over_segments(poisoned, mask)
    expected = torch.stack([scores[:, d, mask[d]].amax(-1) for d in range(3)], -1)
    torch.testing.assert_close(best, expected)


def test_model_score_ignores_padding_segments_even_when_they_match_best(tiny_bert_dir):
    model = module(tiny_bert_dir, "maxp").model
    model.config.similarity = "dot"
    query = torch.randn(2, 32)
    vectors = torch.randn(3, 4, 32)
    mask = torch.tensor([[True, False, False, False], [True, True, False, False], [True, True, True, True]])
    poisoned = vectors.clone()
    poisoned[~mask] = query[0] * 100  # padding slots that would beat every real segment
    scores = model.score(query, SegmentedVectors(poisoned, mask))
    expected = torch.stack([(query @ vectors[d, mask[d]].T).amax(-1) for d in range(3)], -1)
    torch.testing.assert_close(scores, expected)


def sharpen(m: BiEncoderModule) -> BiEncoderModule:
    """Larger random weights: a freshly initialised tiny BERT barely lets content reach its [CLS] state."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.model.backbone.encoder.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
    return m


def test_sedr_segments_inform_each_other_and_maxp_segments_do_not(tiny_bert_dir):
    changed = LONG.replace("genes in cells", "brain drug mice")  # only the last segment differs
    for aggregation, should_change in (("maxp", False), ("sedr", True)):
        m = sharpen(module(tiny_bert_dir, aggregation, pooling="cls"))  # the pooled token is the one that interacts
        before, after = m.encode_docs([LONG]).vectors[0], m.encode_docs([changed]).vectors[0]
        assert torch.allclose(before[0], after[0], atol=1e-3) != should_change, aggregation


@pytest.mark.parametrize("aggregation", ["maxp", "sedr", "transformer_head"])
def test_documents_of_a_batch_do_not_leak_into_each_other(aggregation, tiny_bert_dir):
    m = module(tiny_bert_dir, aggregation)
    docs = [LONG, SHORT, LONG.replace("berlin", "paris"), "neural ranking models learn to rank documents"]
    together = m.encode_docs(docs, batch_size=4)
    alone = SegmentedVectors.cat([m.encode_docs([d]) for d in docs])
    assert torch.equal(together.mask, alone.mask)
    torch.testing.assert_close(together.vectors, alone.vectors, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("aggregation", ["sedr", "transformer_head"])
def test_trained_parts_round_trip(aggregation, tiny_bert_dir, tmp_path):
    m = module(tiny_bert_dir, aggregation)
    with torch.no_grad():
        for p in m.model.segments.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    before = m.score(QUERY, [LONG, SHORT]).scores
    m.save_pretrained(tmp_path / "saved")
    reloaded = BiEncoderModule(tmp_path / "saved")
    assert reloaded.config.segments == m.config.segments
    torch.testing.assert_close(reloaded.score(QUERY, [LONG, SHORT]).scores, before)


def test_sedr_trains_backbone_and_segment_embeddings(tiny_bert_dir):
    m = module(tiny_bert_dir, "sedr")
    m.train()
    scores = m.rank_scores([QUERY, "capital of germany"], [[LONG, SHORT], [SHORT, LONG]])
    torch.stack(scores).sum().backward()
    assert m.model.segments.order.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in m.model.backbone.encoder.parameters())


def test_segment_options_are_checked():
    with pytest.raises(ConfigError, match="aggregation"):
        BiEncoderConfig(segments={"aggregation": "meanp"})
    with pytest.raises(ConfigError, match="max_segmnts"):
        BiEncoderConfig(segments={"max_segmnts": 4})
    with pytest.raises(ConfigError, match="doc_pooling"):
        BiEncoderConfig(doc_pooling="none", segments={"aggregation": "maxp"})
    config = BiEncoderConfig.from_dict({"segments": {"aggregation": "sedr", "max_segments": 2}})
    assert config.segments.max_segments == 2 and BiEncoderConfig.from_dict(config.to_dict()) == config


def test_overlap_must_leave_room(tiny_bert_dir):
    m = module(tiny_bert_dir, "maxp", overlap=14)
    with pytest.raises(ConfigError, match="overlap"):
        m.encode_docs([LONG])
