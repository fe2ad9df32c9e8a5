"""Draw a topology: bridges, veth pairs, namespaces and addresses, as Mermaid or Graphviz DOT.

Like the document's topology picture: each container's namespace holds its end
of a veth pair, whose other end is a port of the network's bridge; the bridge
holds the gateway address and reaches the outside through the host.
"""

from __future__ import annotations

from netwrap.topology import compose
from netwrap.topology.model import Network, Topology


def _id(kind: str, name: str) -> str:
    """A node's id: ``KIND_NAME`` with every character but a letter or a digit written ``_HEX_``, so that two
    names never share an id (``web-1``, ``web_1`` and ``web.1`` are three nodes) and the same name always
    gets the same one."""
    return f"{kind}_" + "".join(ch if ch.isascii() and ch.isalnum() else f"_{ord(ch):x}_" for ch in name)


def _label(text: str) -> str:
    """Text inside a Mermaid label's quotes: its quotes and the characters Mermaid reads as markup as entities."""
    return "".join(f"#{ord(ch)};" if ch in '"#<>' or not ch.isprintable() else ch for ch in text)


def _dot(text: str) -> str:
    """Text inside a DOT string: backslashes and quotes escaped, anything that does not print as an escape."""
    return "".join("\\" + ch if ch in '"\\' else ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


def _published(topo: Topology, allocations: compose.Allocations | compose.Addresses) -> list[tuple[str, str]]:
    """Each published port: (its text, the node of its container)."""
    found = []
    for pub in compose.published(compose.links(topo, allocations)):
        ip = pub.host_ip
        host = "" if ip is None else f"[{ip}]:" if ip.version == 6 else f"{ip}:"
        targets = " and ".join(pub.target_in(f) for f in (4, 6) if pub.in_family(f))
        found.append((f"{host}{pub.host_port}/{pub.protocol} to {targets}", _id("c", pub.link.container.name)))
    return found


def _addresses(link: compose.Link) -> str:
    """A link's addresses: IPv4's and IPv6's, those it has."""
    found = [(link.address, link.network.prefix), (link.address6, link.network.prefix6)]
    return " ".join(f"{address}/{prefix}" for address, prefix in found if address is not None)


def _gateways(net: Network, separator: str) -> str:
    found = [(net.gateway, net.prefix), (net.gateway6, net.prefix6)]
    return separator.join(f"{address}/{prefix}" for address, prefix in found if address is not None)


def mermaid(topo: Topology, allocations: compose.Allocations | compose.Addresses) -> str:
    """A Mermaid flowchart."""
    lines = ["flowchart LR", '  host(["host: ip_forward, NAT"])']
    for net in topo.networks:
        nat = "NAT out" if net.nat else "no NAT"
        label = f"bridge {_label(net.bridge)}<br/>{_gateways(net, '<br/>')}<br/>{nat}"
        lines.append(f'  {_id("br", net.name)}["{label}"]')
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
        rows = [f"{_label(container.name)} (netns {_label(container.namespace)})"]
        if container.mode == "none":
            rows.append("none: lo only")
        lines.append(f'  {cid}["{"<br/>".join(rows)}"]')
    for link in compose.links(topo, allocations):
        edge = f"{link.interface} {_addresses(link)} = {link.host_interface}"
        lines.append(f'  {_id("c", link.container.name)} ---|"{_label(edge)}"| {_id("br", link.network.name)}')
    for text, node in _published(topo, allocations):
        lines.append(f'  host -.->|"{_label(text)}"| {node}')
    return "\n".join(lines) + "\n"


def dot(topo: Topology, allocations: compose.Allocations | compose.Addresses) -> str:
    """A Graphviz DOT graph."""
    lines = [f'graph "{_dot(topo.name)}" {{', "  rankdir=LR;", '  host [shape=oval, label="host\\nip_forward, NAT"];']
    for net in topo.networks:
        nat = "NAT out" if net.nat else "no NAT"
        gateways = _gateways(net, "\\n")
        label = f"bridge {_dot(net.bridge)}\\n{gateways}\\n{nat}"
        lines.append(f'  {_id("br", net.name)} [shape=box, label="{label}"];')
        lines.append(f"  {_id('br', net.name)} -- host;")
    for container in topo.containers:
        cid = _id("c", container.name)
        if container.mode == "host":
            lines.append(f'  {cid} [shape=component, label="{_dot(container.name)}\\nhost mode"];')
            lines.append(f"  {cid} -- host [style=dashed];")
        elif container.joins is not None:
            label = f"{_dot(container.name)}\\njoins {_dot(container.joins)}"
            lines.append(f'  {cid} [shape=component, label="{label}"];')
            lines.append(f"  {cid} -- {_id('c', container.joins)} [style=dashed];")
        else:
            extra = "\\nnone: lo only" if container.mode == "none" else ""
            label = f"{_dot(container.name)}\\nnetns {_dot(container.namespace)}{extra}"
            lines.append(f'  {cid} [shape=box3d, label="{label}"];')
    for link in compose.links(topo, allocations):
        label = f"{link.interface} {_addresses(link)}\\n{_dot(link.host_interface)}"
        lines.append(f'  {_id("c", link.container.name)} -- {_id("br", link.network.name)} [label="{label}"];')
    for text, node in _published(topo, allocations):
        lines.append(f'  host -- {node} [style=dotted, dir=forward, label="{_dot(text)}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
