"""``netwrap-cni``'s own commands, for a person: write a fast launcher into a CNI plugin directory, or show
the helper.

A runtime finds a plugin by its ``type`` in its plugin directory and starts it
for every call. What is written there (``netwrap`` by default) is, when a C
compiler (``cc``) is on the machine, a small compiled client
(``netwrap/cni/client.c``): it hands the call to the warm helper without
starting an interpreter, and starts the Python client, exactly as the text
launcher does, whenever no helper takes the call. Otherwise (or with
``--launcher python``) it is a text launcher that runs the interpreter netwrap
is installed with, without ``site`` (``-I -S``), with the folders of netwrap
and its dependencies named in it: the few milliseconds Python needs to start,
instead of the tens ``site`` and the package lookup take. A symbolic link to
``netwrap-cni`` works too, only slower to start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Literal

import attrs
import tenacity

from netwrap.cni import client

LAUNCHER = """#!{python} -IS
# netwrap's CNI plugin, written by `netwrap-cni --install`; run again after moving or upgrading netwrap.
import sys
sys.path[:0] = {path!r}
from netwrap.cni.client import main
main()
"""


Launcher = Literal["auto", "compiled", "python"]


def _folders() -> list[str]:
    """The folders holding netwrap, attrs and tenacity, in that order, each once."""
    folders: list[str] = []
    for package in (Path(client.__file__).parent.parent, Path(attrs.__file__).parent, Path(tenacity.__file__).parent):
        folder = str(package.resolve().parent)  # the folder that holds the package
        if folder not in folders:
            folders.append(folder)
    return folders


def launcher_text() -> str:
    """The launcher's text: this interpreter, and the folders holding netwrap, attrs and tenacity."""
    return LAUNCHER.format(python=sys.executable, path=_folders())


def python_code() -> str:
    """What the compiled client runs with ``python -I -S -c`` when no helper takes the call: the launcher's body."""
    return f"import sys; sys.path[:0] = {_folders()!r}; from netwrap.cni.client import main; main()"


def c_string(text: str) -> str:
    """``text`` as a C string literal: every byte but letters, digits and a few signs as an octal escape."""
    plain = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-./:,=")
    return '"' + "".join(chr(b) if b in plain else f"\\{b:03o}" for b in text.encode()) + '"'


def client_source(socket_format: str, python: str, code: str) -> str:
    """client.c with its three definitions in front (see the file's head)."""
    defines = (
        f"#define NETWRAP_SOCKET {c_string(socket_format)}\n"
        f"#define NETWRAP_PYTHON {c_string(python)}\n"
        f"#define NETWRAP_PYTHON_JSON {c_string(json.dumps(python)[1:-1])}\n"  # inside the error's JSON
        f"#define NETWRAP_CODE {c_string(code)}\n"
    )
    return defines + Path(client.__file__).with_name("client.c").read_text(encoding="utf-8")


def compiler() -> str | None:
    """The C compiler ``--install`` uses, if the machine has one."""
    from netwrap.host.runner import find_tool  # noqa: PLC0415

    return find_tool("cc")


def compile_client(
    target: Path, socket_format: str | None = None, code: str | None = None, python: str | None = None
) -> None:
    """Build the compiled client into ``target`` (static when the C library allows, else linked as usual).
    ``socket_format`` (``%u`` for the user's id), ``code`` and ``python`` default to this installation's."""
    from netwrap.command import Command  # noqa: PLC0415  (a person's command: imports are no cost here)
    from netwrap.host.runner import SubprocessRunner  # noqa: PLC0415

    fmt = socket_format or f"netwrap-cni-%u-{client.installation()}"
    text = client_source(fmt, python or sys.executable, code or python_code())
    runner = SubprocessRunner()
    with tempfile.TemporaryDirectory(prefix="netwrap-cni-cc.") as folder:
        source = Path(folder) / "client.c"
        source.write_text(text, encoding="utf-8")
        errors = ""
        for extra in (("-static",), ()):
            argv = ("-O2", "-Wall", *extra, "-o", str(target), str(source))
            done = runner.run(Command("cc", argv, mutates=False, ok_codes=frozenset(range(256))))
            if done.returncode == 0:
                return
            errors = done.stderr.strip()
    raise SystemExit(f"netwrap-cni: cc could not build the compiled client: {errors}")


def install(directory: Path, name: str = "netwrap", launcher: Launcher = "auto") -> Path:
    """Write the plugin as ``directory/name`` (replaced whole, mode 0755): the compiled client when ``launcher``
    is ``compiled``, or ``auto`` and a C compiler is there, else the text launcher; its path."""
    if "/" in name or name in ("", ".", ".."):
        raise SystemExit(f"netwrap-cni: --name {name!r}: a file name, without '/'")
    if not directory.is_dir():
        raise SystemExit(f"netwrap-cni: --install {directory}: not a directory")
    found = compiler() if launcher != "python" else None
    compiled = found is not None
    if launcher == "compiled" and not compiled:
        raise SystemExit("netwrap-cni: --launcher compiled needs a C compiler (cc); apt-get install gcc libc6-dev")
    target = directory / name
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            if not compiled:
                out.write(launcher_text())
        if compiled:
            compile_client(Path(temporary))
        os.chmod(temporary, 0o755)  # noqa: S103  (a plugin the runtime executes; others may read it)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def helper_pid() -> int | None:
    """The pid of this installation's helper in this network namespace, if one listens."""
    import socket  # noqa: PLC0415

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(client.socket_name())
        except OSError:
            return None
        return client.peer(sock)[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="netwrap-cni",
        description="netwrap's CNI plugin. A runtime runs it with CNI_* variables and the network configuration "
        "on stdin, and no argument; these options are for people.",
    )
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--install", metavar="DIR", type=Path, help="write a fast launcher into a plugin directory")
    group.add_argument("--helper-pid", action="store_true", help="print the pid of the warm helper, if one runs")
    parser.add_argument("--name", default="netwrap", help="the launcher's file name (the network's type)")
    parser.add_argument(
        "--launcher", choices=("auto", "compiled", "python"), default="auto",
        help="compiled: a small C client (needs cc), fastest to start; python: a text launcher; "
        "auto (the default): compiled when cc is there",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.install is not None:
        print(install(args.install, args.name, args.launcher))
        return 0
    pid = helper_pid()
    if pid is None:
        print("no helper runs for this installation in this network namespace", file=sys.stderr)
        return 1
    print(pid)
    return 0
