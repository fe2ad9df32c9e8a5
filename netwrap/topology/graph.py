"""Draw a topology: bridges, veth pairs, namespaces and addresses, as Mermaid or Graphviz DOT.

Like the document's topology picture: each container's namespace holds its end
of a veth pair, whose other end is a port of the network's bridge; the bridge
holds the gateway address and reaches the outside through the host.
"""

from __future__ import annotations

import re

from netwrap.topology import compose
from netwrap.topology.model import Topology


def _id(kind: str, name: str) -> str:
    return f"{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"


def _label(text: str) -> str:
    return text.replace('"', "'")


def mermaid(topo: Topology, allocations: compose.Allocations) -> str:
    """A Mermaid flowchart."""
    lines = ["flowchart LR", '  host(["host: ip_forward, NAT"])']
    for net in topo.networks:
        nat = "NAT out" if net.nat else "no NAT"
        lines.append(f'  {_id("br", net.name)}["bridge {net.bridge}<br/>{net.gateway}/{net.prefix}<br/>{nat}"]')
        lines.append(f"  {_id('br', net.name)} --- host")
    for container in topo.containers:
        cid = _id("c", container.name)
        if container.mode == "host":
            lines.append(f'  {cid}[["{_label(container.name)}: host mode"]]')
            lines.append(f"  {cid} -.- host")
            continue
        if container.joins is not None:
            lines.append(f'  {cid}[["{_label(container.name)}: joins {_label(container.joins)}"]]')
            lines.append(f"  {cid} -.- {_id('c', container.joins)}")
            continue
        rows = [f"{container.name} (netns {container.namespace})"]
        if container.mode == "none":
            rows.append("none: lo only")
        lines.append(f'  {cid}["{_label("<br/>".join(rows))}"]')
    for link in compose.links(topo, allocations):
        edge = f"{link.interface} {link.address}/{link.network.prefix} = {link.host_interface}"
        lines.append(f'  {_id("c", link.container.name)} ---|"{_label(edge)}"| {_id("br", link.network.name)}')
    for pub in compose.published(compose.links(topo, allocations)):
        host = f"{pub.host_ip}:" if pub.host_ip else ""
        lines.append(
            f'  host -.->|"{host}{pub.host_port}/{pub.protocol} to {pub.target}"| {_id("c", pub.link.container.name)}'
        )
    return "\n".join(lines) + "\n"


def dot(topo: Topology, allocations: compose.Allocations) -> str:
    """A Graphviz DOT graph."""
    lines = [f'graph "{_label(topo.name)}" {{', "  rankdir=LR;", '  host [shape=oval, label="host\\nip_forward, NAT"];']
    for net in topo.networks:
        label = f"bridge {net.bridge}\\n{net.gateway}/{net.prefix}"
        lines.append(f'  {_id("br", net.name)} [shape=box, label="{label}"];')
        lines.append(f"  {_id('br', net.name)} -- host;")
    for container in topo.containers:
        cid = _id("c", container.name)
        if container.mode == "host":
            lines.append(f'  {cid} [shape=component, label="{_label(container.name)}\\nhost mode"];')
            lines.append(f"  {cid} -- host [style=dashed];")
        elif container.joins is not None:
            lines.append(f'  {cid} [shape=component, label="{_label(container.name)}\\njoins {container.joins}"];')
            lines.append(f"  {cid} -- {_id('c', container.joins)} [style=dashed];")
        else:
            extra = "\\nnone: lo only" if container.mode == "none" else ""
            label = f"{_label(container.name)}\\nnetns {container.namespace}{extra}"
            lines.append(f'  {cid} [shape=box3d, label="{label}"];')
    for link in compose.links(topo, allocations):
        label = f"{link.interface} {link.address}/{link.network.prefix}\\n{link.host_interface}"
        lines.append(f'  {_id("c", link.container.name)} -- {_id("br", link.network.name)} [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
