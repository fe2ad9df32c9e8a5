"""``netwrap attach``: running containers of real runtimes wired into a topology (issue 13, part 1).

Docker's and podman's busybox httpd containers, started with ``--network none``, are attached by their
pid; they reach each other and the simulated outside, and their published ports answer from a remote
machine (the outside namespace), the host and 127.0.0.1. Detach, and destroy after the container is gone,
leave the sandbox as it was.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from netwrap import Command, Sandbox
from netwrap.host import snapshot
from netwrap.host.runner import Result
from netwrap.tutorial.verify import HOST_UPLINK_ADDRESS, OUTSIDE, OUTSIDE_ADDRESS, ping
from tests.integration.runtimes import Docker, Podman, addresses, http_get, require_runtime

pytestmark = pytest.mark.integration

TOPOLOGY = """
name = "live"

[networks.apps]
subnet = "10.85.0.0/24"
nat = true

[containers.probe]
networks = ["apps"]
"""


def cli(sandbox: Sandbox, *args: str) -> Result:
    return sandbox.runner.run(Command(sys.executable, ("-m", "netwrap", *args), ok_codes=frozenset(range(256))))


def _attach_and_reach(sandbox: Sandbox, runtime: Docker | Podman, tmp_path: Path) -> None:
    before = snapshot.take(sandbox.runner)
    topo, state = tmp_path / "live.toml", str(tmp_path / "state")
    topo.write_text(TOPOLOGY)
    applied = cli(sandbox, "apply", "-f", str(topo), "--state-dir", state)
    assert applied.returncode == 0, applied.stderr
    web, api = runtime.run_httpd("web"), runtime.run_httpd("api")
    for container, port in ((web, "8080"), (api, "8081")):
        done = cli(sandbox, "attach", "-f", str(topo), "--state-dir", state, "--pid", str(container.pid),
                   "--network", "apps", "--name", container.page, "-p", f"{port}:80")  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
    assert addresses(sandbox, web) == ["10.85.0.3"]  # probe has .2; given in the container's own namespace
    shown = cli(sandbox, "status", "--check", "-f", str(topo), "--state-dir", state)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "web" in shown.stdout
    # the containers reach each other, and the simulated outside
    assert http_get(sandbox, "http://10.85.0.4/", netns="/run/netns/web") == "api"
    assert ping(sandbox.runner, OUTSIDE_ADDRESS, "api")
    # a published port answers from a remote machine, the host's address, 127.0.0.1 and another container
    assert http_get(sandbox, f"http://{HOST_UPLINK_ADDRESS}:8080/", netns=f"/run/netns/{OUTSIDE}") == "web"
    assert http_get(sandbox, f"http://{HOST_UPLINK_ADDRESS}:8081/") == "api"
    assert http_get(sandbox, "http://127.0.0.1:8080/") == "web"
    assert http_get(sandbox, f"http://{HOST_UPLINK_ADDRESS}:8080/", netns="/run/netns/probe") == "web"
    # a second apply is a no-op
    assert cli(sandbox, "plan", "-f", str(topo), "--state-dir", state).returncode == 0
    # detach gives the container back as it was: only lo
    assert cli(sandbox, "detach", "-f", str(topo), "--state-dir", state, "--name", "api").returncode == 0
    assert addresses(sandbox, api) == []
    assert api.alive()
    # the container goes away while attached: destroy still removes what is left
    runtime.rm("web", force=True)
    destroyed = cli(sandbox, "destroy", "-f", str(topo), "--state-dir", state)
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    runtime.rm("api", force=True)
    assert before.explain(snapshot.take(sandbox.runner)) == []
    assert not (tmp_path / "state" / "topology-live.attached").exists()


def test_docker_containers_attached_by_pid(sandbox: Sandbox, outside: Sandbox, tmp_path: Path) -> None:
    require_runtime("docker")
    with Docker(sandbox, tmp_path / "docker") as docker:
        _attach_and_reach(sandbox, docker, tmp_path)


def test_podman_containers_attached_by_pid(sandbox: Sandbox, outside: Sandbox, tmp_path: Path) -> None:
    require_runtime("podman")
    with Podman(sandbox, tmp_path / "podman") as podman:
        _attach_and_reach(sandbox, podman, tmp_path)
