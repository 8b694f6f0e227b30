"""Data the feature tests share: a random SAE with exact shapes, planted sparse data, and a small real corpus
(the first lines of the Python standard library's docstrings, labelled by module: real text, offline)."""

from __future__ import annotations

import importlib
import inspect

import numpy as np

from encoderscope.features import SAE

STDLIB = ["os", "re", "json", "math", "random", "datetime", "pathlib", "shutil", "subprocess", "socket", "string",
          "collections", "itertools", "functools", "statistics", "decimal", "fractions", "hashlib", "zipfile",
          "tarfile", "csv", "sqlite3", "logging", "threading", "asyncio", "argparse", "textwrap", "unittest",
          "inspect", "typing", "email.message", "http.client", "urllib.parse", "xml.dom.minidom", "heapq", "bisect",
          "calendar", "time", "ssl", "tempfile", "gzip", "base64", "struct", "array", "difflib", "pickle", "copy",
          "io", "codecs", "locale", "gettext", "cmath", "operator", "contextlib", "abc", "enum", "dataclasses"]


def random_sae(D: int = 16, F: int = 40, k: int = 5, seed: int = 0) -> SAE:
    """An untrained SAE with unit decoder rows and a nonzero bias (so no term can hide in a zero)."""
    rng = np.random.default_rng(seed)
    W_dec = rng.normal(size=(F, D)).astype(np.float32)
    W_dec /= np.linalg.norm(W_dec, axis=1, keepdims=True)
    return SAE(rng.normal(size=(D, F)).astype(np.float32), (0.1 * rng.normal(size=F)).astype(np.float32), W_dec,
               (0.3 * rng.normal(size=D)).astype(np.float32), k)


def planted(n: int = 2000, D: int = 32, atoms: int = 64, active: int = 3, seed: int = 0) -> np.ndarray:
    """`[n, D]` float32: each row a positive mix of `active` of `atoms` random unit directions."""
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(atoms, D))
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    ids = np.stack([rng.choice(atoms, active, replace=False) for _ in range(n)])
    return (A[ids] * rng.uniform(0.5, 1.5, (n, active, 1))).sum(axis=1).astype(np.float32)


def stdlib_docs(limit: int | None = None, modules: list[str] = STDLIB) -> tuple[list[str], list[str]]:
    """(texts, labels): the first line of the docstring of each public function, class and method of `modules`
    (at least 5 words, deduplicated), labelled with its module."""
    texts, labels, seen = [], [], set()
    for name in modules:
        module = importlib.import_module(name)
        objects = [getattr(module, a, None) for a in sorted(dir(module)) if not a.startswith("_")]
        for obj in list(objects):
            if inspect.isclass(obj):
                objects += [getattr(obj, a, None) for a in sorted(vars(obj)) if not a.startswith("_")]
        for obj in objects:
            doc = inspect.getdoc(obj) if callable(obj) else None
            line = doc.strip().split("\n")[0].strip() if doc else ""
            if len(line.split()) >= 5 and line not in seen:
                seen.add(line)
                texts.append(line)
                labels.append(name.split(".")[0])
    return (texts[:limit], labels[:limit]) if limit else (texts, labels)
