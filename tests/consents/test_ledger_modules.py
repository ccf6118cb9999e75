"""The ledger package's modules depend one way: changes → rules → the paths that write → the
package's face. No module imports one later in that order (so none imports another in a cycle),
none imports the face, and none knows about HTTP requests (doors build the change context)."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import consents.ledger

PACKAGE = Path(consents.ledger.__file__).parent
LAYERS = ["changes", "rules", "postgres", "redaction", "locking", "batch", "sessions", "__init__"]


def imported_modules(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def ledger_imports(module: str) -> set[str]:
    """The ledger modules that `module` imports, by their short name ("" for the face)."""
    found = set()
    for name in imported_modules(module):
        if name == "consents.ledger":
            found.add("__init__")
        elif name.startswith("consents.ledger."):
            found.add(name.split(".")[2])
    return found & set(LAYERS)


def test_every_module_of_the_package_has_its_layer():
    assert sorted(path.stem for path in PACKAGE.glob("*.py")) == sorted(LAYERS)


@pytest.mark.parametrize("module", LAYERS)
def test_imports_run_one_way(module):
    earlier = set(LAYERS[: LAYERS.index(module)])
    assert ledger_imports(module) <= earlier


@pytest.mark.parametrize("module", LAYERS[:-1])
def test_no_module_knows_about_http(module):
    assert not any(name.startswith("django.http") for name in imported_modules(module))


@pytest.mark.parametrize("module", LAYERS[:-1])
def test_each_module_imports_alone(module):
    """Imported first, in a fresh interpreter: a cycle would fail on a half-initialised module."""
    code = (
        "import django; django.setup(); "
        f"import importlib; importlib.import_module('consents.ledger.{module}')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_face_exports_what_it_names():
    face = importlib.import_module("consents.ledger")
    assert all(hasattr(face, name) for name in face.__all__)
