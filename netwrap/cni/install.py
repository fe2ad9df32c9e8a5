"""``netwrap-cni``'s own commands, for a person: write a fast launcher into a CNI plugin directory, or show
the helper.

A runtime finds a plugin by its ``type`` in its plugin directory and starts it
for every call. The launcher written there (``netwrap`` by default) runs the
interpreter netwrap is installed with, without ``site`` (``-I -S``), with the
folders of netwrap and its dependencies named in it: the few milliseconds
Python needs to start, instead of the tens ``site`` and the package lookup
take. A symbolic link to ``netwrap-cni`` works too, only slower to start.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

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


def launcher_text() -> str:
    """The launcher's text: this interpreter, and the folders holding netwrap, attrs and tenacity."""
    folders: list[str] = []
    for package in (Path(client.__file__).parent.parent, Path(attrs.__file__).parent, Path(tenacity.__file__).parent):
        folder = str(package.resolve().parent)  # the folder that holds the package
        if folder not in folders:
            folders.append(folder)
    return LAUNCHER.format(python=sys.executable, path=folders)


def install(directory: Path, name: str = "netwrap") -> Path:
    """Write the launcher as ``directory/name`` (replaced whole, mode 0755); its path."""
    if "/" in name or name in ("", ".", ".."):
        raise SystemExit(f"netwrap-cni: --name {name!r}: a file name, without '/'")
    if not directory.is_dir():
        raise SystemExit(f"netwrap-cni: --install {directory}: not a directory")
    target = directory / name
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(launcher_text())
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
    args = parser.parse_args(argv)
    if args.install is not None:
        print(install(args.install, args.name))
        return 0
    pid = helper_pid()
    if pid is None:
        print("no helper runs for this installation in this network namespace", file=sys.stderr)
        return 1
    print(pid)
    return 0
