"""Attention patterns: the banded kernel against a dense-mask reference, the sparse cross-encoder, the Set-Encoder."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from boltir import ConfigError, CrossEncoderConfig, CrossEncoderModule
from boltir.models.layers import attention as attention_layers
from boltir.models.layers.attention import PackedLayout, SetLayout, WindowedLayout, varlen_runs
from boltir.models.layers.packing import PackedTokens
from boltir.modules import device as module_device
from tests.conftest import liven

QUERY = "what is the capital of germany"
DOCS = [
    "berlin is the capital of germany and a city on a river",
    "paris is the capital of france",
    "the moon causes the ocean tide",
    "genes in cells increase cancer risk in humans",
    "drug treatment of the brain in mice",
    "neural ranking models learn to rank documents",
    "money in the bank",
    "the sea water is high",
    "blood and heart disease",
]


def dense_reference(q, k, v, key_mask, query_tokens, window, query_sees_doc):
    """The sparse pattern as an explicit tokens x tokens mask (what the banded kernel must reproduce)."""
    tokens = q.shape[2]
    i, j = torch.arange(tokens)[:, None], torch.arange(tokens)[None, :]
    in_query_i, in_query_j = i < query_tokens, j < query_tokens
    query_only = in_query_j & (j > 0)  # query rows never see the global first token (it has seen the document)
    allowed = (in_query_i & (query_only | query_sees_doc)) | (i == 0)
    near = (i - j).abs() <= (window if window is not None else tokens)
    allowed = allowed | (~in_query_i & (in_query_j | near))
    keep = allowed[None, None] & key_mask[:, None, None, :]
    scores = (q @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    return scores.masked_fill(~keep, float("-inf")).softmax(-1) @ v


@settings(max_examples=40, deadline=None)
@given(
    query_tokens=st.integers(2, 6),
    doc_tokens=st.integers(1, 30),
    window=st.one_of(st.none(), st.integers(1, 35)),
    query_sees_doc=st.booleans(),
    doc_padding=st.integers(0, 5),
    min_block=st.sampled_from([1, 4, 16]),
    seed=st.integers(0, 1000),
)
def test_banded_kernel_equals_dense_mask(query_tokens, doc_tokens, window, query_sees_doc, doc_padding, min_block, seed):
    generator = torch.Generator().manual_seed(seed)
    tokens = query_tokens + doc_tokens
    q, k, v = (torch.randn(2, 2, tokens, 4, generator=generator, dtype=torch.float64) for _ in range(3))
    key_mask = torch.ones(2, tokens, dtype=torch.bool)
    key_mask[1, tokens - min(doc_padding, doc_tokens - 1) :] = False  # padding at the end of the document segment
    key_mask[1, query_tokens - 1 : query_tokens] = query_tokens == 2  # and inside the query segment
    layout = WindowedLayout(key_mask, query_tokens, window, query_sees_doc, min_block=min_block)
    out = layout.attend(q, k, v, 4**-0.5, 0.0)
    expected = dense_reference(q, k, v, key_mask, query_tokens, window, query_sees_doc)
    real_rows = key_mask[:, None, :, None].expand_as(out)
    torch.testing.assert_close(out[real_rows], expected[real_rows], atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("window", [1, 3, 20])
def test_banded_kernel_gradients_equal_dense_mask(window):
    generator = torch.Generator().manual_seed(window)
    q, k, v = (torch.randn(2, 2, 40, 4, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(3))
    key_mask = torch.ones(2, 40, dtype=torch.bool)
    key_mask[0, 33:] = False
    weights = torch.randn(2, 2, 40, 4, generator=generator, dtype=torch.float64) * key_mask[:, None, :, None]
    banded = torch.autograd.grad((WindowedLayout(key_mask, 5, window).attend(q, k, v, 0.5, 0.0) * weights).sum(), (q, k, v))
    dense = torch.autograd.grad((dense_reference(q, k, v, key_mask, 5, window, False) * weights).sum(), (q, k, v))
    for got, expected in zip(banded, dense):
        torch.testing.assert_close(got, expected, atol=1e-10, rtol=1e-10)


def _cross_encoder(directory, **config):
    return liven(CrossEncoderModule(directory, config=CrossEncoderConfig(**config))).eval()


def test_sparse_with_full_window_equals_plain_model(tiny_bert_dir):
    plain = _cross_encoder(tiny_bert_dir)
    sparse = _cross_encoder(tiny_bert_dir, attention="sparse", window=None, query_sees_doc=True)
    sparse.model.head.load_state_dict(plain.model.head.state_dict())
    queries = [QUERY, "ocean tide", "what causes cancer in human cells and mice"]
    torch.testing.assert_close(sparse.rank_scores(queries, [DOCS] * 3), plain.rank_scores(queries, [DOCS] * 3),
                               atol=1e-5, rtol=1e-5)


def test_sparse_window_beyond_document_equals_unbanded(tiny_bert_dir):
    whole = _cross_encoder(tiny_bert_dir, attention="sparse")
    wide = _cross_encoder(tiny_bert_dir, attention="sparse", window=500)
    narrow = _cross_encoder(tiny_bert_dir, attention="sparse", window=2)
    for module in (wide, narrow):
        module.model.head.load_state_dict(whole.model.head.state_dict())
    expected = whole.score(QUERY, DOCS).scores
    torch.testing.assert_close(wide.score(QUERY, DOCS).scores, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(narrow.score(QUERY, DOCS).scores, expected, atol=1e-4)


def test_sparse_query_tokens_do_not_see_the_document(tiny_bert_dir):
    model = _cross_encoder(tiny_bert_dir, attention="sparse", window=2).model
    batch = model.tokenize_pairs([QUERY, QUERY], [DOCS[0], DOCS[3]])
    query_tokens = batch.query_tokens
    from boltir.models.layers.attention import WindowedLayout as Layout

    with torch.no_grad():
        layout = Layout(batch.inputs["attention_mask"].bool(), query_tokens, 2)
        states = model.backbone(**batch.inputs, boltir_layout=layout).last_hidden_state
    torch.testing.assert_close(states[0, 1:query_tokens], states[1, 1:query_tokens])  # query rows: same
    assert not torch.allclose(states[0, 0], states[1, 0], atol=1e-4)  # the global first token differs


@pytest.mark.parametrize("size", [1, 2, 5, 9])
def test_set_encoder_scores_permute_with_the_candidates(tiny_bert_dir, size):
    module = _cross_encoder(tiny_bert_dir, attention="set")
    docs = DOCS[:size]
    scores = module.score(QUERY, docs).scores
    rng = random.Random(size)
    for _ in range(4):
        order = list(range(size))
        rng.shuffle(order)
        permuted = module.score(QUERY, [docs[i] for i in order]).scores
        torch.testing.assert_close(permuted, scores[order], atol=1e-5, rtol=1e-5)


@settings(max_examples=8, deadline=None)
@given(size=st.integers(2, 6), seed=st.integers(0, 1000), depth=st.sampled_from([None, 9]))
def test_set_encoder_training_forward_permutes_with_the_candidates(tiny_bert_dir, size, seed, depth):
    """In training mode too (gradients on, set_depth's draws under one seed), a passage's score does not depend on
    where in its list it sits: training lists put the positive first, so any leak of the position would be a
    shortcut the model learns in training and cannot use when re-ranking. Dropout is off so the forward is exact."""
    module = _cross_encoder(tiny_bert_dir, attention="set", set_depth=depth).train()
    for layer in module.modules():
        if isinstance(layer, torch.nn.Dropout):
            layer.p = 0.0
    docs = DOCS[:size]
    order = list(range(size))
    random.Random(seed).shuffle(order)
    torch.manual_seed(seed)
    scores = module.rank_scores([QUERY, "ocean tide"], [docs, docs[::-1]])
    torch.manual_seed(seed)
    permuted = module.rank_scores([QUERY, "ocean tide"], [[docs[i] for i in order], docs[::-1]])
    assert scores[0].requires_grad
    torch.testing.assert_close(permuted[0], scores[0][order], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(permuted[1], scores[1], atol=1e-5, rtol=1e-5)


def test_set_encoder_passages_influence_each_other(tiny_bert_dir):
    for attention, influenced in (("set", True), ("full", False)):
        module = _cross_encoder(tiny_bert_dir, attention=attention)
        before = module.score(QUERY, DOCS[:4]).scores
        after = module.score(QUERY, DOCS[:3] + ["money in the bank of a river city"]).scores
        changed = not torch.allclose(before[:3], after[:3], atol=1e-5)
        assert changed == influenced, attention


def test_set_encoder_lists_of_a_batch_stay_apart(tiny_bert_dir):
    module = _cross_encoder(tiny_bert_dir, attention="set")
    module.encode_batch_size = 100
    together = module.rank_scores([QUERY, "ocean tide"], [DOCS[:4], DOCS[4:9]])
    module.encode_batch_size = 1  # one whole list per forward pass
    alone = module.rank_scores([QUERY, "ocean tide"], [DOCS[:4], DOCS[4:9]])
    for a, b in zip(together, alone):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_set_layout_members_exclude_self():
    layout = SetLayout.from_list_sizes(torch.ones(5, 3, dtype=torch.bool), [3, 2])
    assert layout.members[0][layout.member_mask[0]].tolist() == [1, 2]
    assert layout.members[4][layout.member_mask[4]].tolist() == [3]


# -- packed pairs (full attention without padding) ----------------------------------------------------------------


def _per_sequence_attention(q, k, v, cu_seqlens, scale):
    """Each sequence of packed ``[total, heads, dim]`` tensors attends to itself alone (the kernel's contract)."""
    out = torch.empty_like(q)
    for lo, hi in zip(cu_seqlens[:-1].tolist(), cu_seqlens[1:].tolist()):
        scores = torch.einsum("qhd,khd->hqk", q[lo:hi], k[lo:hi]) * scale
        out[lo:hi] = torch.einsum("hqk,khd->qhd", scores.softmax(-1), v[lo:hi])
    return out


def _packed_qkv(lengths, heads=2, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    # laid out as transformers makes them: [1, total, heads, dim] viewed as [1, heads, total, dim]
    q, k, v = (torch.randn(1, total, heads, dim, generator=generator).transpose(1, 2) for _ in range(3))
    cu = torch.nn.functional.pad(torch.tensor(lengths).cumsum(0), (1, 0)).int()
    return q, k, v, cu


@settings(max_examples=30, deadline=None)
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_packed_layout_attends_within_each_sequence(lengths, seed):
    q, k, v, cu = _packed_qkv(lengths, seed=seed)
    out = PackedLayout(cu, max(lengths)).attend(q, k, v, 8**-0.5, 0.0)  # on a CPU: through padded rows
    expected = _per_sequence_attention(q[0].transpose(0, 1), k[0].transpose(0, 1), v[0].transpose(0, 1), cu, 8**-0.5)
    torch.testing.assert_close(out, expected.transpose(0, 1).unsqueeze(0), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("scale", [8**-0.5, 0.3])
def test_packed_layout_hands_the_kernel_packed_tensors(monkeypatch, scale):
    """Where the variable-length kernel runs (a GPU), it gets ``[total, heads, dim]`` tensors, the int32 starts and
    the longest length, and the scale only where it is not the kernel's default (torch 2.10 takes none)."""
    calls = []

    def kernel(q, k, v, cu_q, cu_k, max_q, max_k, **kwargs):
        calls.append((q.shape, cu_q.dtype, max_q, max_k, kwargs))
        assert q.is_contiguous() and cu_q is cu_k  # no copy of transformers' layout
        return _per_sequence_attention(q, k, v, cu_q, kwargs.get("scale", q.shape[-1] ** -0.5))

    monkeypatch.setattr(attention_layers, "varlen_runs", lambda device, dtype: True)
    monkeypatch.setattr(attention_layers, "_varlen_kernel", lambda: kernel)
    q, k, v, cu = _packed_qkv([3, 7, 1])
    layout = PackedLayout(cu, 7)
    out = layout.attend(q, k, v, scale, 0.0)
    torch.testing.assert_close(out, layout._padded(q, k, v, scale, 0.0), atol=1e-5, rtol=1e-4)
    assert calls == [((11, 2, 8), torch.int32, 7, 7, {} if scale == 8**-0.5 else {"scale": scale})]
    layout.attend(q, k, v, scale, 0.1)  # attention dropout: the kernel has none, the padded path runs
    assert len(calls) == 1


def test_varlen_kernel_only_on_gpus_in_half_precision():
    assert not varlen_runs(torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize(("fixture", "pooling"), [("tiny_bert_dir", "cls"), ("tiny_bert_dir", "mean"),
                                                   ("tiny_bert_dir", "pooler"), ("tiny_electra_dir", "cls")])
def test_packed_pairs_score_as_padded_pairs(fixture, pooling, request):
    module = liven(CrossEncoderModule(request.getfixturevalue(fixture), config=CrossEncoderConfig(pooling=pooling))).eval()
    model = module.model
    assert model.packable
    batch = model.tokenize_pairs([QUERY] * len(DOCS), DOCS)
    packed = model.pack(batch.inputs)
    assert packed.inputs["input_ids"].shape == (1, int(batch.inputs["attention_mask"].sum())) and len(packed) == len(DOCS)
    with torch.no_grad():
        torch.testing.assert_close(model(packed), model(batch), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("left", [False, True])
def test_packed_tokens_keep_each_sequences_tokens_and_positions(left):
    rows = [[5, 6, 7], [1, 2, 3, 4], [9]]
    mask = torch.tensor([[0] * (4 - len(r)) + [1] * len(r) if left else [1] * len(r) + [0] * (4 - len(r)) for r in rows])
    ids = torch.tensor([[0] * (4 - len(r)) + r if left else r + [0] * (4 - len(r)) for r in rows])
    packed = PackedTokens.from_padded({"input_ids": ids, "attention_mask": mask, "token_type_ids": mask * 0}, 2)
    assert packed.inputs["input_ids"].tolist() == [[5, 6, 7, 1, 2, 3, 4, 9]]
    assert packed.inputs["position_ids"].tolist() == [[2, 3, 4, 2, 3, 4, 5, 2]]
    assert packed.cu_seqlens.tolist() == [0, 3, 7, 8] and packed.cu_seqlens.dtype == torch.int32
    assert packed.max_length == 4 and set(packed.inputs) == {"input_ids", "token_type_ids", "position_ids"}
    assert len(packed) == 3 and packed.layout().max_length == 4


def test_only_full_attention_encoders_pack(tiny_bert_dir, tiny_llama_dir):
    assert CrossEncoderModule(tiny_bert_dir).model.packable
    for attention_pattern in ("sparse", "set"):
        assert not CrossEncoderModule(tiny_bert_dir, config=CrossEncoderConfig(attention=attention_pattern)).model.packable
    assert not CrossEncoderModule(tiny_bert_dir, config=CrossEncoderConfig(pooling="max")).model.packable
    assert not CrossEncoderModule(tiny_llama_dir, config=CrossEncoderConfig(pooling="last")).model.packable
    module = CrossEncoderModule(tiny_bert_dir, config=CrossEncoderConfig(attention="sparse"))
    packed = module.model.pack(module.model.tokenize_pairs([QUERY], DOCS[:1]).inputs)
    with pytest.raises(ConfigError, match="padded pairs"):
        module.model(packed)


def test_boltir_attention_without_a_layout_is_transformers_sdpa(tiny_bert_dir):
    """A full-attention backbone switched to boltir's attention (so it can also run packed) scores padded pairs
    exactly as with transformers' own sdpa."""
    module = liven(CrossEncoderModule(tiny_bert_dir)).eval()
    assert module.model.backbone.config._attn_implementation == attention_layers.ATTENTION_NAME
    batch = module.model.tokenize_pairs([QUERY] * len(DOCS), DOCS)
    with torch.no_grad():
        switched = module.model(batch)
        module.model.backbone.set_attn_implementation("sdpa")
        torch.testing.assert_close(module.model(batch), switched, atol=0, rtol=0)


def test_module_packs_pairs_where_the_kernel_runs(tiny_bert_dir, monkeypatch):
    """On a GPU in half precision (faked here) every scored batch goes packed, and the scores equal padded ones."""
    module = liven(CrossEncoderModule(tiny_bert_dir, encode_batch_size=4)).eval()
    assert not module.packs_sequences()  # a CPU
    with torch.no_grad():
        padded = module.rank_scores([QUERY], [DOCS])[0]
    monkeypatch.setattr(module_device, "varlen_runs", lambda device, dtype: True)
    assert module.packs_sequences() and not module.train().packs_sequences()  # training: attention dropout, padded
    module.eval()
    seen, forward = [], module.model.forward
    module.model.forward = lambda batch: seen.append(isinstance(batch, PackedTokens)) or forward(batch)
    with torch.no_grad():
        packed = module.rank_scores([QUERY], [DOCS])[0]
    assert seen == [True] * 3
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=1e-4)


def test_a_copy_in_another_process_registers_boltir_attention(tiny_bert_dir, monkeypatch):
    """DDP spawn unpickles the model in a fresh process, where transformers does not know boltir's attention yet."""
    import pickle

    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    model = CrossEncoderModule(tiny_bert_dir).model.eval()
    batch = model.tokenize_pairs([QUERY] * 2, DOCS[:2])
    payload = pickle.dumps(model)
    for interface in (AttentionInterface, AttentionMaskInterface):  # as in a process that never built a model
        monkeypatch.setattr(interface, "_global_mapping", {k: v for k, v in interface._global_mapping.items()
                                                           if k != attention_layers.ATTENTION_NAME})
    with torch.no_grad():
        torch.testing.assert_close(pickle.loads(payload)(batch), model(batch))
