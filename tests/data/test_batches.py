"""Page-locking of tokenised batches before their copy to a GPU."""

from __future__ import annotations

import torch

from boltir.data.batches import pin_encoding, pin_tensor
from boltir.models.layers.packing import PackedTokens


def test_tensors_already_on_a_device_are_not_pinned_again():
    """Lightning moves the DataLoader's batches to the GPU before predict_step: pinning those would fail
    (a 'meta' tensor stands in for a GPU one here; pinning either raises)."""
    on_device = torch.zeros(2, 3, dtype=torch.long, device="meta")
    assert pin_tensor(on_device) is on_device
    encoding = {"input_ids": on_device, "attention_mask": on_device}
    assert pin_encoding(encoding) == encoding
    packed = PackedTokens({"input_ids": on_device}, torch.zeros(2, dtype=torch.int32, device="meta"), 3)
    pinned = packed.pin_memory()
    assert pinned.inputs["input_ids"] is on_device and pinned.cu_seqlens is packed.cu_seqlens
