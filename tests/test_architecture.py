"""The shape of src/boltir, read with ``ast``: packages import one way along the data flow, never in a loop, and
never from inside a function (only optional third-party packages may be imported lazily)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "boltir"

# Each package imports only from packages to its left (those in the same group do not import each other).
# boltir/__init__.py (the public API) sits above all of them.
LAYERS: list[set[str]] = [
    {"errors"},
    {"_io", "_config_files", "types"},  # atomic writes and config files raise boltir's own errors
    {"data"},
    {"models"},
    {"loss"},
    {"index"},
    {"eval"},
    {"modules"},
    {"callbacks"},
    {"trainer"},
    {"serve"},
    {"integrations"},
    {"cli", "pyterrier"},  # boltir.pyterrier: the short public name of integrations.pyterrier (issue 19)
]
RANK = {package: rank for rank, group in enumerate(LAYERS) for package in group}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[ast.AST, str, bool]]:
    """(node, imported boltir module or third-party name, inside a function?) for every import of a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).split(".") if path.name == "__init__.py" else _module_name(path).split(".")[:-1]
    found: list[tuple[ast.AST, str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package[: len(package) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                    if not child.module:  # `from . import x`: x may be a module
                        found.extend((child, f"{target}.{alias.name}", in_function) for alias in child.names)
                        continue
                else:
                    target = child.module or ""
                found.append((child, target, in_function))
            elif isinstance(child, ast.Import):
                found.extend((child, alias.name, in_function) for alias in child.names)
            visit(child, inside)

    visit(tree, False)
    return found


def _top(module: str) -> str | None:
    """The first-level package (or top-level module) of a boltir module name; None for boltir itself."""
    parts = module.split(".")
    return parts[1] if parts[0] == "boltir" and len(parts) > 1 else None


FILES = sorted(SRC.rglob("*.py"))


def _package_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in FILES:
        source = _top(_module_name(path))
        if source is None:
            continue
        for _, target, _ in _imports(path):
            top = _top(target) if target.startswith("boltir") else None
            if top is not None and top != source:
                edges.setdefault(source, set()).add(top)
    return edges


def test_every_package_has_a_layer():
    packages = {_top(_module_name(path)) for path in FILES} - {None}
    assert packages <= set(RANK), f"put {sorted(packages - set(RANK))} into LAYERS"


def test_packages_import_only_from_lower_layers():
    wrong = [
        f"{source} imports {target}"
        for source, targets in _package_edges().items()
        for target in targets
        if RANK[target] >= RANK[source]
    ]
    assert wrong == []


def test_no_import_cycles_between_packages():
    edges = _package_edges()
    state: dict[str, int] = {}  # 1: on the path, 2: done

    def cycle_from(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path, node, target]
            if target not in state:
                found = cycle_from(target, [*path, node])
                if found:
                    return found
        state[node] = 2
        return None

    for package in sorted(edges):
        if package not in state:
            assert cycle_from(package, []) is None


def test_no_function_level_imports_of_boltir_modules():
    lazy = [
        f"{path.relative_to(SRC.parent)}:{node.lineno} imports {target}"
        for path in FILES
        for node, target, in_function in _imports(path)
        if in_function and target.split(".")[0] == "boltir"
    ]
    assert lazy == []


@pytest.mark.parametrize("family", ["bi_encoder", "colbert", "cross_encoder", "light_retriever", "splade"])
def test_each_model_family_is_a_folder_with_config_and_model(family):
    folder = SRC / "models" / family
    assert (folder / "config.py").is_file() and (folder / "model.py").is_file()


def _lightning_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted Lightning name, for every ``import lightning...`` / ``from lightning... import X``."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lightning":
            names.update((alias.asname or alias.name, f"{node.module}.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update((alias.asname or alias.name, alias.name) for alias in node.names if alias.name.startswith("lightning"))
    return names


def _resolve(dotted: str) -> object | None:
    module, _, attribute = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError):
        try:
            return importlib.import_module(dotted)
        except ImportError:
            return None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_private_lightning_apis():
    # Lightning's private names (`_save_checkpoint`, `trainer._...`, `from lightning... import _x`) change without
    # notice between releases: boltir uses only its public hooks and attributes
    wrong = []
    for path in FILES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        lightning = _lightning_names(tree)
        where = f"{path.relative_to(SRC.parent)}"
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lightning":
                wrong += [f"{where}:{node.lineno} imports {a.name}" for a in node.names if _private(a.name)]
                wrong += [f"{where}:{node.lineno} imports from {node.module}"] if any(map(_private, node.module.split("."))) else []
            elif isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                named = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", "")
                is_super = isinstance(owner, ast.Call) and getattr(owner.func, "id", "") == "super"
                if is_super or named in {"trainer", "strategy", "pl_module", "lightning_module"} or named in lightning:
                    wrong.append(f"{where}:{node.lineno} uses .{node.attr}")
            elif isinstance(node, ast.ClassDef):
                bases = [_resolve(lightning[b.id] if isinstance(b, ast.Name) else f"{lightning.get(b.value.id, '')}.{b.attr}")
                         for b in node.bases if (isinstance(b, ast.Name) and b.id in lightning)
                         or (isinstance(b, ast.Attribute) and isinstance(b.value, ast.Name) and b.value.id in lightning)]
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and _private(item.name) and any(hasattr(b, item.name) for b in bases):
                        wrong.append(f"{where}:{item.lineno} overrides {node.name}.{item.name}")
    assert wrong == []
