"""The package's layout keeps the rules that make it walkable: no import circle, no module reaching into another
package's private module (or private name), no function over 60 lines.

Read from the source with `ast`: every import counts, those under `if TYPE_CHECKING:` and inside functions too,
since a reader follows them all.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support import ROOT

PACKAGE = ROOT / "fota_callbacks"
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its `__init__`'s name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def package_of(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def imports(module: str, path: Path) -> Iterator[tuple[str, str | None]]:
    """(module imported, name taken from it or None) for every import statement of `module`, made absolute."""
    base = package_of(module, path)
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                anchor = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                target = ".".join([*anchor, *([target] if target else [])])
            for alias in node.names:
                yield target, alias.name


def private_owner(target: str) -> str | None:
    """The package that owns the first private module along `target` (`a.b._c.d` -> `a.b`), or None."""
    parts = target.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return None


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_module_reaches_into_another_packages_private_module_or_name() -> None:
    known = modules()
    reaching = []
    for module, path in known.items():
        for target, name in imports(module, path):
            if not inside(target, "fota_callbacks"):
                continue
            owner = private_owner(target)
            if owner is not None and not inside(module, owner):
                reaching.append(f"{module} imports {target}")
            # A private name is its module's and its siblings': `from ..callbacks import _redacted` in cli/ is not.
            taken_from = known.get(target)
            private_name = private_owner(str(name)) == "" and f"{target}.{name}" not in known
            if private_name and taken_from is not None and package_of(module, path) != package_of(target, taken_from):
                reaching.append(f"{module} imports {name} from {target}")
    assert reaching == []


def test_there_is_no_import_circle() -> None:
    known = modules()
    graph: dict[str, set[str]] = {module: set() for module in known}
    for module, path in known.items():
        for target, name in imports(module, path):
            for candidate in (f"{target}.{name}" if name else None, target):
                if candidate in known and candidate != module:
                    graph[module].add(candidate)
                    break
    circles = []
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                circles.append(" -> ".join([*trail[trail.index(imported) :], imported]))
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_no_function_of_the_package_is_over_60_lines() -> None:
    long = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert long == []
