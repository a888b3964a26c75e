"""The public namespace: every name in ``boltir.__all__`` comes from ``_EXPORTS`` and imports, and nothing heavy
loads with ``import boltir``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import boltir

SRC = Path(__file__).resolve().parents[1] / "src"


def test_all_is_exactly_the_exported_names():
    exported = [name for names in boltir._EXPORTS.values() for name in names]
    assert all(isinstance(names, tuple) for names in boltir._EXPORTS.values())  # ("X") would be a str
    assert len(exported) == len(set(exported))
    assert sorted(exported) == boltir.__all__


@pytest.mark.parametrize("name", boltir.__all__)
def test_each_public_name_imports_from_its_module(name):
    value = getattr(boltir, name)
    assert getattr(value, "__name__", name) == name
    assert name in dir(boltir)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchThing'"):
        boltir.NoSuchThing  # noqa: B018


def test_import_boltir_loads_neither_torch_nor_lightning():
    code = "import sys, boltir; print(sorted({'torch', 'lightning', 'transformers'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
