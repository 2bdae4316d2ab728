"""The import graph of ``cinn/apps/`` and ``cinn/`` runs one way: no cycles, counting the
imports inside functions too (a cycle hidden by a function-local import is still one)."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cinn",)


def _modules():
    """``{dotted name: path}`` of every module of the packages."""
    mods = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


def import_graph():
    """``{module: {modules it imports}}`` (anywhere in the file; only our packages)."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = name.split(".")[: len(name.split(".")) - node.level + int(is_pkg)]
                    base = ".".join(up + ([base] if base else []))
                # ``from pkg import mod`` imports the module pkg.mod, else names of pkg
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                           for a in node.names]
            else:
                continue
            deps.update(t for t in targets if t in mods and t != name)
        graph[name] = deps
    return graph


def find_cycle(graph):
    """One cycle as a list of modules, or ``None``."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_finder_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    graph = import_graph()
    assert "cinn.apps.superres.infer" in graph["cinn.apps.superres.evaluate"]
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_evaluate_entry_points():
    """``cinn evaluate APP`` calls ``cinn.apps.APP.evaluate.run``; every app has one."""
    graph = import_graph()
    for app in ("colorization", "superres", "inpainting"):
        assert f"cinn.apps.{app}.evaluate" in graph
        assert f"cinn.apps.{app}.cli" not in graph[f"cinn.apps.{app}.evaluate"]


def _layer(module):
    """0: the library, 1: the apps, 2: the command line and the demo."""
    parts = module.split(".")
    if module == "cinn.cli" or parts[-1] in ("cli", "export_cli") or parts[:3] == [
            "cinn", "apps", "demo"]:
        return 2
    return 1 if parts[:2] == ["cinn", "apps"] else 0


def test_layers_import_one_way():
    """The library never imports the apps, the apps never the command line."""
    graph = import_graph()
    wrong = sorted(f"{mod} -> {dep}" for mod, deps in graph.items() for dep in deps
                   if _layer(dep) > _layer(mod)
                   and not (mod == "cinn.apps" and dep.startswith("cinn.apps.")))
    assert not wrong, "imports against the layers: " + ", ".join(wrong)


def test_nothing_installs_outside_cinn():
    """The wheel holds one top-level package: ``cinn`` (pyproject's package list)."""
    text = (ROOT / "pyproject.toml").read_text()
    assert 'include = ["cinn*"]' in text
    assert not (ROOT / "apps").exists()
