"""Running containers attached from the command line (``netwrap attach``), kept beside the topology's record.

``netwrap attach -f FILE --pid PID --network NET`` adds a container to what
the file declares without editing the file: it is kept in
``STATE_DIR/topology-NAME.attached`` (JSON, private like the record) and is
part of the topology for ``apply``, ``plan``, ``status`` and ``destroy`` until
``netwrap detach`` (or ``destroy``) takes it out.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from netwrap.engine.state import StateFile, read_private, replace_file
from netwrap.errors import NetwrapError
from netwrap.topology.model import Attachment, Container, Port, Topology

FORMAT = 1


def path_for(store: StateFile) -> Path:
    return store.path.with_suffix(".attached")


def _to_json(container: Container) -> dict[str, Any]:
    return {
        "name": container.name,
        "source": container.source,
        "networks": [
            {"network": a.network, "address": str(a.address) if a.address else None, "interface": a.interface}
            for a in container.networks
        ],
        "ports": [str(port) for port in container.ports],
    }


def _from_json(item: dict[str, Any]) -> Container:
    networks = tuple(
        Attachment(
            str(a["network"]),
            ipaddress.IPv4Address(a["address"]) if a.get("address") else None,
            str(a["interface"]) if a.get("interface") else None,
        )
        for a in item["networks"]
    )
    ports = tuple(Port.parse("ports", str(text)) for text in item["ports"])
    source = item["source"]
    if not isinstance(source, str):
        raise TypeError("source is not a path")
    return Container(str(item["name"]), networks=networks, ports=ports, loopback=False, source=source)


def load(store: StateFile) -> tuple[Container, ...]:
    """The containers attached to the topology of ``store`` (none when there is no such file)."""
    path = path_for(store)
    text = read_private(path, "list of attached containers")
    if text is None:
        return ()
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, not {FORMAT}")
        return tuple(_from_json(item) for item in data["containers"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise NetwrapError(f"{path} cannot be read ({exc}); detach what it lists by hand, or remove it") from None


def save(store: StateFile, containers: Sequence[Container]) -> None:
    path = path_for(store)
    if not containers:
        path.unlink(missing_ok=True)
        return
    text = json.dumps({"format": FORMAT, "containers": [_to_json(c) for c in containers]}, indent=1)
    replace_file(path, text + "\n", durable=True)


def merged(topo: Topology, containers: Sequence[Container], source: str) -> Topology:
    """The topology with the attached containers after its own, checked as a whole (a name, an address or a
    published port that another container has is an error naming both)."""
    if not containers:
        return topo
    whole = Topology(topo.name, topo.networks, (*topo.containers, *containers), topo.style)
    return whole.check(f"{source} with the containers attached to it")
