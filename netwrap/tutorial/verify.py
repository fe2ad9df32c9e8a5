"""Check the tutorial's four connectivity scenarios with real packets.

Scenarios 3 and 4 need an "outside". :func:`verify` brings its own: a namespace
joined to the host by a veth "uplink" in 192.0.2.0/24 (TEST-NET-1), standing
for the internet host of scenario 3 and the LAN client of scenario 4. It is
removed afterwards. Traffic goes only to addresses inside these namespaces.
"""

from __future__ import annotations

import secrets
import sys
import threading
from collections.abc import Callable

import attrs

from netwrap.command import Command
from netwrap.engine.build import build, teardown
from netwrap.engine.state import MemoryStore, Store
from netwrap.errors import CommandError, NetwrapError
from netwrap.host.runner import Runner
from netwrap.kinds import Address, LinkNetns, LinkUp, Namespace, NetObject, VethPair
from netwrap.tutorial import CONTAINER_ADDRESSES, CONTAINERS, PUBLISHED_PORT

OUTSIDE = "Toutside"
UPLINK_HOST, UPLINK_OUTSIDE = "Tuplink0", "Tuplink1"
HOST_UPLINK_ADDRESS, OUTSIDE_ADDRESS = "192.0.2.1", "192.0.2.2"
PROBE_TIMEOUT = 4.0

# Listens once on 0.0.0.0:PORT and sends TOKEN to the first client.
_LISTEN = """\
import socket, sys
token, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:  # both families where the kernel has IPv6, else IPv4 alone
    server = socket.socket(socket.AF_INET6)
    server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("::", port))
except OSError:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
server.listen(1)
server.settimeout(timeout)
try:
    conn, _ = server.accept()
except socket.timeout:
    sys.exit(1)
conn.sendall(token.encode())
conn.close()
"""

# Connects to HOST:PORT until it answers or the time is up, and prints what it reads.
_CONNECT = """\
import socket, sys, time
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        with socket.create_connection((host, port), timeout=1) as conn:
            sys.stdout.write(conn.recv(100).decode(errors="replace"))
            sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
"""


@attrs.frozen
class ScenarioResult:
    """One row of the table."""

    number: int
    title: str
    passed: bool
    detail: str


def outside_objects() -> tuple[NetObject, ...]:
    """The simulated outside: a namespace with an uplink veth to the host."""
    return (
        Namespace(OUTSIDE),
        VethPair(UPLINK_OUTSIDE, UPLINK_HOST),
        LinkNetns(UPLINK_OUTSIDE, OUTSIDE),
        Address(UPLINK_HOST, f"{HOST_UPLINK_ADDRESS}/24"),
        LinkUp(UPLINK_HOST),
        Address(UPLINK_OUTSIDE, f"{OUTSIDE_ADDRESS}/24", netns=OUTSIDE),
        LinkUp(UPLINK_OUTSIDE, netns=OUTSIDE),
        LinkUp("lo", netns=OUTSIDE),
    )


def ping(runner: Runner, target: str, netns: str | None, count: int = 3) -> bool:
    """Whether ``target`` answers ICMP echo from ``netns`` (None: the host)."""
    args = ("-c", str(count), "-i", "0.2", "-W", "1", "-q", target)
    command = Command("ping", args, netns=netns, mutates=False, ok_codes=frozenset({0, 1}))
    return runner.run(command).returncode == 0


def _pings(runner: Runner, pairs: list[tuple[str | None, str]]) -> tuple[bool, str]:
    parts, passed = [], True
    for netns, target in pairs:
        ok = ping(runner, target, netns)
        passed &= ok
        parts.append(f"{netns or 'host'} -> {target} {'ok' if ok else 'no reply'}")
    return passed, ", ".join(parts)


def tcp_probe(
    runner: Runner,
    server_netns: str | None,
    client_netns: str | None,
    host: str,
    port: int,
    *,
    listen_port: int | None = None,
    timeout: float = PROBE_TIMEOUT,
    python: str | None = None,
    client_runner: Runner | None = None,
) -> tuple[bool, str]:
    """Listen once in ``server_netns`` (on ``listen_port``, default ``port``), connect from ``client_netns``
    to ``host:port``, and check that the listener's random token comes back. ``client_runner``
    connects from another machine than ``runner`` listens on."""
    token = secrets.token_hex(8)
    python = python or sys.executable
    listen = Command(
        python, ("-c", _LISTEN, token, str(listen_port or port), str(timeout)), netns=server_netns,
        mutates=False, ok_codes=frozenset({0, 1}),
    )  # fmt: skip
    connect = Command(
        python, ("-c", _CONNECT, host, str(port), str(max(timeout - 1, 0.5))), netns=client_netns,
        mutates=False, ok_codes=frozenset({0, 1}),
    )  # fmt: skip
    errors: list[BaseException] = []

    def serve() -> None:
        try:
            runner.run(listen)
        except BaseException as exc:  # reported below, with the client's result
            errors.append(exc)

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        answer = (client_runner or runner).run(connect).stdout
    finally:
        server.join(timeout + 5)
    if errors:
        raise errors[0]
    where = f"{client_netns or 'host'} -> {host}:{port} -> {server_netns or 'host'}"
    if answer == token:
        return True, f"{where} answered"
    return False, f"{where}: no answer"


def _scenario(number: int, title: str, hint: str, probe: Callable[[], tuple[bool, str]]) -> ScenarioResult:
    try:
        passed, detail = probe()
    except CommandError as exc:
        first = (exc.stderr.strip() or exc.message).splitlines()[0]
        passed, detail = False, f"error: {first}"
    if not passed:
        detail = f"{detail} ({hint})"
    return ScenarioResult(number, title, passed, detail)


def verify(runner: Runner, store: Store | None = None, python: str | None = None) -> list[ScenarioResult]:
    """Run the four scenarios; the simulated outside is made first and removed afterwards.

    The outside is recorded in ``store`` (give a :class:`~netwrap.engine.state.StateFile`
    so that ``netwrap clean`` can remove it if this process dies half-way).
    ``python`` runs the TCP probes (default: this interpreter; ``python3`` on
    another machine).
    """
    c0, c1 = CONTAINERS
    a0, a1 = CONTAINER_ADDRESSES
    store = store if store is not None else MemoryStore()
    try:
        build(outside_objects(), runner, store, action="verify", finish=False)
        return [
            _scenario(1, "container to container", "needs steps 1-17",
                      lambda: _pings(runner, [(c0, a1), (c1, a0)])),
            _scenario(2, "host to container", "needs steps 1-17",
                      lambda: _pings(runner, [(None, a0), (None, a1)])),
            _scenario(3, "container to the outside", "needs steps 18-21: routes, ip_forward, MASQUERADE",
                      lambda: _pings(runner, [(c0, OUTSIDE_ADDRESS), (c1, OUTSIDE_ADDRESS)])),
            _scenario(4, f"outside to published port {PUBLISHED_PORT}", "needs steps 18-20 and 22: DNAT",
                      lambda: tcp_probe(runner, c0, OUTSIDE, HOST_UPLINK_ADDRESS, PUBLISHED_PORT, python=python)),
        ]  # fmt: skip
    finally:
        try:
            teardown(runner, store)
        except NetwrapError as exc:
            raise NetwrapError(f"could not remove the simulated outside: {exc}") from exc


def render_table(results: list[ScenarioResult]) -> str:
    """A plain-text pass/fail table."""
    width = max(len(r.title) for r in results)
    lines = [f"{'#':>2}  {'scenario':<{width}}  result  detail"]
    for r in results:
        lines.append(f"{r.number:>2}  {r.title:<{width}}  {'pass' if r.passed else 'FAIL':<6}  {r.detail}")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} of {len(results)} scenarios passed")
    return "\n".join(lines)
