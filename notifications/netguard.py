"""Where a notification may be sent: the SSRF guard.

A receiver's URL is written by a merchant, so it must not reach into our own network: every
address its host resolves to must be publicly routable, unless ``NOTIFY_ALLOWED_NETWORKS``
(CIDRs) names it explicitly. Refused: loopback, private (RFC 1918, ULA), link-local,
shared (CGNAT), multicast, unspecified, reserved and documentation ranges, and the cloud
metadata endpoints, also when hidden in an IPv4-mapped, 6to4 or NAT64 IPv6 address.

``notifications.http`` applies ``destination_addresses`` in its connector's resolver, and
connects only to the addresses it checked, so a host name that resolves to a public address
when checked and to a private one when used (DNS rebinding) cannot slip through. Other apps
use ``url_refusal`` to refuse such a URL early (e.g. when an order is created).
"""

import ipaddress
import socket
from functools import lru_cache
from urllib.parse import urlsplit

from .conf import notify_settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services: AWS/GCP/Azure/OpenStack, AWS ECS task metadata, Alibaba Cloud,
# AWS over IPv6. All are non-public anyway; listed to name them in the refusal.
CLOUD_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DestinationRefused(Exception):
    """The destination resolves to an address notifications may not be sent to. Not an
    ``OSError``: urllib3 and requests let it through unwrapped, so the caller sees why."""


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in cidrs if cidr)


def allowed_networks() -> tuple:
    """``NOTIFY_ALLOWED_NETWORKS`` parsed (read at call time, so tests can change it)."""
    return _networks(tuple(notify_settings.ALLOWED_NETWORKS))


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4 or NAT64), if any."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped or ip.sixtofour:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


_CATEGORIES = (
    ("loopback", "a loopback address"),
    ("link_local", "a link-local address"),
    ("multicast", "a multicast address"),
    ("unspecified", "an unspecified address"),
    ("private", "a private address"),
    ("reserved", "a reserved address"),
)


def _category(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public destination, or None when it is. An IPv6 address carrying
    an IPv4 one (mapped, 6to4, NAT64) is judged by the IPv4 address it carries."""
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return _category(embedded)
    if ip in CLOUD_METADATA:
        return "a cloud metadata address"
    for attribute, description in _CATEGORIES:
        if getattr(ip, f"is_{attribute}"):
            return description
    if not ip.is_global:
        return "not a publicly routable address"
    return None


def address_refusal(address: str | IPAddress) -> str | None:
    """Why a notification may not be sent to ``address`` (e.g. ``"10.0.0.1 is a private
    address"``), or None when it may: public, or inside ``NOTIFY_ALLOWED_NETWORKS``."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])  # drop an IPv6 zone id
    candidates = [ip] + [e for e in [_embedded_ipv4(ip)] if e is not None]
    if any(c in network for c in candidates for network in allowed_networks()):
        return None
    reason = _category(ip)
    return f"{ip} is {reason}" if reason else None


# Ranges where some addresses are not public although both ends of a wider network around
# them may be (so checking a network's first and last address is not enough).
_NON_PUBLIC_RANGES = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "::/127",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    )
)


def network_refusal(cidr: str) -> str | None:
    """Why a production ``NOTIFY_ALLOWED_NETWORKS`` must not name ``cidr``, or None: it is
    not a network, or it opens an address this guard refuses (judged by the guard's own
    classifier, so a 6to4 or NAT64 form of a loopback or private address counts as one)."""
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return f"{cidr!r} is not a network"
    for end in (network.network_address, network.broadcast_address):
        reason = _category(end)
        if reason:
            return f"{cidr} opens {end}, {reason}"
    for blocked in _NON_PUBLIC_RANGES:
        if blocked.version == network.version and network.overlaps(blocked):
            return f"{cidr} overlaps {blocked}, which is not public"
    return None


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection, in resolver order, without
    duplicates. Raises ``socket.gaierror``. (Tests replace this to fake DNS.)"""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def destination_addresses(host: str, port: int) -> list[str]:
    """Resolve ``host`` and return its addresses if every one of them may be used.

    Raises ``DestinationRefused`` when any address is refused (a name resolving to one
    public and one private address is refused whole), ``socket.gaierror`` when it does not
    resolve.
    """
    host = host.strip("[]")
    addresses = resolve(host, port)
    for address in addresses:
        reason = address_refusal(address)
        if reason:
            literal = host == address
            raise DestinationRefused(reason if literal else f"{host} resolves to {reason}")
    return addresses


def url_refusal(url: str, *, resolve_names: bool = True) -> str | None:
    """Why a notification may not be sent to ``url``, or None.

    Only http and https are allowed. A literal IP (in any notation the resolver accepts,
    such as ``2130706433``) is always checked; a host name is resolved and checked when
    ``resolve_names``. A name that does not resolve (yet) is not refused here: the check
    made when connecting is the one that counts.
    """
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    host = parts.hostname
    if not resolve_names and not is_ip_literal(host):
        return None
    try:
        destination_addresses(host, port)
    except DestinationRefused as exc:
        return str(exc)
    except (OSError, UnicodeError):
        return None
    return None


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an address, in any notation the resolver takes without DNS."""
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        # Also the short and numeric IPv4 forms (127.1, 2130706433) the resolver accepts.
        try:
            socket.inet_aton(host)
        except OSError:
            return False
    return True
