"""The import layers hold: imports only point down, core < data/render/diffusion < pipeline < cli/ui,
and Qt lives in app/ui/ only. Reads every import in app/ (module level and inside functions)."""

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"

# Rank of each part of app/ (a module may import its own rank and below). The shared helpers at
# rank 0 (atomic writes, argument types, the device resolver, paths) import nothing above them.
RANKS = {
    "atomic": 0, "arguments": 0, "device": 0, "paths": 0,
    "core": 1,
    "data": 2, "render": 2, "diffusion": 2,
    "pipeline": 3, "project": 3, "batch": 3, "interactive": 3, "train": 3, "eval": 3,
    "cli": 4, "__main__": 4, "ui": 4,
}
QT_MODULES = ("PySide6", "shiboken6", "pyqtgraph")


def part(module: str) -> str:
    """'app.render.frames' -> 'render'."""
    return module.split(".")[1]


def app_imports():
    """(importing module, imported module, line) for every import of app.* in app/."""
    for path in sorted(APP.rglob("*.py")):
        module = ".".join(("app",) + path.relative_to(APP).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield module, node.module, node.lineno, path
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    yield module, alias.name, node.lineno, path


def test_every_part_of_app_has_a_rank():
    parts = {path.stem if path.is_file() else path.name for path in APP.iterdir()
             if (path.suffix == ".py" or path.is_dir()) and path.name not in ("__init__.py", "__pycache__")}
    assert parts <= set(RANKS), f"give these a layer in RANKS: {sorted(parts - set(RANKS))}"


def test_imports_only_point_down():
    upward = []
    for module, imported, line, path in app_imports():
        if module.count(".") < 1 or not imported.startswith("app.") or module == "app.__init__":
            continue
        if RANKS[part(imported)] > RANKS[part(module)]:
            upward.append(f"{path.relative_to(APP.parent)}:{line} {module} imports {imported}")
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_qt_only_in_the_studio():
    outside = [f"{path.relative_to(APP.parent)}:{line} imports {imported}"
               for module, imported, line, path in app_imports()
               if imported.split(".")[0] in QT_MODULES and not module.startswith("app.ui")]
    assert not outside, "Qt outside app/ui/:\n" + "\n".join(outside)
