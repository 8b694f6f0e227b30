"""Scan the project's own code for forbidden patterns (see SECURITY.md)."""

import ast
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
            shipped = "tests" not in rel.parts
            if _is_true(_kw(node, "allow_pickle")) and (shipped or name == "load"):
                # Tests may *write* pickled .npy files (hostile fixtures); nothing may load one.
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
    """Every np.load in shipped code says allow_pickle=False explicitly (older numpy defaulted to True)."""
    loads = []
    for path in SOURCES:
        rel = path.relative_to(ROOT)
        if "tests" in rel.parts:
            continue
        for node, name, owner in _calls(ast.parse(path.read_text(), filename=str(path))):
            if name == "load" and owner in ("np", "numpy"):
                loads.append(rel)
                value = _kw(node, "allow_pickle")
                assert isinstance(value, ast.Constant) and value.value is False, f"{rel}:{node.lineno} np.load without allow_pickle=False"
    assert loads, "expected at least one np.load in shipped code (the .npy upload)"
