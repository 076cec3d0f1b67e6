"""The package layout of docs/architecture.md: core under the domains, no cycles, no oversized modules."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pydenoise"
DOMAINS = ("seismic", "audio", "image")
LONG_MODULE_LINES = 500
LONG_MODULE_REASON = "Longer than 500 lines because"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST, parents: dict) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports_of(name: str) -> set[str]:
    """pydenoise modules that ``name`` imports when it runs (function-level imports included, TYPE_CHECKING
    blocks not); ``from package import submodule`` counts as importing the submodule."""
    tree = ast.parse(MODULES[name].read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pydenoise"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pydenoise"):
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def layer(name: str) -> str:
    """``facade`` (the top package), ``core``, a domain name, or ``cli``."""
    parts = name.split(".")
    return "facade" if len(parts) == 1 else parts[1]


def test_every_module_is_in_a_known_layer():
    assert {layer(name) for name in MODULES} == {"facade", "core", "cli", *DOMAINS}


def test_core_imports_no_domain_and_domains_import_no_other_domain():
    wrong = []
    for name, imported in GRAPH.items():
        allowed = {"core"} if layer(name) == "core" else {"core", layer(name)}
        if layer(name) in DOMAINS or layer(name) == "core":
            wrong += [f"{name} -> {m}" for m in imported if layer(m) not in allowed and m != "pydenoise"]
            wrong += [f"{name} -> the facade" for m in imported if m == "pydenoise"]
    assert not wrong, "layering broken:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    state, cycles = {}, []

    def visit(name, path):
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_graph_sees_imports():
    """The checks above mean something only if the graph holds the imports we know of."""
    assert "pydenoise.core.frames" in GRAPH["pydenoise.core.denoiser"]
    assert "pydenoise.core.streaming" in GRAPH["pydenoise.core.denoiser"]  # a function-level import
    assert "pydenoise.seismic.train" not in GRAPH["pydenoise.seismic.training_data"]  # TYPE_CHECKING only


@pytest.mark.parametrize("name", sorted(MODULES))
def test_long_modules_say_why(name):
    lines = MODULES[name].read_text().count("\n")
    docstring = ast.get_docstring(ast.parse(MODULES[name].read_text())) or ""
    assert lines <= LONG_MODULE_LINES or LONG_MODULE_REASON in docstring, (
        f"{name} has {lines} lines: split it, or say at its top '{LONG_MODULE_REASON} ...'"
    )
