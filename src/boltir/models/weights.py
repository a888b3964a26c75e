"""Integrity of a model directory's weight files: a damaged file is named in one line, not a traceback.

Every ``*.safetensors`` file's header is parsed before anything loads (cheap: the header only), which finds a
truncated or garbled file. A file that is corrupted but still parses cannot be found that way: boltir records
each weight file's SHA-256 in ``boltir_config.json`` when it saves a model, and ``verify=True`` on load checks them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from safetensors import SafetensorError, safe_open

from .._config_files import read_json_config
from ..errors import ConfigError, DamagedFileError
from .config import CONFIG_NAME, WEIGHTS_KEY


def weight_files(directory: Path) -> list[Path]:
    """The directory's safetensors files, its sub-directories' too (a bi-encoder's ``query_encoder/``)."""
    return sorted(directory.rglob("*.safetensors"))


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def record_weight_hashes(directory: Path) -> dict[str, str]:
    """Add every weight file's SHA-256 to the ``boltir_config.json`` that saving the model wrote."""
    hashes = {path.relative_to(directory).as_posix(): file_sha256(path) for path in weight_files(directory)}
    config = directory / CONFIG_NAME
    values = read_json_config(config)
    values[WEIGHTS_KEY] = hashes
    config.write_text(json.dumps(values, indent=2, sort_keys=True) + "\n")
    return hashes


def check_weights(directory: Path, verify: bool = False) -> None:
    """Raise :class:`DamagedFileError` naming the first weight file that does not parse or, with ``verify``,
    whose SHA-256 differs from the one recorded when boltir saved the model."""
    for path in weight_files(directory):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as exc:
            reason = str(exc).removeprefix("Error while deserializing header: ")
            raise DamagedFileError(
                f"model weights at {path} are damaged ({reason}): download or save the model again."
            ) from None
    if not verify:
        return
    config = directory / CONFIG_NAME
    recorded = read_json_config(config).get(WEIGHTS_KEY) if config.is_file() else None
    if not recorded:
        raise ConfigError(
            f"{directory} records no SHA-256 of its weights (boltir records them when it saves a model): load it "
            "without verify=True, or save it with boltir first."
        )
    for name, expected in sorted(recorded.items()):
        path = directory / name
        if not path.is_file():
            raise DamagedFileError(f"model weights at {path} are missing (saved with the model, recorded in {config}).")
        actual = file_sha256(path)
        if actual != expected:
            raise DamagedFileError(
                f"model weights at {path} are damaged (SHA-256 {actual[:16]}... differs from {expected[:16]}... recorded "
                f"in {config} when boltir saved it): download or save the model again."
            )


__all__ = ["check_weights", "file_sha256", "record_weight_hashes", "weight_files"]
