"""The scaling plot: indexing time and search latency as the collection grows (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot(results: list[dict[str, Any]], path: Path) -> Path | None:
    """Draw indexing time per system (left) and boltir's per-query search latency per index (right)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no plot (pip install matplotlib)")
        return None
    scaling = [r for r in results if r.get("row") == "scaling" and "error" not in r]
    systems = {(r["system"], r["precision"], r["device"]) for r in scaling}
    scaling += [r for r in results if r.get("row") == "indexing" and "error" not in r  # the full-corpus point
                and (r["system"], r["precision"], r["device"]) in systems]
    search = [r for r in results if r.get("row") == "search" and "error" not in r]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in sorted({_label(r) for r in scaling}):
        points = sorted((r["docs"], r["median_s"]) for r in scaling if _label(r) == label)
        left.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    left.set(xscale="log", yscale="log", xlabel="documents (SciFact, repeated)", ylabel="indexing time (s)",
             title="Indexing time")
    left.grid(True, which="both", alpha=0.3)
    if scaling:
        left.legend(fontsize=8)
    for kind in sorted({_kind(r) for r in search}):
        points = sorted((r["docs"], r["boltir_latency_ms"], r["raw_latency_ms"]) for r in search if _kind(r) == kind)
        line = right.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"boltir {kind}")[0]
        right.plot([p[0] for p in points], [p[2] for p in points], ls="--", color=line.get_color(), label=f"raw engine {kind}")
    right.set(xscale="log", yscale="log", xlabel="documents (synthetic)", ylabel="latency per query (ms)",
              title="Search latency (k=100, one query at a time)")
    right.grid(True, which="both", alpha=0.3)
    if search:  # no search rows: an empty panel, without a legend of nothing
        right.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def _label(result: dict[str, Any]) -> str:
    return f"{result['system']} {result['precision']} ({result['device']})"


def _kind(result: dict[str, Any]) -> str:
    return "IVF" if "IVF" in result["index"] else result["index"]
