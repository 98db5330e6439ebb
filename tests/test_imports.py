"""Imports flow one way: pipelines/ -> components/ -> avca_tf/ (the library).

Only the command-line adapters (avca_tf/commands/, avca_tf/cli.py) stand above
everything and may import pipelines/ and components/.
"""
import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def imported_modules(path: Path):
    """(line, module) of every absolute import in a Python file."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:   # `from avca_tf import commands`
                yield node.lineno, f"{node.module}.{alias.name}"


def layer(path: Path) -> str:
    rel = path.relative_to(REPO).as_posix()
    if rel.startswith("avca_tf/commands/") or rel == "avca_tf/cli.py":
        return "cli"
    return rel.split("/")[0]


def forbidden(importer: str, module: str) -> bool:
    top = module.split(".")[0]
    if importer == "components":
        return top == "pipelines" or module.startswith(("avca_tf.commands", "avca_tf.cli"))
    if importer == "avca_tf":
        return top in ("pipelines", "components") or module == "avca_tf.cli" \
            or module.startswith(("avca_tf.commands", "avca_tf.cli."))
    return False


def upward_imports(files):
    """One message per offending import statement."""
    found = {}
    for f in files:
        for line, module in imported_modules(f):
            if forbidden(layer(f), module):
                found.setdefault((str(f.relative_to(REPO)), line), module)
    return [f"{name}:{line} imports {module}" for (name, line), module in found.items()]


def test_no_module_imports_upward():
    files = [f for d in ("avca_tf", "components", "pipelines") for f in (REPO / d).rglob("*.py")]
    assert len(files) > 40
    assert upward_imports(files) == []


def test_the_check_catches_an_upward_import(monkeypatch):
    """The rule itself: a library module importing the TFX assembly is reported."""
    lib = REPO / "avca_tf" / "data" / "_upward_probe.py"
    comp = REPO / "components" / "_upward_probe.py"
    cli_mod = REPO / "avca_tf" / "commands" / "_upward_probe.py"
    sources = {lib: "from pipelines.pipeline_config import PipelineConfig\n"
                    "import avca_tf.commands.train\n",
               comp: "from pipelines import tfx_pipeline\n",
               cli_mod: "from pipelines.local_runner import run_local\n"}
    original = Path.read_text
    monkeypatch.setattr(Path, "read_text",
                        lambda self, *a, **k: sources[self] if self in sources
                        else original(self, *a, **k))
    found = upward_imports(list(sources))
    assert found == ["avca_tf/data/_upward_probe.py:1 imports pipelines.pipeline_config",
                     "avca_tf/data/_upward_probe.py:2 imports avca_tf.commands.train",
                     "components/_upward_probe.py:1 imports pipelines"]


# ------------------------------------------------------------ layers inside avca_tf
# Bottom first. A module belongs to the longest entry naming it or a package above it
# (entries are module paths under avca_tf); it may import its own layer and the ones
# below, never one above. docs/ARCHITECTURE.md ("Layers") shows the same list, top first.
LAYERS = [
    ("errors", "io_utils", "locking", "safe_load"),
    ("config",),
    ("metrics",),
    ("data", "data.formats", "data.text"),
    ("data.batching", "data.synthesis", "media"),
    ("models",),
    ("inputs",),
    ("training",),
    ("beam",),
    ("evaluation", "serving"),
    ("api", "commands", "cli"),
]
TOP = len(LAYERS) - 1   # the avca_tf package itself (`import avca_tf as avca`)


def library_modules(root: Path = REPO) -> dict:
    """{dotted module name: path} of every module of avca_tf (packages by their name)."""
    mods = {}
    for f in (root / "avca_tf").rglob("*.py"):
        parts = f.relative_to(root).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return mods


def import_graph(sources: dict) -> dict:
    """{module: set of avca_tf modules it imports, at any depth of its code} from
    {module: source text}; `from pkg import mod` counts as importing pkg.mod."""
    def resolve(name):
        while name and name not in sources:
            name = name.rpartition(".")[0]
        return name
    graph = {}
    for mod, text in sources.items():
        deps = set()
        for node in ast.walk(ast.parse(text, mod)):
            if isinstance(node, ast.Import):
                deps |= {resolve(a.name) for a in node.names if a.name.startswith("avca_tf.")}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and (node.module + ".").startswith("avca_tf."):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    deps.add(full if full in sources else resolve(node.module))
        graph[mod] = deps - {mod, "avca_tf", ""}
    return graph


def layer_of(module: str):
    if module == "avca_tf":
        return TOP
    rel = module.removeprefix("avca_tf.")
    best = None
    for level, names in enumerate(LAYERS):
        for name in names:
            if (rel == name or rel.startswith(name + ".")) and \
                    (best is None or len(name) > len(best[1])):
                best = (level, name)
    return None if best is None else best[0]


def layer_violations(graph: dict) -> list:
    found = [f"{m} is in no layer: add it to LAYERS (tests/test_imports.py) and "
             "docs/ARCHITECTURE.md" for m in sorted(graph) if layer_of(m) is None]
    for mod in sorted(graph):
        for dep in sorted(graph[mod]):
            if None not in (layer_of(mod), layer_of(dep)) and layer_of(dep) > layer_of(mod):
                found.append(f"{mod} imports {dep}, a higher layer")
    return found


def import_circles(graph: dict) -> list:
    """Every strongly connected set of modules (Tarjan), as sorted lists."""
    index, low, stack, on, circles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                circles.append(sorted(comp))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(circles)


def library_graph():
    return import_graph({m: p.read_text() for m, p in library_modules().items()})


def test_no_import_circle_inside_the_library():
    assert import_circles(library_graph()) == []


def test_library_imports_follow_the_layer_order():
    assert layer_violations(library_graph()) == []


def test_the_layer_checks_catch_a_circle_and_an_upward_import():
    sources = {"avca_tf.data.formats.a": "from avca_tf.data.formats import b\n",
               "avca_tf.data.formats.b": "def f():\n    import avca_tf.data.formats.a\n",
               "avca_tf.models.m": "from avca_tf.training.trainer import Trainer\n",
               "avca_tf.training.trainer": "Trainer = 1\n",
               "avca_tf.newpkg.x": "import numpy\n"}
    graph = import_graph(sources)
    assert import_circles(graph) == [["avca_tf.data.formats.a", "avca_tf.data.formats.b"]]
    assert layer_violations(graph) == [
        "avca_tf.newpkg.x is in no layer: add it to LAYERS (tests/test_imports.py) and "
        "docs/ARCHITECTURE.md",
        "avca_tf.models.m imports avca_tf.training.trainer, a higher layer"]


def test_architecture_doc_shows_the_layer_order():
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    block = text.split("<!-- layers: tests/test_imports.py LAYERS -->\n```\n", 1)[1]
    lines = block.split("```", 1)[0].splitlines()
    shown = [tuple(line.split("|", 1)[0].split()) for line in lines if line.strip()]
    assert shown == list(reversed(LAYERS))
