"""``netwrap-cni``: the CNI plugin's entry point (runtimes run it with ``CNI_*`` variables and JSON on stdin).

Success prints the result (ADD, VERSION) or nothing (DEL, CHECK, GC, STATUS)
and exits 0; failure prints ``{cniVersion, code, msg, details}`` on stdout and
exits 1. Nothing but that JSON is ever written to stdout; a traceback never
reaches the runtime (an unexpected error is code 999 with it in ``details``).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Mapping
from typing import Any, TextIO

from netwrap.cni import spec
from netwrap.cni.spec import CniError

UNEXPECTED = 999


def run(environ: Mapping[str, str], stdin: str) -> tuple[int, dict[str, Any] | None]:
    """The exit code and the JSON to print for one call."""
    version = spec.stated_version(stdin)
    try:
        env = spec.Env.read(environ)
        data = spec.decode(stdin) if stdin.strip() or env.command != "VERSION" else {}
        if env.command == "VERSION":
            requested = data.get("cniVersion", spec.SUPPORTED[-1])
            return 0, spec.version_result(requested if isinstance(requested, str) else spec.SUPPORTED[-1])
        spec.version_of(data)
        conf = spec.netconf(data, env.command, env.args)
        from netwrap.cni import plugin  # noqa: PLC0415  (VERSION and refusals need none of the engine)

        if env.command == "STATUS":
            plugin.status(conf)
            return 0, None
        runner = plugin.default_runner()
        if env.command == "ADD":
            return 0, plugin.add(env, conf, runner)
        if env.command == "DEL":
            plugin.delete(env, conf, runner)
        elif env.command == "CHECK":
            plugin.check(env, conf, runner)
        else:
            plugin.gc(conf, runner)
        return 0, None
    except CniError as exc:
        return 1, exc.to_json(version)
    except Exception as exc:  # the runtime gets JSON, whatever happened
        details = "".join(traceback.format_exception(exc))
        return 1, CniError(UNEXPECTED, f"internal error: {type(exc).__name__}: {exc}", details).to_json(version)


def main(environ: Mapping[str, str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    out: dict[str, Any] | None
    try:
        text = (stdin or sys.stdin).read()
    except (OSError, UnicodeDecodeError) as exc:
        code, out = 1, CniError(spec.IO_FAILURE, f"cannot read stdin: {exc}").to_json(spec.SUPPORTED[-1])
    else:
        code, out = run(os.environ if environ is None else environ, text)
    if out is not None:
        (stdout or sys.stdout).write(json.dumps(out) + "\n")
    return code


def main_exit() -> None:
    """The console script: :func:`main`, its code as the process's exit status."""
    sys.exit(main())


if __name__ == "__main__":
    main_exit()
