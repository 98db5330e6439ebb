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
