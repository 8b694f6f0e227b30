"""Scan the project's own code for forbidden patterns (see SECURITY.md)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("encoderscope", "components", "views", "bench", "tests") for p in (ROOT / d).rglob("*.py")]
SOURCES += [ROOT / "app.py"]
THIS = Path(__file__).resolve()


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
            yield node, name, owner


def _kw(node, name):
    return next((k.value for k in node.keywords if k.arg == name), None)


def _is_true(value) -> bool:
    return isinstance(value, ast.Constant) and value.value is True


def test_sources_found():
    assert len(SOURCES) > 10


def test_no_forbidden_calls():
    problems = []
    for path in SOURCES:
        if path.resolve() == THIS:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        rel = path.relative_to(ROOT)
        for node, name, owner in _calls(tree):
            where = f"{rel}:{node.lineno}"
            if _is_true(_kw(node, "trust_remote_code")):
                problems.append(f"{where} trust_remote_code=True")
            if name == "load" and owner == "torch" and not _is_true(_kw(node, "weights_only")):
                problems.append(f"{where} torch.load without weights_only=True")
            if _is_true(_kw(node, "allow_pickle")):
                problems.append(f"{where} allow_pickle=True")
            bare = isinstance(node.func, ast.Name) or owner == "builtins"  # model.eval() is fine
            if name in ("eval", "exec") and bare:
                problems.append(f"{where} {name}()")
            if _kw(node, "unsafe_allow_html") is not None and not isinstance(_kw(node, "unsafe_allow_html"), ast.Constant):
                problems.append(f"{where} unsafe_allow_html with a computed value")
            if _is_true(_kw(node, "unsafe_allow_html")):
                # Only constant strings may be rendered as HTML; anything computed could carry user text.
                if not node.args or not isinstance(node.args[0], ast.Constant):
                    problems.append(f"{where} unsafe_allow_html=True on a non-constant string")
    assert problems == []


def test_numpy_loads_refuse_pickles():
    for path in SOURCES:
        text = path.read_text()
        for match in re.finditer(r"np\.load\((?P<args>[^)]*)\)", text):
            if path.resolve() != THIS and "tests" not in path.parts:
                assert "allow_pickle=False" in match.group("args"), f"{path.relative_to(ROOT)}: {match.group(0)}"
