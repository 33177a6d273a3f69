"""The package's import graph: no cycles (module-level or inside functions)."""

import ast

from conftest import REPO

PACKAGE = REPO / "workflow" / "scaling_atlas"


def modules() -> dict[str, object]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → the package modules it imports anywhere in its source (``from pkg import sub``
    counts as importing ``pkg.sub`` when that is a module)."""
    mods = modules()
    graph = {}
    for name, path in mods.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = (".".join(package[:len(package) - node.level + 1] + [node.module or ""])
                        .rstrip(".") if node.level else node.module or "")
                found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base
                          for a in node.names}
        graph[name] = {m for m in found if m in mods and m != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_checker_finds_a_constructed_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    graph = import_graph()
    assert "scaling_atlas.config" in graph and "scaling_atlas.studies" in graph["scaling_atlas.cli"]
    assert cycles(graph) == []
    # configuration knows nothing of the studies; the registry validates them
    assert not {m for m in graph["scaling_atlas.config"] if m.startswith("scaling_atlas.studies")}


#: the training studies, whose trainers live in ``scaling_atlas.train`` and friends and are
#: imported by ``train_shard`` only (issue #22): their analysis runs without PyTorch
TORCH_FREE_TRAINING_KINDS = ("superposition", "matrix_sensing", "compute_optimal", "superposition_lm",
                             "emergence", "resolution", "data_selection")


def test_the_analysis_modules_and_every_study_module_load_without_torch():
    """A fit, figure or claims job imports its study module and the analysis package; none of
    them needs PyTorch (a trainer is imported by train_shard only)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "import scaling_atlas.atomic, scaling_atlas.claims, scaling_atlas.cubes\n"
            "import scaling_atlas.figures, scaling_atlas.laws, scaling_atlas.workflow_io\n"
            "from scaling_atlas.studies import study_class\n"
            "from scaling_atlas.studies import KINDS\n"
            "for kind in KINDS:\n"
            "    study_class(kind)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
