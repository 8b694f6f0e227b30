"""`python -m encoderscope embed` on a real CSV with the bundled model."""

import subprocess
import sys

import numpy as np
import pandas as pd


def test_embed_cli(tmp_path):
    csv = tmp_path / "corpus.csv"
    csv.write_text("sentence;topic\nThe striker scored.;sports\nStocks fell.;finance\n\n", encoding="utf-8")
    out = tmp_path / "emb.npy"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "encoderscope",
            "embed",
            str(csv),
            "--text-column",
            "sentence",
            "--label-column",
            "topic",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    vectors = np.load(out, allow_pickle=False)
    assert vectors.shape == (2, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    meta = pd.read_csv(out.with_suffix(".meta.csv"))
    assert meta["label"].tolist() == ["sports", "finance"]


def test_cli_bad_column(tmp_path):
    csv = tmp_path / "c.csv"
    csv.write_text("a\nx\n")
    run = subprocess.run(
        [sys.executable, "-m", "encoderscope", "embed", str(csv), "--out", str(tmp_path / "o.npy")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 2 and "no column 'text'" in run.stderr


def test_run_cli_is_every_commands_error_path(capsys):
    # Bugs: a user's mistake shown as a traceback, Ctrl-C reported as a crash (status 1) or silently as success,
    # the command's own exit status lost, or a real bug (not a UserFacingError) hidden behind "error:".
    import pytest

    from encoderscope.cli import run_cli
    from encoderscope.errors import UserFacingError

    assert run_cli(lambda: 3, interrupted="x") == 3 and capsys.readouterr().err == ""

    def refuse() -> int:
        raise UserFacingError("The corpus has no column 'text'.")

    assert run_cli(refuse, interrupted="x") == 2
    assert capsys.readouterr().err == "error: The corpus has no column 'text'.\n"

    def stop() -> int:
        raise KeyboardInterrupt

    assert run_cli(stop, interrupted="nothing was written") == 130
    assert capsys.readouterr().err == "interrupted: nothing was written\n"

    def bug() -> int:
        raise TypeError("a bug")

    with pytest.raises(TypeError, match="a bug"):
        run_cli(bug, interrupted="x")
