"""`encoderscope serve`: run the Streamlit app from wherever Encoderscope is installed.

The app (app.py, views/, components/, .streamlit/config.toml) is found beside this package: in a checkout it is
the repository itself; in an installed wheel it is the data folder `encoderscope_app/` next to `encoderscope/`
(pyproject.toml maps it there without moving a file). `streamlit run <app>/app.py` then runs with the app folder
as its working directory, so Streamlit reads the app's `.streamlit/config.toml` and puts the folder first on
`sys.path` (`import components` is the app's own). Streamlit is never imported here: the command replaces this
process with `python -m streamlit run ...` (a child process where `exec` is not available).

Everything is checked before Streamlit starts, each failure a :class:`ServeError` with one clear message: a busy
port, a missing `--atlas-dir` / `--models-dir` folder, a bad `ENCODERSCOPE_*` value, no Streamlit installed.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from . import __version__, settings
from .errors import UserFacingError

APP_FOLDER = "encoderscope_app"  # the app's folder inside the wheel, beside encoderscope/
# settings holding a path: made absolute here, because the server runs in the app's folder, not the caller's
PATH_SETTINGS = ("ENCODERSCOPE_ATLAS_DIR", "ENCODERSCOPE_MODELS_DIR", "ENCODERSCOPE_CACHE_DIR")


class ServeError(UserFacingError):
    """`encoderscope serve` cannot start; the message says why and what to do."""


def add_parser(sub) -> None:
    """Add `serve` to the subcommands `sub` of the main parser."""
    p = sub.add_parser("serve", help="serve the Encoderscope web app (Streamlit) from this installation",
                       description="Serve the Encoderscope web app. Every ENCODERSCOPE_* variable is honoured; "
                       "the options below set the common ones.")
    p.add_argument("--port", type=int, default=8501, help="TCP port (default 8501); it must be free")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1, this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--public", action="store_true",
                   help="public-deployment defaults: curated models only, no local paths, lower limits "
                   "(sets ENCODERSCOPE_PUBLIC=1)")
    p.add_argument("--atlas-dir", default=None, help="folder of built atlases the Atlas page lists "
                   "(sets ENCODERSCOPE_ATLAS_DIR; it must exist)")
    p.add_argument("--models-dir", default=None, help="folder scanned for local models and VAEs "
                   "(sets ENCODERSCOPE_MODELS_DIR; it must exist)")


def app_dir() -> Path:
    """The folder holding app.py, views/ and components/: this checkout, else the installed `encoderscope_app/`."""
    parent = Path(__file__).resolve().parents[1]
    for folder in (parent, parent / APP_FOLDER):
        if (folder / "app.py").is_file() and (folder / "components" / "__init__.py").is_file():
            return folder
    raise ServeError(f"The Encoderscope app is not installed beside {parent / 'encoderscope'} (no app.py there or "
                     f"in {APP_FOLDER}/): reinstall the package from its wheel or run from the repository.")


def environment(args: argparse.Namespace, base: Mapping[str, str] | None = None,
                cwd: Path | None = None) -> dict[str, str]:
    """The server's environment: `base` (default os.environ) plus what the options set, with path settings made
    absolute against `cwd` (default the current folder) and each given folder checked. Raises ServeError."""
    env = dict(os.environ if base is None else base)
    cwd = Path.cwd() if cwd is None else cwd
    if args.public:
        env["ENCODERSCOPE_PUBLIC"] = "1"
    for option, key in ((args.atlas_dir, "ENCODERSCOPE_ATLAS_DIR"), (args.models_dir, "ENCODERSCOPE_MODELS_DIR")):
        if option is not None:
            folder = (cwd / Path(option).expanduser()).resolve()
            if not folder.is_dir():
                what = "atlas" if key.endswith("ATLAS_DIR") else "models"
                hint = " (build one with `encoderscope atlas build ... --out DIR`)" if what == "atlas" else ""
                raise ServeError(f"The {what} folder {option!r} does not exist or is not a folder{hint}.")
            env[key] = str(folder)
    for key in PATH_SETTINGS:
        if env.get(key):
            env[key] = str((cwd / Path(env[key]).expanduser()).resolve())
    try:
        settings.load(env)  # a bad ENCODERSCOPE_* value fails here, not in the first user's page
    except ValueError as err:
        raise ServeError(str(err)) from None
    # Streamlit runs each session in a thread; glibc's per-thread arenas would let the resident memory creep.
    env.setdefault("MALLOC_ARENA_MAX", "2")
    return env


def check_port(host: str, port: int) -> None:
    """Raise ServeError unless `host:port` can be bound now (checked before Streamlit starts, which would
    otherwise fail after its banner or move to another port)."""
    if not 1 <= port <= 65535:
        raise ServeError(f"--port {port} is not a TCP port (1 to 65535).")
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ServeError(f"--host {host!r} is not an address of this machine: {err.strerror}.") from None
    bound = 0
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # as the server will: a port left in TIME_WAIT by a stopped server is free, one with a listener is not
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except PermissionError:
                raise ServeError(f"Port {port} needs more privileges on this machine; pick one above 1023 "
                                 "with --port.") from None
            except OSError as err:
                if err.errno != errno.EADDRINUSE:  # e.g. ::1 on a machine without IPv6: the other family decides
                    continue
                raise ServeError(f"Port {port} on {host} is already in use: another server runs there. Stop it "
                                 "or pick another port with --port.") from None
            bound += 1
    if not bound:
        raise ServeError(f"--host {host!r} is not an address of this machine.")


def command(app: Path, host: str, port: int, env: Mapping[str, str]) -> list[str]:
    """`python -m streamlit run <app>/app.py` with the address, the port and the upload limit of the settings
    (ENCODERSCOPE_MAX_UPLOAD_MB, lower in public mode: the limit Streamlit itself enforces)."""
    upload_mb = settings.load(dict(env)).max_upload_mb
    return [sys.executable, "-m", "streamlit", "run", str(app / "app.py"), "--server.address", host,
            "--server.port", str(port), "--server.headless", "true", "--server.maxUploadSize", str(upload_mb)]


def run(args: argparse.Namespace) -> int:
    """Check everything, then become the Streamlit server (returns only on failure, or where exec is missing)."""
    try:
        env = environment(args)
        app = app_dir()
        if importlib.util.find_spec("streamlit") is None:
            raise ServeError("Streamlit is not installed in this Python environment: `pip install streamlit`.")
        check_port(args.host, args.port)
    except ServeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    argv = command(app, args.host, args.port, env)
    shown = "localhost" if args.host in ("0.0.0.0", "::") else args.host
    print(f"Encoderscope {__version__}: http://{shown}:{args.port} (app in {app})", flush=True)
    sys.stderr.flush()
    os.chdir(app)
    if os.name == "posix":  # one process: Ctrl-C and a supervisor's SIGTERM reach Streamlit itself
        os.execve(sys.executable, argv, env)
    return subprocess.call(argv, env=env)

