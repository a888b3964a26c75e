"""The base model: every family runs its backbone with attention kept off cuDNN's per-shape plans."""

from __future__ import annotations

import pytest
import torch

from boltir import BiEncoderModule, ColBERTModule, CrossEncoderModule, SpladeModule


class _Spy(torch.nn.Module):
    """Wraps a backbone and records whether cuDNN attention was allowed while it ran."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.cudnn_allowed = backbone, []

    def forward(self, **inputs):
        self.cudnn_allowed.append(torch.backends.cuda.cudnn_sdp_enabled())
        return self.inner(**inputs)


@pytest.mark.parametrize(
    "module_class, fixture",
    [(BiEncoderModule, "tiny_bert_dir"), (ColBERTModule, "tiny_bert_dir"), (SpladeModule, "tiny_bert_mlm_dir"),
     (CrossEncoderModule, "tiny_bert_dir")],
)
def test_backbones_run_without_cudnn_attention(module_class, fixture, request):
    module = module_class(request.getfixturevalue(fixture))
    spy = _Spy(module.model.backbone)
    module.model.backbone = spy
    torch.backends.cuda.enable_cudnn_sdp(True)
    scores = module.score("capital of germany", ["berlin is the capital", "the moon causes the tide"]).scores
    assert torch.isfinite(scores).all()
    assert spy.cudnn_allowed and not any(spy.cudnn_allowed)
    assert torch.backends.cuda.cudnn_sdp_enabled()  # restored afterwards: the process's setting is not changed
