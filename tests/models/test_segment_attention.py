"""SeDR's segment attention equals a dense-mask reference, outputs and gradients: each segment's representation token
sees its own segment and the other segments' representation tokens, every other token only its own segment."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel

from boltir import BiEncoderConfig
from boltir.models import BiEncoderModel
from boltir.models.layers.segment_attention import SegmentLayout

DOCS = [
    " ".join(["berlin is the capital of germany"] * 3 + ["the moon causes the ocean tide"] * 3),
    "paris is the capital of france",
    " ".join(["genes in cells increase cancer risk"] * 4),
]


def dense_reference(reference, encoding, layout: SegmentLayout, causal: bool) -> torch.Tensor:
    """Run each document's segments as one long sequence under an explicit [tokens x tokens] mask (eager attention)."""
    ids, real = encoding["input_ids"], encoding["attention_mask"].bool()
    segments, length = ids.shape
    out = torch.empty(segments, length, reference.config.hidden_size)
    owner = encoding["segment_mask"].nonzero(as_tuple=True)[0]
    for doc in owner.unique():
        rows = (owner == doc).nonzero().flatten()
        seg = torch.arange(len(rows)).repeat_interleave(length)
        pos = torch.arange(length).repeat(len(rows))
        key_real = real[rows].flatten()
        allowed = (seg[:, None] == seg[None, :]) & key_real[None, :]
        if causal:
            allowed &= pos[None, :] <= pos[:, None]
        is_rep = pos == layout.positions[rows].repeat_interleave(length)
        allowed |= is_rep[:, None] & is_rep[None, :]
        mask = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
        states = reference(
            input_ids=ids[rows].flatten()[None], attention_mask=mask[None, None], position_ids=pos[None]
        ).last_hidden_state
        out[rows] = states[0].view(len(rows), length, -1)
    return out


@pytest.mark.parametrize("fixture,pooling", [("tiny_bert_dir", "mean"), ("tiny_llama_dir", "last")])
def test_segment_attention_matches_dense_mask_reference(fixture, pooling, request):
    directory = request.getfixturevalue(fixture)
    config = BiEncoderConfig(query_pooling=pooling, doc_pooling=pooling, doc_length=12,
                             segments={"aggregation": "sedr", "max_segments": 4, "segment_embeddings": False})
    model = BiEncoderModel.from_pretrained(directory, config=config).eval()
    encoding = model.tokenize_docs(DOCS)
    counts = encoding["segment_mask"].sum(1).tolist()
    assert counts[0] > 2 and counts[1] == 1 and counts[2] > 1
    layout = SegmentLayout.build(encoding["segment_mask"], encoding["attention_mask"], model.segments.representation)
    flat = {k: v for k, v in encoding.items() if k in ("input_ids", "attention_mask")}
    position_ids = torch.arange(flat["input_ids"].shape[1]).expand_as(flat["input_ids"])
    states = model.backbone(**flat, position_ids=position_ids, segment_layout=layout).last_hidden_state
    reference = AutoModel.from_pretrained(directory, attn_implementation="eager").eval()
    expected = dense_reference(reference, encoding, layout, causal=pooling == "last")
    real = encoding["attention_mask"].bool()
    torch.testing.assert_close(states[real], expected[real], atol=1e-5, rtol=1e-4)
    # gradients agree too (the training path)
    weights = torch.randn(expected[real].shape, generator=torch.Generator().manual_seed(0))
    (states[real] * weights).sum().backward()
    (expected[real] * weights).sum().backward()
    ours, theirs = dict(model.backbone.named_parameters()), dict(reference.named_parameters())
    for name, parameter in theirs.items():
        if parameter.grad is not None:
            torch.testing.assert_close(ours[name].grad, parameter.grad, atol=1e-4, rtol=1e-3, msg=name)
    # and the interaction is not a no-op: plain per-segment encoding differs on the long documents
    with torch.no_grad():
        plain = model.backbone(**flat, position_ids=position_ids).last_hidden_state
    assert not torch.allclose(plain[real], expected[real], atol=1e-4)
