"""A stand-in for a model, so engines are tested on exactly the vectors a test makes."""

from __future__ import annotations


class StubModel:
    """What an indexer asks of a model: its representation, fingerprint and description."""

    def __init__(self, representation: str, dim: int) -> None:
        self.representation = representation
        self.dim = dim

    def describe(self) -> dict:
        return {"name_or_path": f"stub-{self.representation}"}

    def index_fingerprint(self) -> dict:
        return {"dim": self.dim, "similarity": "dot"}
