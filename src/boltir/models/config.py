"""The base of every model family's config: a dataclass saved as ``boltir_config.json`` beside the weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .._config_files import read_json_config
from ..errors import ConfigError

CONFIG_NAME = "boltir_config.json"
WEIGHTS_KEY = "weights_sha256"  # beside the options in the saved file: the weight files' hashes (see models.weights)

ConfigT = TypeVar("ConfigT", bound="BoltirConfig")


@dataclasses.dataclass
class BoltirConfig:
    """Hyper-parameters of a model family; the backbone's own config stays in the HF ``config.json``.

    Subclasses are dataclasses too; ``family`` names the model family in the saved file so that
    :func:`boltir.models.load_model` can rebuild the right class from a directory alone.
    """

    family: ClassVar[str] = "base"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values that cannot work; subclasses extend it."""

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls: type[ConfigT], values: dict[str, Any], source: str = "config") -> ConfigT:
        """Build a config, refusing options it does not have (a typo must not pass silently)."""
        values = dict(values)
        family = values.pop("family", cls.family)
        if family != cls.family:
            raise ConfigError(f"{source} is a '{family}' config, not a '{cls.family}' config.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown option(s) {unknown} for {cls.__name__}; valid options are {sorted(known)}."
            )
        return cls(**values)

    def replace(self: ConfigT, **changes: Any) -> ConfigT:
        """A copy with ``changes`` applied, checked like :meth:`from_dict`."""
        return type(self).from_dict({**dataclasses.asdict(self), **changes}, source=type(self).__name__)

    def save(self, directory: str | Path) -> None:
        path = Path(directory) / CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls: type[ConfigT], directory: str | Path) -> ConfigT:
        path = Path(directory) / CONFIG_NAME
        values = read_json_config(path)
        values.pop(WEIGHTS_KEY, None)  # not an option: the integrity record of the files beside it
        return cls.from_dict(values, source=str(path))


def read_family(directory: str | Path) -> str | None:
    """The family saved in ``directory``, or None for a plain HF / sentence-transformers directory."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        return None
    return read_json_config(path).get("family")
