"""boltir's Rich progress bar names the epoch without Lightning's 'Epoch 0/-2' when only max_steps limits training."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from boltir.callbacks.progress import ProgressBar


@pytest.mark.parametrize(("max_epochs", "expected"), [(-1, "Epoch 3"), (None, "Epoch 3"), (5, "Epoch 3/4")])
def test_epoch_description_has_no_negative_limit(max_epochs, expected):
    bar = ProgressBar()
    text = bar.epoch_description(SimpleNamespace(max_epochs=max_epochs, current_epoch=3))
    assert text.strip() == expected and len(text) >= len("Validation")
