"""The layers of docs/ARCHITECTURE.md hold: every module imports only layers below its own, and every
document named in the code and the tests is in the repository."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "src" / "lazyjack"

#: Layers from the top down; a module may import its own layer's package and the layers below.
#: (`cluster` drives the node commands on many nodes; `lab` runs it on its namespaces, so it is above.)
LAYERS: list[set[str]] = [
    {"__main__"},
    {"cli"},
    {"lab"},
    {"cluster"},
    {"commands"},
    {"steps"},
    {"render"},
    {"config"},
    {"host"},
    {"addresses", "errors", "__init__"},
]
#: The one edge across that the architecture names: the config edit writes through host.files.
ALLOWED_EXTRA = {("config", "host")}


def _layer_of(name: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if name in layer)


def _unit(module: Path) -> str:
    """The layer name of a module: its package under lazyjack, or its own name at the top."""
    parts = module.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(module: Path) -> set[str]:
    """The lazyjack layers a module imports, at the top, in functions or for type checking."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text())):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from lazyjack import x`: x is a module of the package, or a name of its __init__.
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "lazyjack" else [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] != "lazyjack":
                continue
            top = parts[1] if len(parts) > 1 else "__init__"
            is_module = (PACKAGE / top).is_dir() or (PACKAGE / f"{top}.py").is_file()
            found.add(top if is_module else "__init__")
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("module", MODULES, ids=[str(m.relative_to(PACKAGE)) for m in MODULES])
def test_a_module_imports_only_layers_below_its_own(module: Path) -> None:
    own = _unit(module)
    wrong = sorted(
        target for target in _imports(module) - {own}
        if _layer_of(target) <= _layer_of(own) and (own, target) not in ALLOWED_EXTRA
    )
    assert wrong == [], f"{module.relative_to(PACKAGE)} ({own}) imports {wrong}, which are not below it"


def test_every_layer_is_known() -> None:
    units = {_unit(m) for m in MODULES}
    assert units <= set().union(*LAYERS), units - set().union(*LAYERS)


DOC_NAME = re.compile(r"\b([\w./-]*[A-Za-z0-9_-]+\.md)\b")


def test_every_document_named_in_the_code_and_tests_is_in_the_repository() -> None:
    missing = []
    for path in sorted([*PACKAGE.rglob("*.py"), *(REPO / "tests").rglob("*.py"), *(REPO / "bench").rglob("*.py")]):
        for name in DOC_NAME.findall(path.read_text()):
            if not ((REPO / name).is_file() or (REPO / "docs" / name).is_file()):
                missing.append(f"{path.relative_to(REPO)}: {name}")
    assert missing == []
