"""The warm helper and the client in front of it: the call runs as the caller's own (its stdin, stdout,
environment, directory, umask and exit code), nobody else's helper is ever handed our input, and every way the
helper can be missing or go away ends in the call running here or in a CNI error.

These start real Python processes (never a network tool); each helper listens on a name of its own test."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwrap.cni import client, helper, install

ROOT = str(Path(__file__).resolve().parent.parent)
HANDLER = """
import json, os, sys, threading, time
def handler():
    text = sys.stdin.read()
    if text == "die":
        os.kill(os.getpid(), 9)
    if text == "slow":
        time.sleep(3)
    if text == "leave a descriptor":
        os.open("/dev/null", os.O_RDONLY)
    if text == "outlive":
        from netwrap.cni import caller
        time.sleep(1)
        with open(os.environ["MARK"], "w") as mark:
            mark.write(str(caller.gone()))
    if text == "raise":
        raise RuntimeError("the call failed in a way nobody caught")
    if text == "leave a thread":
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    mask = os.umask(0); os.umask(mask)
    sys.stdout.write(json.dumps({"stdin": text, "x": os.environ.get("X"), "cwd": os.getcwd(), "umask": mask,
                                 "pid": os.getpid()}))
    print("to stderr", file=sys.stderr)
    return 7
"""


@pytest.fixture
def name() -> bytes:
    return f"\0netwrap-cni-test-{uuid.uuid4().hex}".encode()


@pytest.fixture
def served(name: bytes) -> Iterator[subprocess.Popen[bytes]]:
    """A helper on ``name`` whose calls run the echoing handler above."""
    yield from _serve(name)


def _serve(name: bytes, before: str = "") -> Iterator[subprocess.Popen[bytes]]:
    code = f"import sys; sys.path.insert(0, {ROOT!r})\n{HANDLER}\nfrom netwrap.cni import helper\n{before}\n" + (
        f"helper.serve({name!r}, 30, handler)"
    )
    process = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(name) == 0:
                break
        time.sleep(0.02)
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        _until_free(name)


def _until_free(name: bytes) -> None:
    """Wait until nobody listens on ``name``: the helper's spare holds it too, until it sees the helper gone."""
    deadline = time.monotonic() + 10
    while True:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            if probe.connect_ex(name) != 0:
                return
        assert time.monotonic() < deadline, "the helper's spare outlived it"
        time.sleep(0.02)


def _call(name: bytes, text: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    code = (
        f"import os, sys; sys.path.insert(0, {ROOT!r}); os.umask(0o027)\n"
        f"from netwrap.cni import client; sys.exit(client.through_helper({name!r}) % 256)"
    )
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], input=text, capture_output=True, text=True, cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env}, check=False,
    )  # fmt: skip


def test_the_call_runs_with_the_callers_input_output_environment_directory_and_umask(
    name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    done = _call(name, '{"cniVersion": "1.0.0"}', tmp_path, X="caller's")
    assert done.returncode == 7
    seen = json.loads(done.stdout)
    assert seen["stdin"] == '{"cniVersion": "1.0.0"}'
    assert seen["x"] == "caller's"
    assert seen["cwd"] == str(tmp_path)
    assert seen["umask"] == 0o027
    assert seen["pid"] == served.pid  # the helper was free: it ran the call itself
    assert done.stderr == "to stderr\n"


def test_a_call_run_in_the_helper_leaves_nothing_of_the_caller_to_the_next(
    name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    own = (os.readlink(f"/proc/{served.pid}/cwd"), _umask_of(served.pid))
    assert _call(name, "one", first, X="first's").returncode == 7
    assert (os.readlink(f"/proc/{served.pid}/cwd"), _umask_of(served.pid)) == own  # its own again, between calls
    code = (
        f"import os, sys; sys.path.insert(0, {ROOT!r}); os.umask(0o002)\n"
        f"from netwrap.cni import client; sys.exit(client.through_helper({name!r}) % 256)"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], input="two", capture_output=True, text=True, cwd=second,
        env={"PATH": "/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    seen = json.loads(done.stdout)
    assert (seen["stdin"], seen["x"], seen["cwd"], seen["umask"]) == ("two", None, str(second), 0o002)
    assert seen["pid"] == served.pid
    assert done.stderr == "to stderr\n"  # the first call's output went to the first caller only


def test_the_executable_exits_with_the_calls_code_and_its_whole_output(
    name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """``main`` leaves as soon as the helper answers (without the interpreter's shutdown): the code is the call's
    and what the copy wrote is all there."""
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r})\n"
        f"from netwrap.cni import client; client.socket_name = lambda package=None: {name!r}; client.main()"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], input="x" * 70000, capture_output=True, text=True, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"}, check=False,
    )  # fmt: skip
    assert done.returncode == 7
    assert json.loads(done.stdout)["stdin"] == "x" * 70000
    assert done.stderr == "to stderr\n"


def test_calls_at_once_each_get_their_own_copy(name: bytes, served: subprocess.Popen[bytes], tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda n: _call(name, f"call {n}", tmp_path), range(16)))
    assert sorted(json.loads(d.stdout)["stdin"] for d in done) == sorted(f"call {n}" for n in range(16))
    assert {d.returncode for d in done} == {7}


def test_a_call_that_raises_is_exit_code_1_and_the_helper_goes_on(
    name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """The plugin's main never raises (it answers in JSON), but a call's end must never be the helper's."""
    assert _call(name, "raise", tmp_path).returncode == 1
    assert served.poll() is None
    assert json.loads(_call(name, "after", tmp_path).stdout)["pid"] == served.pid


@pytest.mark.parametrize(("directory", "umask"), [("gone", b"18"), (".", b"0o22"), (".", b"99999999999999999999")])
def test_a_request_the_helper_cannot_take_is_not_taken_and_nothing_of_the_helpers_is_changed(
    directory: str, umask: bytes, tmp_path: Path
) -> None:
    """A caller whose directory went away between its request and the helper's turn, or whose umask is no
    umask: "not taken" (the caller runs the call itself), before any of its descriptors replace the helper's."""
    ours, theirs = socket.socketpair()
    given = [os.open(os.devnull, os.O_RDWR) for _ in range(3)]
    body = b"\0".join([client.PROTOCOL, str(tmp_path / directory).encode(), umask, b"X=1"])
    before = ([os.fstat(fd).st_ino for fd in (0, 1, 2)], os.getcwd(), dict(os.environ), _mask())
    with ours, theirs:
        fds = b"".join(fd.to_bytes(4, sys.byteorder) for fd in given)
        theirs.sendmsg([len(body).to_bytes(4, "big") + body], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds)])
        helper._here(ours, lambda: pytest.fail("the call ran"))
        assert theirs.recv(1) == client.REFUSED
    assert ([os.fstat(fd).st_ino for fd in (0, 1, 2)], os.getcwd(), dict(os.environ), _mask()) == before
    for fd in given:
        os.close(fd)


def _mask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_line_of_spares_that_ends_refuses_every_caller_at_once(name: bytes) -> None:
    """A caller is never left waiting on a busy helper with no spare: its connect is refused, and it runs the
    call itself."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(8)
        helper._refuse_the_rest(listener)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as caller:
            assert caller.connect_ex(name) == errno.ECONNREFUSED  # the client's "no helper": it runs the call


def test_an_upgrade_seen_by_a_spare_while_the_helper_is_busy_sends_every_caller_home_at_once(
    name: bytes, tmp_path: Path
) -> None:
    """The spare finds netwrap's files changed: it refuses that caller and every later one at once (they run
    their calls themselves), not after the helper's own call; the helper stops once free."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    source = tmp_path / "netwrap-source.py"
    source.write_text("")
    known = f"helper.sources = lambda: {{{str(source)!r}: {source.stat().st_mtime_ns}}}"
    for served in _serve(name, known):
        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(_call, name, "slow", tmp_path)
            time.sleep(0.5)
            os.utime(source, ns=(0, source.stat().st_mtime_ns + 1_000_000))  # an upgrade
            started = time.monotonic()
            assert _call(name, "quick", tmp_path).returncode == client.NOT_TAKEN % 256
            assert _call(name, "later", tmp_path).returncode == client.NO_HELPER % 256
            assert time.monotonic() - started < 1.5 and slow.running()  # nobody waited for the slow call
            assert slow.result().returncode == 7
        assert served.wait(timeout=10) == 0


@pytest.mark.parametrize("killed", [True, False])
def test_a_call_can_tell_that_its_caller_gave_up(
    killed: bool, name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """A runtime's timeout kills the plugin's process; the call, in the helper, goes on, and can tell."""
    mark = tmp_path / "mark"
    code = (
        f"import os, sys; sys.path.insert(0, {ROOT!r})\n"
        f"from netwrap.cni import client; sys.exit(client.through_helper({name!r}) % 256)"
    )
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", code], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin", "MARK": str(mark)}, cwd=tmp_path,
    )  # fmt: skip
    assert process.stdin is not None
    process.stdin.write(b"outlive")
    process.stdin.close()
    if killed:
        time.sleep(0.4)
        process.kill()
    process.wait(10)
    deadline = time.monotonic() + 10
    while not mark.exists() or not mark.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert mark.read_text() == str(killed)


def test_a_caller_that_connects_and_sends_nothing_does_not_hold_the_helper(name: bytes, tmp_path: Path) -> None:
    for served in _serve(name, "helper.REQUEST_SECONDS = 0.5"):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
            idle.connect(name)
            idle.settimeout(10)  # were the helper held, this fails instead of waiting for ever
            time.sleep(0.1)
            assert _call(name, "meanwhile", tmp_path).returncode == 7  # a spare's
            time.sleep(1)
            assert json.loads(_call(name, "after", tmp_path).stdout)["pid"] == served.pid  # its own again
            assert idle.recv(1) == b""  # let go, without an answer
        assert served.poll() is None


def test_the_helper_reaps_its_line_of_spares(name: bytes, served: subprocess.Popen[bytes], tmp_path: Path) -> None:
    """Each spare that takes a call forks its successor and ends: the successors become the helper's (its
    subreaper), which reaps them, never a runtime above it that may not."""
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(4) as pool:
        slow = pool.submit(_call, name, "slow", tmp_path)
        time.sleep(0.5)
        assert all(d.returncode == 7 for d in pool.map(lambda n: _call(name, f"q{n}", tmp_path), range(3)))
        assert slow.result().returncode == 7
    time.sleep(0.3)  # the spares that ran the quick calls have ended by now
    assert _call(name, "after", tmp_path).returncode == 7  # the helper reaps between calls
    time.sleep(0.3)
    children = _children(served.pid)
    assert children, "no spare waits"
    assert all(state != "Z" for state in children.values()), children


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their state letter."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found[int(entry.name)] = fields[0]
    return found


def _umask_of(pid: int) -> str:
    return next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Umask"))


def test_calls_that_come_while_the_helper_is_busy_each_run_in_a_spare(
    name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(5) as pool:
        slow = pool.submit(_call, name, "slow", tmp_path)
        time.sleep(0.5)  # the helper runs the slow call by now
        quick = list(pool.map(lambda n: _call(name, f"quick {n}", tmp_path, X="spare's"), range(4)))
        assert slow.running()  # all four answered while the helper was still busy: none waited for another
        seen = [json.loads(done.stdout) for done in quick]
        assert sorted(x["stdin"] for x in seen) == [f"quick {n}" for n in range(4)]
        assert {(x["x"], x["cwd"]) for x in seen} == {("spare's", str(tmp_path))}
        pids = {x["pid"] for x in seen}
        assert len(pids) == 4 and not pids & {served.pid, os.getpid()}
        assert json.loads(slow.result().stdout)["pid"] == served.pid
    assert json.loads(_call(name, "after", tmp_path).stdout)["pid"] == served.pid  # free again: its own


def test_a_spare_that_dies_before_answering_is_a_cni_error(
    name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(_call, name, "slow", tmp_path)
        time.sleep(0.5)
        done = _call(name, "die", tmp_path)
        assert slow.result().returncode == 7
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["code"] == 999 and "helper" in error["msg"]
    assert served.poll() is None  # the helper itself goes on
    assert _call(name, "after", tmp_path).returncode == 7


def test_a_call_that_kills_the_helper_is_a_cni_error_and_the_next_runs_here(
    name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    done = _call(name, "die", tmp_path)
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == 999
    served.wait(timeout=10)
    deadline = time.monotonic() + 10  # its spare sees the helper gone, and ends: nobody listens any more
    while _call(name, "after", tmp_path).returncode != client.NO_HELPER % 256:
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize("left", ["leave a descriptor", "leave a thread"])
def test_a_call_that_leaves_something_behind_stops_the_helper(
    left: str, name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    """A descriptor might hold a lock: the next call must not find it held by the helper."""
    assert _call(name, left, tmp_path).returncode == 7  # answered first
    assert served.wait(timeout=10) == 0


def test_a_helper_stopped_by_pid_takes_its_spare_with_it(
    name: bytes, served: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    assert _call(name, "one", tmp_path).returncode == 7
    served.terminate()
    served.wait(timeout=10)
    _until_free(name)  # the name is free: the spare, which held it too, has ended


def test_no_helper_means_the_call_runs_here(name: bytes, tmp_path: Path) -> None:
    done = _call(name, "{}", tmp_path)
    assert done.returncode == client.NO_HELPER % 256
    assert done.stdout == ""


def test_a_name_held_by_another_user_is_never_handed_our_input(name: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as squatter:
        squatter.bind(name)
        squatter.listen(1)
        monkeypatch.setattr(client, "peer_uid", lambda sock: os.getuid() + 1)  # the holder: another user
        socket.setdefaulttimeout(2)  # were the check gone, the client would wait for an answer: not forever
        try:
            assert client.through_helper(name) == client.NOT_TAKEN
        finally:
            socket.setdefaulttimeout(None)
        squatter.settimeout(5)
        peer, _ = squatter.accept()
        with peer:
            assert peer.recv(10) == b""  # closed without a byte sent: the check came first


def test_a_second_helper_on_a_taken_name_returns_at_once(name: bytes, served: subprocess.Popen[bytes]) -> None:
    started = time.monotonic()
    helper.serve(name, 30, lambda: 0)
    assert time.monotonic() - started < 5


def test_a_helper_stops_once_netwraps_files_change(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    known = {str(source): source.stat().st_mtime_ns}
    assert not helper._changed(known)
    os.utime(source, ns=(0, source.stat().st_mtime_ns + 1_000_000))
    assert helper._changed(known)
    source.unlink()
    assert helper._changed(known)
    assert all(path.endswith(".py") for path in helper.sources())


def test_the_socket_name_belongs_to_a_user_and_an_installation() -> None:
    name = client.socket_name()
    assert name.startswith(f"\0netwrap-cni-{os.getuid()}-".encode())
    assert name == client.socket_name()
    assert name != client.socket_name("/elsewhere/netwrap/cni")


@pytest.mark.parametrize(("value", "on"), [("off", False), ("0", False), ("no", False), ("on", True), ("", True)])
def test_the_helper_can_be_turned_off(value: str, on: bool) -> None:
    assert client.enabled({"NETWRAP_CNI_HELPER": value}) is on
    assert client.enabled({}) is True


@pytest.mark.parametrize(("value", "seconds"), [("5", 5.0), ("nope", helper.IDLE), ("-1", helper.IDLE)])
def test_idle_seconds(value: str, seconds: float) -> None:
    assert helper.idle_seconds({"NETWRAP_CNI_HELPER_IDLE": value}) == seconds


def assert_answers_version(plugin: Path) -> None:
    """The installed plugin, run as a runtime runs it (the helper off: the call runs in its own process)."""
    done = subprocess.run(
        [str(plugin)], input='{"cniVersion": "1.0.0"}', capture_output=True, text=True, check=False,
        env={"CNI_COMMAND": "VERSION", "NETWRAP_CNI_HELPER": "off", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"cniVersion": "1.0.0", "supportedVersions": ["1.0.0", "1.1.0"]}


def test_the_launcher_starts_without_site_and_answers_version(tmp_path: Path) -> None:
    path = install.install(tmp_path, launcher="python")
    assert path == tmp_path / "netwrap"
    assert path.read_text().startswith(f"#!{sys.executable} -IS\n")
    assert path.stat().st_mode & 0o777 == 0o755
    assert_answers_version(path)
    assert list(tmp_path.iterdir()) == [path]  # written whole: no temporary file left


def test_the_launcher_refuses_a_bad_place(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not a directory"):
        install.install(tmp_path / "nope")
    with pytest.raises(SystemExit, match="a file name"):
        install.install(tmp_path, "a/b")


def test_the_client_imports_nothing_of_netwrap_but_itself() -> None:
    code = (
        f"import sys; sys.path.insert(0, {ROOT!r}); import netwrap.cni.client; "
        "print(sorted(m for m in sys.modules if m.startswith('netwrap') or m in ('attrs', 'typing', 're')))"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['netwrap', 'netwrap.cni', 'netwrap.cni.client']"


# The compiled client (netwrap/cni/client.c): the same protocol as the Python client, and the Python client (here
# a stand-in that shows what it was given) for everything else. Built once for these tests, with a socket name of
# their own.
NEEDS_CC = pytest.mark.skipif(install.compiler() is None, reason="no C compiler (cc): apt-get install gcc libc6-dev")
STAND_IN = (
    "import json, os, sys; print(json.dumps({'python': sys.argv[1:], 'stdin': sys.stdin.read(), "
    "'helper': os.environ.get('NETWRAP_CNI_HELPER')})); sys.exit(42)"
)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """The compiled client and the name (for this user) it connects to."""
    if install.compiler() is None:
        pytest.skip("no C compiler (cc): apt-get install gcc libc6-dev")
    token = uuid.uuid4().hex
    target = tmp_path_factory.mktemp("compiled") / "netwrap"
    install.compile_client(target, f"netwrap-cni-test-%u-{token}", STAND_IN)
    return target, f"\0netwrap-cni-test-{os.getuid()}-{token}".encode()


@pytest.fixture
def served_compiled(compiled: tuple[Path, bytes]) -> Iterator[subprocess.Popen[bytes]]:
    yield from _serve(compiled[1])


def _run_compiled(binary: Path, text: str, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), *args], input=text, capture_output=True, text=True, cwd=cwd,
        env={"PATH": "/usr/bin:/bin", **env}, preexec_fn=lambda: os.umask(0o027), check=False,
    )  # fmt: skip


@NEEDS_CC
def test_the_compiled_client_hands_over_input_output_environment_directory_umask_and_code(
    compiled: tuple[Path, bytes], served_compiled: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    done = _run_compiled(compiled[0], "y" * 70000, tmp_path, X="caller's")
    assert done.returncode == 7, done.stdout + done.stderr
    seen = json.loads(done.stdout)
    assert seen["stdin"] == "y" * 70000
    assert seen["x"] == "caller's"
    assert seen["cwd"] == str(tmp_path)
    assert seen["umask"] == 0o027
    assert seen["pid"] == served_compiled.pid
    assert done.stderr == "to stderr\n"


@NEEDS_CC
def test_the_compiled_client_sends_the_environment_as_the_python_client_does(compiled: tuple[Path, bytes]) -> None:
    """The request's bytes, caught by a listener in the helper's place: the same as client.request() makes."""
    binary, name = compiled
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        listener.settimeout(20)
        env = {"PATH": "/usr/bin:/bin", "A": "1", "EMPTY": "", "SIGN": "x=y"}
        process = subprocess.Popen(
            [str(binary)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env, cwd="/",
            preexec_fn=lambda: os.umask(0o027),  # noqa: PLW1509
        )  # fmt: skip
        conn, _ = listener.accept()
        with conn:
            data, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            size = int.from_bytes(data[:4], "big")
            while len(data) - 4 < size:
                data += conn.recv(size)
            for fd in fds:
                os.close(fd)
            conn.sendall(b"=" + bytes([5]))
        assert process.wait(20) == 5
    fields = data[4:].split(b"\0")
    assert len(fds) == 3
    assert fields[:3] == [client.PROTOCOL, b"/", b"23"]
    assert sorted(fields[3:]) == sorted(f"{k}={v}".encode() for k, v in env.items())


@NEEDS_CC
def test_the_compiled_client_starts_the_python_client_when_no_helper_listens(
    compiled: tuple[Path, bytes], tmp_path: Path
) -> None:
    done = _run_compiled(compiled[0], "untouched", tmp_path)
    assert done.returncode == 42
    assert json.loads(done.stdout) == {"python": [], "stdin": "untouched", "helper": None}


@NEEDS_CC
def test_the_compiled_client_starts_the_python_client_when_the_helper_does_not_take_the_call(
    compiled: tuple[Path, bytes], tmp_path: Path
) -> None:
    binary, name = compiled
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(name)
        listener.listen(1)
        process = subprocess.Popen(
            [str(binary)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={"PATH": "/usr/bin:/bin"}
        )
        listener.settimeout(20)
        conn, _ = listener.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
            for fd in fds:
                os.close(fd)  # held here, the output pipe would never end
            conn.sendall(client.REFUSED)
        out, _ = process.communicate("kept for the call", timeout=20)
    assert process.returncode == 42
    assert json.loads(out)["stdin"] == "kept for the call"


@NEEDS_CC
@pytest.mark.parametrize("value", ["off", "OFF", "0", "no", "False"])
def test_the_compiled_client_honours_the_helper_turned_off(
    compiled: tuple[Path, bytes], served_compiled: subprocess.Popen[bytes], tmp_path: Path, value: str
) -> None:
    done = _run_compiled(compiled[0], "{}", tmp_path, NETWRAP_CNI_HELPER=value)
    assert done.returncode == 42  # the stand-in, not the helper's handler (7)
    assert json.loads(done.stdout)["helper"] == value


@NEEDS_CC
def test_the_compiled_client_gives_a_persons_arguments_to_the_python_client(
    compiled: tuple[Path, bytes], served_compiled: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    done = _run_compiled(compiled[0], "", tmp_path, "--helper-pid", "a b")
    assert json.loads(done.stdout)["python"] == ["--helper-pid", "a b"]


@NEEDS_CC
def test_a_copy_that_dies_under_the_compiled_client_is_a_cni_error(
    compiled: tuple[Path, bytes], served_compiled: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    done = _run_compiled(compiled[0], "die", tmp_path)
    assert done.returncode == 1
    assert json.loads(done.stdout)["code"] == 999


@NEEDS_CC
def test_calls_at_once_through_the_compiled_client(
    compiled: tuple[Path, bytes], served_compiled: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(8) as pool:
        done = list(pool.map(lambda n: _run_compiled(compiled[0], f"call {n}", tmp_path), range(16)))
    assert sorted(json.loads(d.stdout)["stdin"] for d in done) == sorted(f"call {n}" for n in range(16))


@NEEDS_CC
def test_install_writes_the_compiled_client_when_cc_is_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = install.install(tmp_path)
    assert path.read_bytes().startswith(b"\x7fELF")
    assert path.stat().st_mode & 0o777 == 0o755
    assert list(tmp_path.iterdir()) == [path]
    assert_answers_version(path)
    monkeypatch.setattr(install, "compiler", lambda: None)
    assert install.install(tmp_path, "text").read_text().startswith("#!")
    with pytest.raises(SystemExit, match="needs a C compiler"):
        install.install(tmp_path, "other", launcher="compiled")
    assert not (tmp_path / "other").exists()


def test_c_strings_keep_every_byte() -> None:
    assert install.c_string('a/b "c"\\%u\n\u00e9') == '"a/b \\042c\\042\\134\\045u\\012\\303\\251"'


@NEEDS_CC
@pytest.mark.skipif(os.getuid() != 0, reason="needs root to hold the name as another user")
def test_the_compiled_client_hands_nothing_to_a_name_another_user_holds(
    compiled: tuple[Path, bytes], tmp_path: Path
) -> None:
    binary, name = compiled
    squatter = (
        "import os, socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        f"os.setuid(65534); s.bind({name!r}); s.listen(1); print('ready', flush=True)\n"
        "conn, _ = s.accept(); conn.settimeout(10)\n"
        "print(repr(conn.recv(100)), flush=True)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", squatter], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        done = _run_compiled(binary, "kept", tmp_path)
        assert done.returncode == 42 and json.loads(done.stdout)["stdin"] == "kept"
        out, _ = holder.communicate(timeout=20)
        assert out == "b''\n"  # connected, then closed without a byte sent
    finally:
        holder.kill()
        holder.wait()


@NEEDS_CC
def test_a_compiled_client_whose_interpreter_is_gone_says_so_as_a_cni_error(tmp_path: Path) -> None:
    """netwrap moved or its Python upgraded without a new --install: an error the runtime reads, never silence."""
    binary = tmp_path / "netwrap"
    install.compile_client(binary, f"netwrap-cni-test-%u-{uuid.uuid4().hex}", STAND_IN, '/nonexistent/py "3"')
    done = _run_compiled(binary, "{}", tmp_path)
    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["code"] == 999 and '/nonexistent/py "3"' in error["msg"] and "--install" in error["msg"]
