"""``netwrap-cni`` driven exactly as the CNI specification (1.0.0, with GC and STATUS of 1.1.0) says a runtime
drives a plugin, on the real kernel, inside a sandbox.

Every call is the plugin's own executable, started in the sandbox with the ``CNI_*`` variables (``CNI_COMMAND``,
``CNI_CONTAINERID``, ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_ARGS``, ``CNI_PATH``), the network configuration on
stdin, and its stdout read as the specification defines it: the ADD result or VERSION answer on success (and
nothing for DEL, CHECK, GC and STATUS), exit 0; else exactly one error object ``{cniVersion, code, msg,
details}``, non-zero exit. The "containers" are namespaces made with ``ip netns add`` (or processes started with
``unshare --net``); the outside world is the tutorial's simulated one in 192.0.2.0/24. Traffic goes only to
addresses in namespaces these tests made. Every test ends with the sandbox's network as it found it.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pytest

from netwrap import Command, Result, Sandbox
from netwrap.host import snapshot
from netwrap.tutorial.verify import HOST_UPLINK_ADDRESS, OUTSIDE, OUTSIDE_ADDRESS, ping, tcp_probe
from tests.integration.conftest import wait_unshared

pytestmark = pytest.mark.integration

PLUGIN = Path(sys.executable).with_name("netwrap-cni")  # the console script of this virtual environment
DATA_DIR = "/run/cnidata"  # the sandbox's own /run
STATE_DIR = "/run/netwrap-cni-state"
NETWORK = "t1"
SUBNET = ipaddress.IPv4Network("10.89.0.0/24")
GATEWAY = "10.89.0.1"
BRIDGE = "cni-t1"  # the plugin's bridge for a network named t1 (no "bridge" key)
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANY_EXIT = frozenset(range(256))
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
PUBLISHED = 8080


def conf(version: str = "1.0.0", **extra: Any) -> dict[str, Any]:
    """A network configuration of ``type: netwrap`` (what a runtime passes, with ``runtimeConfig`` added by the
    runtime for the capabilities the configuration declares)."""
    base: dict[str, Any] = {
        "cniVersion": version,
        "name": NETWORK,
        "type": "netwrap",
        "subnet": str(SUBNET),
        "ipMasq": True,
        "dataDir": DATA_DIR,
        "stateDir": STATE_DIR,
        "capabilities": {"portMappings": True},
    }
    return base | extra


def published(host_port: int = PUBLISHED, container_port: int = 80) -> dict[str, Any]:
    """A configuration whose runtime asked for one published TCP port."""
    mapping = {"hostPort": host_port, "containerPort": container_port, "protocol": "tcp"}
    return conf(runtimeConfig={"portMappings": [mapping]})


# Calling the plugin as a runtime does ----------------------------------------------------------------------------


@attrs.frozen
class Call:
    """One run of the plugin: its exit status, its stdout and its stderr."""

    command: str
    returncode: int
    stdout: str
    stderr: str

    def show(self) -> str:
        return f"{self.command}: exit {self.returncode}\nstdout: {self.stdout!r}\nstderr: {self.stderr[-3000:]}"

    def json(self) -> dict[str, Any]:
        """Stdout as the one JSON object the specification allows there (nothing else may be printed)."""
        try:
            data = json.loads(self.stdout)
        except ValueError:
            raise AssertionError(f"stdout is not one JSON object:\n{self.show()}") from None
        assert isinstance(data, dict), self.show()
        return data


def cni(
    sandbox: Sandbox,
    command: str | None,
    config: Mapping[str, Any] | str,
    *,
    container: str | None = None,
    netns: str | None = None,
    ifname: str | None = "eth0",
    args: str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=test",
    env: Mapping[str, str] | None = None,
) -> Call:
    """Run ``netwrap-cni`` in the sandbox with the ``CNI_*`` variables (None leaves one out), ``env`` and
    ``config`` on stdin (a mapping is sent as JSON, a string as it is)."""
    sandbox.check_alive()
    given = dict(env or {})
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "CNI_ARGS": args, "CNI_PATH": "/opt/cni/bin", **given}
    for key, value in (
        ("CNI_COMMAND", command),
        ("CNI_CONTAINERID", container),
        ("CNI_NETNS", netns),
        ("CNI_IFNAME", ifname),
    ):
        if value is not None:
            env[key] = value
    text = config if isinstance(config, str) else json.dumps(config)
    done = subprocess.run(
        [*sandbox.prefix, str(PLUGIN)], input=text, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    return Call(command or "(no CNI_COMMAND)", done.returncode, done.stdout, done.stderr)


def succeeded(call: Call) -> Call:
    """Exit 0; DEL, CHECK, GC and STATUS print nothing."""
    assert call.returncode == 0, call.show()
    if call.command in ("DEL", "CHECK", "GC", "STATUS"):
        assert call.stdout == "", call.show()
    return call


def failed(call: Call, code: int) -> dict[str, Any]:
    """A non-zero exit with the specification's error object, of ``code``, as the whole of stdout."""
    assert call.returncode != 0, call.show()
    error = call.json()
    assert error.get("code") == code, call.show()
    assert isinstance(error.get("msg"), str) and error["msg"], call.show()
    assert isinstance(error.get("cniVersion"), str), call.show()
    assert set(error) <= {"cniVersion", "code", "msg", "details"}, call.show()
    return error


def text_of(error: Mapping[str, Any]) -> str:
    return f"{error.get('msg', '')}\n{error.get('details', '')}"


def add(sandbox: Sandbox, name: str, config: Mapping[str, Any] | None = None, ifname: str = "eth0") -> dict[str, Any]:
    """ADD container ``name`` (namespace /run/netns/NAME); its result."""
    call = succeeded(cni(sandbox, "ADD", config or conf(), container=name, netns=netns_path(name), ifname=ifname))
    return call.json()


def delete(sandbox: Sandbox, name: str, config: Mapping[str, Any] | None = None, netns: str | None = None) -> None:
    succeeded(cni(sandbox, "DEL", config or conf(), container=name, netns=netns_path(name) if netns is None else netns))


def check(sandbox: Sandbox, name: str, config: Mapping[str, Any] | None = None) -> Call:
    return cni(sandbox, "CHECK", config or conf(), container=name, netns=netns_path(name))


def address_of(result: Mapping[str, Any]) -> str:
    """The one address an ADD result gives, without its prefix length."""
    (ip,) = result["ips"]
    return str(ip["address"]).split("/")[0]


# The sandbox and its namespaces ------------------------------------------------------------------------------------


def netns_path(name: str) -> str:
    return f"/run/netns/{name}"


def run(sandbox: Sandbox, *argv: str, netns: str | None = None) -> Result:
    return sandbox.runner.run(Command(argv[0], argv[1:], netns=netns))


def read(sandbox: Sandbox, *argv: str, netns: str | None = None) -> str:
    return sandbox.runner.run(Command(argv[0], argv[1:], netns=netns, mutates=False)).stdout


def make_container(sandbox: Sandbox, name: str) -> None:
    """A container's network namespace as a runtime makes it: named, with lo up (the loopback plugin's part)."""
    run(sandbox, "ip", "netns", "add", name)
    run(sandbox, "ip", "link", "set", "lo", "up", netns=name)


def links(sandbox: Sandbox, netns: str | None = None) -> dict[str, dict[str, Any]]:
    """``ip -json link`` of the host (or of a namespace), by name."""
    listed = json.loads(read(sandbox, "ip", "-json", "link", "show", netns=netns))
    return {x["ifname"]: x for x in listed}


def addresses(sandbox: Sandbox, netns: str, device: str) -> list[str]:
    """The IPv4 addresses (``A.B.C.D/N``) on ``device`` in ``netns``; [] when there is no such device."""
    listed = json.loads(read(sandbox, "ip", "-json", "-4", "addr", "show", netns=netns))
    return [f"{a['local']}/{a['prefixlen']}" for x in listed if x["ifname"] == device for a in x.get("addr_info", [])]


def named_namespaces(sandbox: Sandbox) -> set[str]:
    return {line.split()[0] for line in read(sandbox, "ip", "netns", "list").splitlines() if line.strip()}


def bridge_ports(sandbox: Sandbox, bridge: str = BRIDGE) -> set[str]:
    return {name for name, link in links(sandbox).items() if link.get("master") == bridge}


def nat_rules(sandbox: Sandbox) -> list[str]:
    return read(sandbox, "iptables", "-t", "nat", "-S").splitlines()


def clean_dry_run(sandbox: Sandbox) -> Result:
    """``netwrap clean --dry-run`` on the plugin's state directory, inside the sandbox."""
    argv = ("-m", "netwrap", "clean", "--dry-run", "--state-dir", STATE_DIR)
    return sandbox.runner.run(Command(sys.executable, argv, mutates=False, ok_codes=ANY_EXIT))


def assert_same(before: snapshot.Snapshot, sandbox: Sandbox) -> None:
    diff = before.explain(snapshot.take(sandbox.runner))
    assert diff == [], "the sandbox's network is not as it was:\n" + "\n".join(diff)


def answers(sandbox: Sandbox, target: str, netns: str | None) -> bool:
    return ping(sandbox.runner, target, netns)


def tcp(sandbox: Sandbox, server: str, client: str | None, host: str, port: int, listen: int = 80) -> None:
    """A real TCP connection from ``client`` (None: the host) to ``host:port`` reaches a listener on ``listen``
    in ``server``."""
    ok, detail = tcp_probe(sandbox.runner, server, client, host, port, listen_port=listen)
    assert ok, detail


# VERSION and refusals ------------------------------------------------------------------------------------------------


def test_version_negotiation_and_an_unsupported_version_in_add(sandbox: Sandbox) -> None:
    for version in ("1.0.0", "1.1.0"):
        answer = succeeded(cni(sandbox, "VERSION", {"cniVersion": version}, ifname=None)).json()
        assert answer["cniVersion"] == version, answer  # the value of cniVersion specified on input
        assert {"1.0.0", "1.1.0"} <= set(answer["supportedVersions"]), answer
        assert all(isinstance(v, str) for v in answer["supportedVersions"])
    older = succeeded(cni(sandbox, "VERSION", {"cniVersion": "0.4.0"}, ifname=None)).json()
    assert "0.4.0" not in older["supportedVersions"], older
    empty = succeeded(cni(sandbox, "VERSION", "", ifname=None)).json()  # no configuration at all
    assert {"1.0.0", "1.1.0"} <= set(empty["supportedVersions"]), empty

    make_container(sandbox, "c1")
    before = snapshot.take(sandbox.runner)
    for version in ("0.4.0", "9.9.9"):
        error = failed(cni(sandbox, "ADD", conf(version), container="c1", netns=netns_path("c1")), 1)
        assert version in text_of(error), error
    assert_same(before, sandbox)  # a refused ADD changes nothing


def test_version_answers_with_the_cni_version_it_was_asked_even_one_it_does_not_support(sandbox: Sandbox) -> None:
    # Version result, 1.0.0: "cniVersion: The value of cniVersion specified on input"
    for version in ("0.4.0", "0.3.1"):
        answer = succeeded(cni(sandbox, "VERSION", {"cniVersion": version}, ifname=None)).json()
        assert answer["cniVersion"] == version, answer


def test_an_error_carries_the_cni_version_of_the_configuration(sandbox: Sandbox) -> None:
    # Error, 1.0.0: "cniVersion: The same value as provided by the configuration"
    make_container(sandbox, "c1")
    ns = netns_path("c1")
    refusals = [
        ("bad CNI_IFNAME", cni(sandbox, "ADD", conf(), container="c1", netns=ns, ifname="a/b"), 4),
        ("no CNI_CONTAINERID", cni(sandbox, "DEL", conf(), container=None, netns=ns), 4),
        ("no CNI_COMMAND", cni(sandbox, None, conf(), container="c1", netns=ns), 4),
        ("bad mtu", cni(sandbox, "ADD", conf(mtu="big"), container="c1", netns=ns), 7),
        ("unknown container", cni(sandbox, "CHECK", conf(), container="c9", netns=ns), 3),
    ]
    wrong = []
    for what, call, code in refusals:
        error = failed(call, code)
        if error["cniVersion"] != "1.0.0":
            wrong.append(f"{what} (code {code}): cniVersion {error['cniVersion']!r}")
    assert wrong == [], "errors that do not carry the configuration's cniVersion 1.0.0: " + "; ".join(wrong)


def test_bad_environment_bad_json_and_bad_configuration_are_refused_with_their_codes(sandbox: Sandbox) -> None:
    make_container(sandbox, "c1")
    before = snapshot.take(sandbox.runner)
    ns = netns_path("c1")
    # 4: invalid necessary environment variables
    # (the message "must contain the names of invalid variables")
    assert "CNI_COMMAND" in text_of(failed(cni(sandbox, None, conf(), container="c1", netns=ns), 4))
    assert "CNI_COMMAND" in text_of(failed(cni(sandbox, "NOPE", conf(), container="c1", netns=ns), 4))
    for ifname in (None, "", "a/b", "eth 0", "x" * 16):
        for command in ("ADD", "DEL", "CHECK"):
            error = failed(cni(sandbox, command, conf(), container="c1", netns=ns, ifname=ifname), 4)
            assert "CNI_IFNAME" in text_of(error), error
    for container in (None, "", "-starts-with-a-dash", "has/slash"):
        error = failed(cni(sandbox, "ADD", conf(), container=container, netns=ns), 4)
        assert "CNI_CONTAINERID" in text_of(error), error
    for netns in (None, "", "relative/path"):
        for command in ("ADD", "CHECK"):
            error = failed(cni(sandbox, command, conf(), container="c1", netns=netns), 4)
            assert "CNI_NETNS" in text_of(error), error
    # 6: what is on stdin is not JSON (or not an object)
    for stdin in ("{not json", "", "[1, 2]"):
        for command in ("ADD", "DEL", "CHECK"):
            failed(cni(sandbox, command, stdin, container="c1", netns=ns), 6)
    # 7: invalid network configuration, naming the key
    wrong: list[tuple[str, dict[str, Any]]] = [
        ("subnet", conf(subnet="10.89.0.0/33")),
        ("subnet", {k: v for k, v in conf().items() if k != "subnet"}),
        ("gateway", conf(gateway="10.90.0.1")),
        ("mtu", conf(mtu="big")),
        ("mtu", conf(mtu=10)),
        ("ipMasq", conf(ipMasq="yes")),
        ("name", conf(name="bad name")),
        ("type", conf(type="bridge")),
        ("dataDir", conf(dataDir=7)),
        ("hostPort", conf(runtimeConfig={"portMappings": [{"hostPort": 0, "containerPort": 80}]})),
        ("protocol", conf(runtimeConfig={"portMappings": [{"hostPort": 80, "containerPort": 80, "protocol": "x"}]})),
    ]
    for key, config in wrong:
        error = failed(cni(sandbox, "ADD", config, container="c1", netns=ns), 7)
        assert key in error["msg"], (key, error)
    assert_same(before, sandbox)
    assert not Path(f"/proc/{sandbox.pid}/root{DATA_DIR}/{NETWORK}/leases.json").exists()


# ADD -------------------------------------------------------------------------------------------------------------


def test_the_add_result_is_the_specifications_and_describes_what_was_made(sandbox: Sandbox) -> None:
    make_container(sandbox, "c1")
    before = snapshot.take(sandbox.runner)
    dns = {"nameservers": ["10.89.0.1"], "search": ["example.test"]}
    result = add(sandbox, "c1", conf(dns=dns))
    assert result["cniVersion"] == "1.0.0"  # the configuration's
    interfaces = result["interfaces"]
    assert all(MAC.match(i.get("mac", "")) for i in interfaces), interfaces
    inside = [i for i, x in enumerate(interfaces) if "sandbox" in x]
    assert len(inside) == 1, interfaces
    container_if = interfaces[inside[0]]
    assert container_if["name"] == "eth0"  # CNI_IFNAME
    assert container_if["sandbox"] == netns_path("c1")  # CNI_NETNS
    (ip,) = result["ips"]
    assert ip["interface"] == inside[0], result
    assert ipaddress.IPv4Interface(ip["address"]).network == SUBNET
    assert ip["gateway"] == GATEWAY
    address = address_of(result)
    assert {"dst": "0.0.0.0/0", "gw": GATEWAY} in result["routes"]
    assert result["dns"] == dns
    # ...and it is what the kernel holds
    assert links(sandbox, "c1")["eth0"]["address"] == container_if["mac"]
    assert addresses(sandbox, "c1", "eth0") == [ip["address"]]
    assert f"default via {GATEWAY} dev eth0" in read(sandbox, "ip", "route", netns="c1")
    host = links(sandbox)
    others = [x for x in interfaces if "sandbox" not in x]
    assert others, "the result lists no host-side interface"
    for each in others:
        assert each["name"] in host, f"{each['name']} of the result is not on the host"
        assert host[each["name"]]["address"] == each["mac"], each
    assert BRIDGE in host and len(bridge_ports(sandbox)) == 1
    assert answers(sandbox, address, None), "the host does not reach the container"
    succeeded(check(sandbox, "c1", conf(dns=dns, prevResult=result)))
    delete(sandbox, "c1", conf(dns=dns, prevResult=result))
    assert_same(before, sandbox)


def test_host_local_style_ipam_a_gateway_a_bridge_name_and_an_mtu(sandbox: Sandbox) -> None:
    make_container(sandbox, "c1")
    make_container(sandbox, "c2")
    before = snapshot.take(sandbox.runner)
    ranges = conf(
        ipam={"type": "host-local", "ranges": [[{"subnet": "10.89.5.0/24", "gateway": "10.89.5.254"}]]},
        bridge="nwtest0",
        mtu=1400,
    )
    del ranges["subnet"]
    result = add(sandbox, "c1", ranges)
    assert result["ips"][0]["gateway"] == "10.89.5.254"
    assert ipaddress.IPv4Interface(result["ips"][0]["address"]).network == ipaddress.IPv4Network("10.89.5.0/24")
    assert {"dst": "0.0.0.0/0", "gw": "10.89.5.254"} in result["routes"]
    assert "nwtest0" in [x["name"] for x in result["interfaces"]]
    assert links(sandbox, "c1")["eth0"]["mtu"] == 1400
    assert "10.89.5.254/24" in [
        f"{a['local']}/{a['prefixlen']}"
        for x in json.loads(read(sandbox, "ip", "-json", "-4", "addr", "show", "dev", "nwtest0"))
        for a in x["addr_info"]
    ]
    assert answers(sandbox, "10.89.5.254", "c1")
    subnet_form = conf(
        ipam={"type": "host-local", "subnet": "10.89.5.0/24", "gateway": "10.89.5.254"}, bridge="nwtest0", mtu=1400
    )
    del subnet_form["subnet"]
    second = add(sandbox, "c2", subnet_form)
    assert address_of(second) != address_of(result)
    assert answers(sandbox, address_of(result), "c2")
    delete(sandbox, "c1", ranges)
    delete(sandbox, "c2", subnet_form)
    assert_same(before, sandbox)


def test_two_containers_reach_each_other_the_outside_and_a_published_port(sandbox: Sandbox, outside: Sandbox) -> None:
    make_container(sandbox, "c1")
    make_container(sandbox, "c2")
    before = snapshot.take(sandbox.runner)
    a1 = address_of(add(sandbox, "c1", published()))
    a2 = address_of(add(sandbox, "c2"))
    assert a1 != a2
    # container to container, both ways; the host to each
    assert answers(sandbox, a2, "c1") and answers(sandbox, a1, "c2")
    assert answers(sandbox, a1, None) and answers(sandbox, a2, None)
    # outbound: the outside has no route to the containers' subnet, so an answer needs ipMasq's masquerade
    assert "10.89.0.0" not in read(sandbox, "ip", "route", netns=OUTSIDE)
    assert answers(sandbox, OUTSIDE_ADDRESS, "c1") and answers(sandbox, OUTSIDE_ADDRESS, "c2")
    # the published port 8080 -> c1:80, from a remote machine, the host, the host's loopback, another container
    tcp(sandbox, "c1", OUTSIDE, HOST_UPLINK_ADDRESS, PUBLISHED)
    tcp(sandbox, "c1", None, HOST_UPLINK_ADDRESS, PUBLISHED)
    tcp(sandbox, "c1", None, "127.0.0.1", PUBLISHED)
    tcp(sandbox, "c1", "c2", GATEWAY, PUBLISHED)
    tcp(sandbox, "c1", "c2", HOST_UPLINK_ADDRESS, PUBLISHED)
    # the plugin's record is netwrap's: clean lists it as a finished build and would remove nothing
    listed = clean_dry_run(sandbox)
    assert listed.returncode == 0, listed.stderr
    # (the record's name is the plugin's business: cni-t1, or topology-cni-t1 as netwrap names a topology's)
    assert re.search(r"^\S*cni-t1: kept, \d+ object\(s\): .*finished", listed.stdout, re.MULTILINE), listed.stdout
    assert "crashed" not in listed.stdout and "would remove" not in listed.stdout, listed.stdout
    delete(sandbox, "c1", published())
    assert answers(sandbox, a2, None), "c1's DEL cut c2 off"
    assert not any(f"--dport {PUBLISHED}" in rule for rule in nat_rules(sandbox)), "c1's port is still published"
    delete(sandbox, "c2")
    assert_same(before, sandbox)
    gone = clean_dry_run(sandbox)
    assert gone.returncode == 0 and gone.stdout == "" and "no records" in gone.stderr, (gone.stdout, gone.stderr)


def test_a_repeated_add_is_refused_and_changes_nothing_and_a_repeated_del_is_no_error(sandbox: Sandbox) -> None:
    make_container(sandbox, "c1")
    before = snapshot.take(sandbox.runner)
    first = add(sandbox, "c1", published())
    added = snapshot.take(sandbox.runner)
    # ADD, 1.0.0: "If an interface of the requested name already exists in the container, the CNI plugin MUST
    # return with an error." (A runtime "should not call ADD twice (without an intervening DEL)".)
    refused = failed(cni(sandbox, "ADD", published(), container="c1", netns=netns_path("c1")), 101)
    assert "eth0" in text_of(refused) and "DEL" in text_of(refused), refused
    assert_same(added, sandbox)  # nothing changed, nothing taken away
    succeeded(check(sandbox, "c1", published() | {"prevResult": first}))
    # the interface gone from inside the container: an ADD makes it again, with the same address and port
    run(sandbox, "ip", "link", "delete", "eth0", netns="c1")
    again = add(sandbox, "c1", published())
    assert address_of(again) == address_of(first)
    assert again["ips"] == first["ips"] and again["routes"] == first["routes"]
    assert len(bridge_ports(sandbox)) == 1, bridge_ports(sandbox)
    assert addresses(sandbox, "c1", "eth0") == [first["ips"][0]["address"]]
    assert sum(f"--dport {PUBLISHED}" in rule for rule in nat_rules(sandbox)) == 1, nat_rules(sandbox)
    succeeded(check(sandbox, "c1", published()))
    for _ in range(3):
        delete(sandbox, "c1", published())
    succeeded(cni(sandbox, "DEL", conf(), container="never-added", netns=netns_path("c1")))
    succeeded(cni(sandbox, "DEL", conf(), container="never-added", netns=""))
    assert_same(before, sandbox)


def test_an_address_asked_for_in_cni_args_is_given_and_one_taken_is_refused(sandbox: Sandbox) -> None:
    """``podman run --ip`` passes ``IP=`` in CNI_ARGS (with ``IgnoreUnknown=1``), as host-local reads it."""
    for name in ("c1", "c2", "c3"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    asked = cni(sandbox, "ADD", conf(), container="c1", netns=netns_path("c1"), args="IgnoreUnknown=1;IP=10.89.0.77")
    assert address_of(succeeded(asked).json()) == "10.89.0.77"
    assert addresses(sandbox, "c1", "eth0") == ["10.89.0.77/24"]
    assert answers(sandbox, "10.89.0.77", None)
    added = snapshot.take(sandbox.runner)
    again = cni(sandbox, "ADD", conf(), container="c2", netns=netns_path("c2"), args="IgnoreUnknown=1;IP=10.89.0.77")
    assert "leased to c1/eth0" in text_of(failed(again, 101))
    assert_same(added, sandbox)  # the second changed nothing, and the first still has its address
    assert address_of(add(sandbox, "c3")) == "10.89.0.2"  # the lowest free, as ever
    for name in ("c1", "c3"):
        delete(sandbox, name)
    # a container removed without DEL (its namespace gone) holds no address another asks for
    asked = cni(sandbox, "ADD", conf(), container="c1", netns=netns_path("c1"), args="IgnoreUnknown=1;IP=10.89.0.77")
    succeeded(asked)
    run(sandbox, "ip", "netns", "delete", "c1")
    again = cni(sandbox, "ADD", conf(), container="c2", netns=netns_path("c2"), args="IgnoreUnknown=1;IP=10.89.0.77")
    assert address_of(succeeded(again).json()) == "10.89.0.77"
    delete(sandbox, "c2")
    make_container(sandbox, "c1")
    assert_same(before, sandbox)


def test_a_failed_add_of_an_attachment_that_was_there_gives_back_what_it_had(sandbox: Sandbox) -> None:
    """A repeated ADD that fails (its interface gone, asking another's port; or naming another namespace) leaves
    the lease as it was: the network goes on, and no other container loses its port."""
    for name in ("c1", "c2", "c3", "c1new"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    add(sandbox, "c1", published(8080))
    a2 = address_of(add(sandbox, "c2", published(8081)))
    run(sandbox, "ip", "link", "delete", "eth0", netns="c1")  # so that a repeated ADD is let through
    refused = failed(cni(sandbox, "ADD", published(8081), container="c1", netns=netns_path("c1")), 7)
    assert "8081" in text_of(refused), refused
    assert [r for r in nat_rules(sandbox) if "--dport 8081" in r] == [
        f"-A NETWRAP-cni-t1 -p tcp -m tcp --dport 8081 -j DNAT --to-destination {a2}:80"
    ]
    assert addresses(sandbox, "c2", "eth0") == [f"{a2}/24"]
    succeeded(check(sandbox, "c2", published(8081)))
    refused = failed(cni(sandbox, "ADD", published(8080), container="c1", netns=netns_path("c1new")), 101)
    delete(sandbox, "c1", published(8080))  # the lease still names c1's own namespace: DEL finds it
    add(sandbox, "c3")  # and the network goes on
    succeeded(check(sandbox, "c2", published(8081)))
    for name in ("c2", "c3"):
        delete(sandbox, name)
    assert_same(before, sandbox)


def test_another_tools_bridge_or_chain_of_the_networks_name_is_refused_and_left_as_it_was(sandbox: Sandbox) -> None:
    """Changed in place (a MAC, a chain's rules), another tool's bridge or chain was recorded as netwrap's and
    deleted by the last DEL."""
    make_container(sandbox, "c1")
    before = snapshot.take(sandbox.runner)
    for made, remove in (
        ((("ip", "link", "add", BRIDGE, "type", "bridge"), ("ip", "addr", "add", "192.0.2.78/32", "dev", BRIDGE)),
         ("ip", "link", "del", BRIDGE)),
        ((("iptables", "-t", "nat", "-N", "NETWRAP-cni-t1"),
          ("iptables", "-t", "nat", "-A", "NETWRAP-cni-t1", "-s", "192.0.2.9/32", "-j", "RETURN")),
         ("sh", "-c", "iptables -t nat -F NETWRAP-cni-t1 && iptables -t nat -X NETWRAP-cni-t1")),
    ):  # fmt: skip
        for command in made:
            run(sandbox, *command)
        theirs = snapshot.take(sandbox.runner)
        refused = failed(cni(sandbox, "ADD", conf(), container="c1", netns=netns_path("c1")), 101)
        assert "not made by netwrap" in text_of(refused), refused
        assert_same(theirs, sandbox)  # nothing changed: theirs as it was, nothing of netwrap's
        delete(sandbox, "c1")
        assert_same(theirs, sandbox)
        run(sandbox, *remove)
    assert_same(before, sandbox)
    add(sandbox, "c1")  # the names free again: the network is made
    delete(sandbox, "c1")
    assert_same(before, sandbox)


def test_a_bridge_renamed_in_the_configuration_moves_every_attachment_at_the_next_add(sandbox: Sandbox) -> None:
    """An edit of the configuration, as of a topology file: the next call makes the network the new one says.
    The removal of the old bridge runs before the build, and the reads started ahead of it are read again."""
    for name in ("c1", "c2", "c3"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    given = {name: address_of(add(sandbox, name)) for name in ("c1", "c2")}
    renamed = conf(bridge="br-other")
    given["c3"] = address_of(add(sandbox, "c3", renamed))
    assert "cni-t1" not in links(sandbox, None)
    ports = read(sandbox, "ip", "-o", "link", "show", "master", "br-other")
    assert ports.count("master br-other") == 3, ports
    for name, address in given.items():
        succeeded(check(sandbox, name, renamed))
        assert answers(sandbox, address, None), name
    assert answers(sandbox, given["c1"], "c3")
    for name in ("c1", "c2", "c3"):
        delete(sandbox, name, renamed)
    assert_same(before, sandbox)


def test_check_of_one_container_is_not_failed_by_another_containers_missing_rule(sandbox: Sandbox) -> None:
    """The nat chain holds every container's published ports: CHECK judges the rules that concern its own."""
    for name in ("c1", "c2"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    add(sandbox, "c1", published(8081))
    add(sandbox, "c2", published(8082))
    (theirs,) = [rule for rule in nat_rules(sandbox) if "--dport 8082" in rule and "DNAT" in rule]
    run(sandbox, "iptables", "-t", "nat", *theirs.replace("-A ", "-D ", 1).split())
    succeeded(check(sandbox, "c1", published(8081)))
    assert "8082" in text_of(failed(check(sandbox, "c2", published(8082)), 100))
    (mine,) = [rule for rule in nat_rules(sandbox) if "--dport 8081" in rule and "DNAT" in rule]
    run(sandbox, "iptables", "-t", "nat", *mine.replace("-A ", "-D ", 1).split())
    assert "8081" in text_of(failed(check(sandbox, "c1", published(8081)), 100))
    for name, port in (("c1", 8081), ("c2", 8082)):
        delete(sandbox, name, published(port))
    assert_same(before, sandbox)


def test_an_add_into_the_plugins_own_namespace_or_a_file_that_is_none_is_refused(sandbox: Sandbox) -> None:
    """The host's own namespace (a runtime's mistake) would get the container's interface among its devices."""
    before = snapshot.take(sandbox.runner)
    run(sandbox, "touch", "/run/not-a-namespace")
    for netns, words in (("/proc/self/ns/net", "host's own"), ("/run/not-a-namespace", "not a namespace"),
                         ("/proc/self/ns/mnt", "another kind")):  # fmt: skip
        error = failed(cni(sandbox, "ADD", conf(), container="c1", netns=netns), 4)
        assert "CNI_NETNS" in text_of(error) and words in text_of(error), error
    run(sandbox, "rm", "/run/not-a-namespace")
    assert_same(before, sandbox)
    assert not Path(f"/proc/{sandbox.pid}/root{DATA_DIR}/{NETWORK}/leases.json").exists()


def test_add_into_a_namespace_that_has_the_interface_already_fails_and_gives_everything_back(sandbox: Sandbox) -> None:
    make_container(sandbox, "c1")
    make_container(sandbox, "c2")
    run(sandbox, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "theirs0", netns="c2")
    run(sandbox, "ip", "addr", "add", "198.51.100.5/24", "dev", "eth0", netns="c2")  # not the plugin's
    before = snapshot.take(sandbox.runner)
    a1 = address_of(add(sandbox, "c1"))
    # "If an interface of the requested name already exists in the container, the CNI plugin MUST return with
    # an error."
    refused = failed(cni(sandbox, "ADD", conf(), container="c2", netns=netns_path("c2")), 101)
    assert "eth0 exists" in refused["msg"] and "not netwrap's" in refused["msg"], refused
    assert addresses(sandbox, "c2", "eth0") == ["198.51.100.5/24"]
    assert answers(sandbox, a1, None), "the failed ADD broke another container"
    # the runtime's DEL after a failed ADD takes nothing of what was there before
    delete(sandbox, "c2")
    assert addresses(sandbox, "c2", "eth0") == ["198.51.100.5/24"]
    make_container(sandbox, "c3")
    assert address_of(add(sandbox, "c3")) != a1
    for name in ("c1", "c3"):
        delete(sandbox, name)
    run(sandbox, "ip", "netns", "delete", "c3")
    assert_same(before, sandbox)


def test_a_host_port_published_twice_is_refused_and_the_first_keeps_it(sandbox: Sandbox) -> None:
    make_container(sandbox, "c1")
    make_container(sandbox, "c2")
    before = snapshot.take(sandbox.runner)
    a1 = address_of(add(sandbox, "c1", published()))
    refused = cni(sandbox, "ADD", published(), container="c2", netns=netns_path("c2"))
    assert refused.returncode != 0, refused.show()
    assert str(PUBLISHED) in text_of(refused.json()), refused.show()
    assert "eth0" not in links(sandbox, "c2")
    tcp(sandbox, "c1", None, "127.0.0.1", PUBLISHED)
    delete(sandbox, "c2", published())  # the runtime's DEL after the failed ADD
    tcp(sandbox, "c1", None, "127.0.0.1", PUBLISHED)
    a2 = address_of(add(sandbox, "c2", published(8081)))
    assert a2 != a1
    tcp(sandbox, "c2", None, "127.0.0.1", 8081)
    delete(sandbox, "c1", published())
    delete(sandbox, "c2", published(8081))
    assert_same(before, sandbox)


def test_a_prev_result_given_to_add_is_output_with_the_plugins_additions(sandbox: Sandbox) -> None:
    # Result types, 1.0.0: "Plugins provided a prevResult key as part of their request configuration must output
    # it as their result, with any possible modifications made by that plugin included."  Here netwrap is chained
    # after the reference loopback plugin, as a configuration list may order them.
    loopback = Path("/usr/lib/cni/loopback")
    if not loopback.exists():
        pytest.skip("needs the reference loopback plugin (Debian's containernetworking-plugins)")
    run(sandbox, "ip", "netns", "add", "c1")  # lo down: the loopback plugin brings it up
    before = snapshot.take(sandbox.runner)
    env = {
        "PATH": SYSTEM_PATH,
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": netns_path("c1"),
        "CNI_IFNAME": "lo",
        "CNI_PATH": str(loopback.parent),
    }
    first = subprocess.run(
        [*sandbox.prefix, str(loopback)],
        input=json.dumps({"cniVersion": "1.0.0", "name": NETWORK, "type": "loopback"}),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    previous = json.loads(first.stdout)
    result = add(sandbox, "c1", conf(prevResult=previous))
    names = [x["name"] for x in result["interfaces"]]
    for interface in previous.get("interfaces", []):
        assert interface in result["interfaces"], f"the previous result's {interface} is not passed on: {names}"
    for ip in previous.get("ips", []):
        moved = {**ip, "interface": names.index(previous["interfaces"][ip["interface"]]["name"])}
        assert moved in result["ips"], f"the previous result's {ip} is not passed on: {result['ips']}"
    own = [x for x in result["ips"] if x["address"].startswith("10.89.0.")]
    assert len(own) == 1 and result["interfaces"][own[0]["interface"]]["name"] == "eth0", result
    delete(sandbox, "c1", conf(prevResult=result))
    env["CNI_COMMAND"] = "DEL"
    subprocess.run(
        [*sandbox.prefix, str(loopback)],
        input=json.dumps({"cniVersion": "1.0.0", "name": NETWORK, "type": "loopback"}),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    run(sandbox, "ip", "link", "set", "lo", "down", netns="c1")  # the loopback plugin's DEL leaves lo up
    run(sandbox, "ip", "addr", "flush", "dev", "lo", netns="c1")  # and a lo set down keeps 127.0.0.1
    assert_same(before, sandbox)


def test_one_container_on_two_networks_with_two_interface_names(sandbox: Sandbox) -> None:
    # 1.0.0, ADD: "a given container ID may be added to a specific network more than once only if each addition
    # is done with a different interface name"; attachments are (CNI_CONTAINERID, CNI_IFNAME). A runtime attaches
    # a container to a second network as eth1 (podman run --network a,b).
    for name in ("c1", "c2"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    front = conf(name="front", subnet="10.89.20.0/24")
    back = conf(name="back", subnet="10.89.21.0/24")
    f1, f2 = (address_of(add(sandbox, name, front, ifname="eth0")) for name in ("c1", "c2"))
    second = cni(sandbox, "ADD", back, container="c1", netns=netns_path("c1"), ifname="eth1")
    assert second.returncode == 0, "c1 cannot join a second network as eth1:\n" + second.show()
    (b1,) = [ip["address"].split("/")[0] for ip in second.json()["ips"]]
    b2 = address_of(add(sandbox, "c2", back, ifname="eth1"))
    assert addresses(sandbox, "c1", "eth1") == [f"{b1}/24"]
    assert answers(sandbox, b2, "c1") and answers(sandbox, b1, "c2")
    assert answers(sandbox, f2, "c1") and answers(sandbox, f1, "c2"), "joining the second network broke the first"
    for name in ("c1", "c2"):
        succeeded(cni(sandbox, "CHECK", front, container=name, netns=netns_path(name), ifname="eth0"))
        succeeded(cni(sandbox, "CHECK", back, container=name, netns=netns_path(name), ifname="eth1"))
    delete_if = [
        (name, config, ifname) for name in ("c1", "c2") for config, ifname in ((back, "eth1"), (front, "eth0"))
    ]
    for name, config, ifname in delete_if:
        succeeded(cni(sandbox, "DEL", config, container=name, netns=netns_path(name), ifname=ifname))
    assert_same(before, sandbox)


# DEL ----------------------------------------------------------------------------------------------------------------


def test_del_when_the_namespace_is_gone_or_not_given_and_with_an_empty_prev_result(sandbox: Sandbox) -> None:
    for name in ("c1", "c2", "c3"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    a1 = address_of(add(sandbox, "c1"))
    a2 = address_of(add(sandbox, "c2"))
    ports_with_c1 = bridge_ports(sandbox)
    attached_with_c1 = named_namespaces(sandbox)
    run(sandbox, "ip", "netns", "delete", "c1")  # the runtime removed the namespace before its DEL
    delete(sandbox, "c1", netns=netns_path("c1"))  # a path that no longer exists
    delete(sandbox, "c1", netns="")  # and once more with none at all
    assert len(bridge_ports(sandbox)) == len(ports_with_c1) - 1, "c1's host end is still on the bridge"
    assert len(named_namespaces(sandbox)) == len(attached_with_c1) - 2, "the name the plugin gave c1 is left"
    assert address_of(add(sandbox, "c3")) == a1, "c1's address was not freed"
    assert answers(sandbox, a2, None) and answers(sandbox, a1, None)
    succeeded(check(sandbox, "c2"))
    # a DEL whose prevResult is empty (the runtime lost the ADD result)
    delete(sandbox, "c2", conf(prevResult={}))
    assert addresses(sandbox, "c2", "eth0") == [] and "eth0" not in links(sandbox, "c2")
    delete(sandbox, "c3", netns="")  # CNI_NETNS empty while the namespace still exists
    assert "eth0" not in links(sandbox, "c3")
    # a DEL after the container's interface was already removed inside
    add(sandbox, "c3")
    run(sandbox, "ip", "link", "delete", "eth0", netns="c3")
    delete(sandbox, "c3")
    make_container(sandbox, "c1")  # as it was before
    assert_same(before, sandbox)


def test_a_process_started_with_unshare_is_added_by_its_proc_path_and_deleted_after_it_ended(
    sandbox: Sandbox, outside: Sandbox
) -> None:
    make_container(sandbox, "c2")
    before = snapshot.take(sandbox.runner)
    process = subprocess.Popen([*sandbox.prefix, "unshare", "--net", "sleep", "300"])
    try:
        path = f"/proc/{process.pid}/ns/net"
        wait_unshared(sandbox, process.pid)
        call = succeeded(cni(sandbox, "ADD", conf(), container="proc1", netns=path))
        result = call.json()
        assert [x["sandbox"] for x in result["interfaces"] if "sandbox" in x] == [path]
        a2 = address_of(add(sandbox, "c2"))
        shown = subprocess.run(
            ["nsenter", f"--net={path}", "ip", "-4", "-o", "addr", "show", "eth0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert result["ips"][0]["address"] in shown
        assert answers(sandbox, address_of(result), "c2")
        assert answers(sandbox, a2, None)
    finally:
        process.kill()
        process.wait()
    succeeded(cni(sandbox, "DEL", conf(), container="proc1", netns=""))
    assert answers(sandbox, a2, None)
    delete(sandbox, "c2")
    assert_same(before, sandbox)


# CHECK ------------------------------------------------------------------------------------------------------------


def test_check_passes_after_add_and_names_what_was_broken(sandbox: Sandbox) -> None:
    make_container(sandbox, "c1")
    make_container(sandbox, "c2")
    before = snapshot.take(sandbox.runner)
    config = published()
    result = add(sandbox, "c1", config)
    address = result["ips"][0]["address"]
    with_prev = config | {"prevResult": result}
    succeeded(check(sandbox, "c1", with_prev))
    # unknown container: code 3
    failed(cni(sandbox, "CHECK", with_prev, container="c9", netns=netns_path("c1")), 3)
    # the container's address taken away
    run(sandbox, "ip", "addr", "flush", "dev", "eth0", netns="c1")
    broken = failed(check(sandbox, "c1", with_prev), 100)
    assert address in text_of(broken), broken
    run(sandbox, "ip", "addr", "add", address, "dev", "eth0", netns="c1")  # put back by hand: CHECK agrees
    run(sandbox, "ip", "route", "add", "default", "via", GATEWAY, netns="c1")
    succeeded(check(sandbox, "c1", with_prev))
    # CHECK, 1.0.0: "The plugin must consult the prevResult to determine the expected interfaces", and "must allow
    # for a later chained plugin to have modified networking resources": a later plugin sets eth0's MAC
    run(sandbox, "ip", "link", "set", "dev", "eth0", "address", "02:00:00:00:00:66", netns="c1")
    broken = failed(check(sandbox, "c1", with_prev), 100)  # the MAC ADD gave: not as this prevResult says
    assert "02:00:00:00:00:66" in text_of(broken), broken
    told = [x | {"mac": "02:00:00:00:00:66"} if x.get("sandbox") else x for x in result["interfaces"]]
    succeeded(check(sandbox, "c1", config | {"prevResult": result | {"interfaces": told}}))
    # a rule of the published port deleted
    (dnat,) = [rule for rule in nat_rules(sandbox) if f"--dport {PUBLISHED}" in rule and "DNAT" in rule]
    run(sandbox, "iptables", "-t", "nat", *dnat.replace("-A ", "-D ", 1).split())
    broken = failed(check(sandbox, "c1", with_prev), 100)
    assert str(PUBLISHED) in text_of(broken), broken
    # the attachment looked for in another namespace than ADD's
    failed(cni(sandbox, "CHECK", with_prev, container="c1", netns=netns_path("c2")), 100)
    # DEL of a broken attachment still removes everything
    delete(sandbox, "c1", with_prev)
    failed(check(sandbox, "c1", with_prev), 3)
    assert_same(before, sandbox)


# Many at once ----------------------------------------------------------------------------------------------------


def test_twenty_parallel_adds_get_twenty_addresses_then_twenty_parallel_dels_leave_nothing(sandbox: Sandbox) -> None:
    names = [f"p{i:02}" for i in range(20)]
    for name in names:
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)

    def add_one(name: str) -> Call:
        return cni(sandbox, "ADD", conf(), container=name, netns=netns_path(name))

    with ThreadPoolExecutor(len(names)) as pool:
        calls = list(pool.map(add_one, names))
    for call in calls:
        succeeded(call)
    given = {name: address_of(call.json()) for name, call in zip(names, calls, strict=True)}
    assert len(set(given.values())) == len(names), given
    assert all(ipaddress.IPv4Address(a) in SUBNET and a != GATEWAY for a in given.values()), given
    for name, address in given.items():
        assert addresses(sandbox, name, "eth0") == [f"{address}/24"], name
    assert len(bridge_ports(sandbox)) == len(names)
    unreachable = [name for name, address in given.items() if not answers(sandbox, address, None)]
    assert unreachable == [], f"the host does not reach {unreachable}"
    assert answers(sandbox, given["p19"], "p00") and answers(sandbox, given["p00"], "p19")
    for name in names:
        succeeded(check(sandbox, name))

    def del_one(name: str) -> Call:
        return cni(sandbox, "DEL", conf(), container=name, netns=netns_path(name))

    with ThreadPoolExecutor(len(names)) as pool:
        for call in pool.map(del_one, names):
            succeeded(call)
    assert_same(before, sandbox)


def test_ten_dels_and_ten_adds_at_once(sandbox: Sandbox) -> None:
    leaving, coming, staying = ([f"{p}{i}" for i in range(10)] for p in ("a", "b", "s"))
    for name in (*leaving, *coming, *staying):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    for name in (*leaving, *staying):
        add(sandbox, name)
    kept = {name: addresses(sandbox, name, "eth0") for name in staying}

    def call(command: str, name: str) -> Call:
        return cni(sandbox, command, conf(), container=name, netns=netns_path(name))

    with ThreadPoolExecutor(20) as pool:
        dels = [pool.submit(call, "DEL", name) for name in leaving]
        adds = {name: pool.submit(call, "ADD", name) for name in coming}
        for future in dels:
            succeeded(future.result())
        added = {name: address_of(succeeded(future.result()).json()) for name, future in adds.items()}
    assert len(set(added.values())) == 10, added
    assert {f"{a}/24" for a in added.values()}.isdisjoint(a for v in kept.values() for a in v), (added, kept)
    for name in leaving:
        assert "eth0" not in links(sandbox, name), f"{name} kept its interface after DEL"
    for name in staying:
        assert addresses(sandbox, name, "eth0") == kept[name], f"{name} changed"
    for name, address in added.items():
        assert addresses(sandbox, name, "eth0") == [f"{address}/24"], name
    assert len(bridge_ports(sandbox)) == 20
    for name in (*coming, *staying):
        succeeded(check(sandbox, name))
    # every container on the network reaches every newcomer (most got an address a leaver had just freed)
    unreachable = [f"{s} -> {n} ({a})" for n, a in added.items() for s in ("s0", "s9") if not answers(sandbox, a, s)]
    assert unreachable == [], f"no answer: {unreachable}"
    with ThreadPoolExecutor(20) as pool:
        for done in pool.map(lambda name: call("DEL", name), (*coming, *staying)):
            succeeded(done)
    assert_same(before, sandbox)


def test_the_reads_kept_for_the_next_call_are_the_hosts_and_go_with_the_network(sandbox: Sandbox) -> None:
    """Each call starts the host's reads of the last call of its kind ahead (see netwrap.host.prefetch): they are
    kept beside the record, never a container's (its paths are placeholders), and leave with the network."""
    for name in ("c1", "c2"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    add(sandbox, "c1")
    add(sandbox, "c2")
    kept = json.loads(read(sandbox, "cat", f"{STATE_DIR}/.topology-cni-{NETWORK}.reads-add-record.json"))
    assert kept, "an ADD kept no read"
    tools = {entry["tool"] for entry in kept}
    assert tools <= {"ip", "iptables-save", "iptables", "sysctl", "stat"}, tools
    words = [word for entry in kept for word in (*entry["args"], *(entry["input"] or "").split())]
    assert not [word for word in words if word.startswith("/run/netns/") or "v0-cni-" in word], kept  # no container's
    (identities,) = [entry["args"] for entry in kept if entry["tool"] == "stat" and "-L" in entry["args"]]
    assert {"\0source\0", "\0named\0"} <= set(identities)  # where the next ADD reads its own
    (entries,) = [entry["args"] for entry in kept if entry["tool"] == "stat" and "-L" not in entry["args"]]
    assert "\0named\0" in entries  # whether its name is there, following nothing
    assert "\0port\0" in words  # and its own port, by name
    delete(sandbox, "c1")
    delete(sandbox, "c2")
    left = read(sandbox, "ls", "-A", STATE_DIR).split()
    assert not [name for name in left if ".reads-" in name], left
    assert_same(before, sandbox)


def test_the_gateways_mac_stays_as_containers_come_and_go(sandbox: Sandbox) -> None:
    """A bridge whose MAC is not set takes its lowest port's: when that container leaves, the gateway's MAC
    changes under every other container, whose ARP entry then points nowhere until it asks again."""
    for name in ("c1", "c2"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    first = add(sandbox, "c1")
    bridge_mac = links(sandbox)[BRIDGE]["address"]
    assert {"name": BRIDGE, "mac": bridge_mac} in first["interfaces"]
    add(sandbox, "c2")
    assert answers(sandbox, GATEWAY, "c2")  # c2 has the gateway's MAC in its neighbour table
    delete(sandbox, "c1")
    assert links(sandbox)[BRIDGE]["address"] == bridge_mac
    learnt = read(sandbox, "ip", "neigh", "show", GATEWAY, netns="c2")
    assert bridge_mac in learnt, learnt
    assert answers(sandbox, GATEWAY, "c2")
    delete(sandbox, "c2")
    assert_same(before, sandbox)


def test_a_container_given_a_freed_address_is_reachable_by_its_neighbours_at_once(sandbox: Sandbox) -> None:
    for name in ("c1", "c2", "n1"):
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    neighbour = address_of(add(sandbox, "n1"))
    first = address_of(add(sandbox, "c1"))
    assert answers(sandbox, first, "n1")  # n1 has talked to c1: it knows c1's MAC
    first_mac = links(sandbox, "c1")["eth0"]["address"]
    delete(sandbox, "c1")
    again = address_of(add(sandbox, "c2"))
    assert again == first, "the test needs c2 to get the address c1 had"
    shown = read(sandbox, "ip", "neigh", "show", again, netns="n1").strip()
    assert answers(sandbox, again, "n1"), (
        f"n1 does not reach c2 at {again}; n1's neighbour entry: {shown!r}; c1's eth0 was {first_mac}, c2's is "
        f"{links(sandbox, 'c2')['eth0']['address']}"
    )
    assert answers(sandbox, neighbour, "c2")
    for name in ("c2", "n1"):
        delete(sandbox, name)
    assert_same(before, sandbox)


# GC and STATUS (1.1.0) -----------------------------------------------------------------------------------------


def test_gc_keeps_the_valid_attachments_and_removes_the_others(sandbox: Sandbox) -> None:
    names = ["g1", "g2", "g3", "g4", "g5"]
    for name in names:
        make_container(sandbox, name)
    before = snapshot.take(sandbox.runner)
    config = conf("1.1.0")
    given = {name: address_of(add(sandbox, name, config)) for name in names[:4]}
    valid = [{"containerID": "g1", "ifname": "eth0"}, {"containerID": "g3", "ifname": "eth0"}]
    succeeded(cni(sandbox, "GC", config | {"cni.dev/valid-attachments": valid}, container=None, ifname=None))
    for kept in ("g1", "g3"):
        assert addresses(sandbox, kept, "eth0") == [f"{given[kept]}/24"], kept
        assert answers(sandbox, given[kept], None), f"{kept} lost its network in GC"
        succeeded(check(sandbox, kept, config))
    for removed in ("g2", "g4"):
        assert "eth0" not in links(sandbox, removed), f"GC left {removed}'s interface"
        failed(check(sandbox, removed, config), 3)
    assert len(bridge_ports(sandbox)) == 2
    assert address_of(add(sandbox, "g5", config)) == min(given["g2"], given["g4"], key=ipaddress.IPv4Address)
    # GC again with nothing valid: everything goes, as the last DEL would take it
    succeeded(cni(sandbox, "GC", config | {"cni.dev/valid-attachments": []}, container=None, ifname=None))
    for name in ("g1", "g3", "g5"):
        assert "eth0" not in links(sandbox, name)
        delete(sandbox, name, config)  # the runtime's DEL afterwards is no error
    assert_same(before, sandbox)


def test_gc_with_the_valid_attachments_null_as_libcni_encodes_an_empty_list(sandbox: Sandbox) -> None:
    # libcni's GCNetworkList injects ``"cni.dev/valid-attachments": args.ValidAttachments``, a Go slice: a runtime
    # with no valid attachment left (a nil slice) sends ``null``. That is "nothing is valid", not a bad config.
    make_container(sandbox, "g1")
    before = snapshot.take(sandbox.runner)
    config = conf("1.1.0")
    add(sandbox, "g1", config)
    collected = cni(sandbox, "GC", config | {"cni.dev/valid-attachments": None}, container=None, ifname=None)
    succeeded(collected)
    assert "eth0" not in links(sandbox, "g1")
    assert_same(before, sandbox)


def test_status_is_ready_and_says_so_when_its_data_directory_cannot_be_used(sandbox: Sandbox) -> None:
    before = snapshot.take(sandbox.runner)
    succeeded(cni(sandbox, "STATUS", conf("1.1.0"), container=None, ifname=None))
    blocked = "/run/cnidata-is-a-file"
    run(sandbox, "touch", blocked)
    error = failed(cni(sandbox, "STATUS", conf("1.1.0", dataDir=blocked), container=None, ifname=None), 50)
    assert blocked in text_of(error), error
    assert_same(before, sandbox)
