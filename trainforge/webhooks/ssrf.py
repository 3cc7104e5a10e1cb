"""Which webhook URLs and addresses may be called: public http(s) only, unless the operator allows more."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port -> the addresses it resolves to (injectable so tests and callers control name resolution).
Resolver = Callable[[str, int], list[str]]

ALLOW_HINT = "allow it explicitly with TRAINFORGE_WEBHOOK_ALLOW (CIDRs or host names) if it is intended"

# Order matters: the first matching network names the reason (the metadata address before link-local).
_BLOCKED: tuple[tuple[str, str], ...] = (
    ("169.254.169.254/32", "cloud metadata"),
    ("0.0.0.0/8", "unspecified ('this network')"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("fd00:ec2::254/128", "cloud metadata"),
    ("fc00::/7", "unique local (private)"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
    ("100::/64", "discard-only"),
    ("2001:db8::/32", "documentation"),
)
BLOCKED_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), reason) for net, reason in _BLOCKED
)


class UnsafeURLError(ValueError):
    """A webhook URL or the address it resolves to is not allowed; the message says why."""


@dataclass(frozen=True)
class Policy:
    """The operator's allow-list: networks and host names exempt from the address checks."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_allow(cls, allow: Iterable[str] | str | None) -> Policy:
        """Build a policy from CIDRs, addresses and host names (a list, or one comma-separated string)."""
        if allow is None:
            return cls()
        items = allow.replace(",", " ").split() if isinstance(allow, str) else [str(a).strip() for a in allow]
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for item in filter(None, items):
            if item == "*":  # every address: development only (settings refuse it in production)
                networks += [ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0")]
                continue
            try:
                networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
            except ValueError:
                if "/" in item or not _looks_like_host(item):
                    raise ValueError(
                        f"webhook allow entry {item!r} is neither a CIDR (e.g. 127.0.0.0/8), a host name "
                        "nor '*'"
                    ) from None
                hosts.add(_normal_host(item))
        return cls(tuple(networks), frozenset(hosts))

    def allows_host(self, host: str) -> bool:
        """Return whether the operator exempted this host name."""
        return _normal_host(host) in self.hosts

    def allows_ip(self, ip: IPAddress) -> bool:
        """Return whether the operator exempted this address (or the IPv4 address embedded in it)."""
        candidates = [ip, *filter(None, [embedded_ipv4(ip)])]
        return any(c.version == net.version and c in net for c in candidates for net in self.networks)


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: where to connect and which addresses passed the policy."""

    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def system_resolver(host: str, port: int) -> list[str]:
    """Resolve a host name with the system resolver; return its distinct addresses in order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address carried inside an IPv6 one (mapped, compatible, 6to4, NAT64, Teredo)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    value = int(ip)
    if ip in _NAT64 or ip in _NAT64_LOCAL or (value >> 32 == 0 and value > 1):
        # NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and the deprecated IPv4-compatible ::a.b.c.d carry it last.
        return ipaddress.IPv4Address(value & 0xFFFFFFFF)
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def refusal_reason(ip: IPAddress) -> str | None:
    """Return why an address may not be called (None when it is a public address)."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = refusal_reason(inner)
        return f"{reason} (embedded in {ip})" if reason else None
    for net, reason in BLOCKED_NETWORKS:
        if ip.version == net.version and ip in net:
            return f"{ip} is a {reason} address"
    if not ip.is_global:
        return f"{ip} is not a globally routable address"
    return None


def check_ip(address: str, policy: Policy, host: str | None = None) -> IPAddress:
    """Return the parsed address if the policy lets webhooks call it; raise UnsafeURLError otherwise."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id such as fe80::1%eth0
    if policy.allows_ip(ip) or (host is not None and policy.allows_host(host)):
        return ip
    reason = refusal_reason(ip)
    if reason is None:
        return ip
    via = f"{host!r} resolves to {ip}: " if host is not None and _normal_host(host) != str(ip) else ""
    raise UnsafeURLError(
        f"webhook URL refused: {via}{reason}; webhooks must reach a public address ({ALLOW_HINT})"
    )


def check_url(url: str, policy: Policy, resolver: Resolver = system_resolver) -> Target:
    """Check a webhook URL and every address its host resolves to; raise UnsafeURLError with the reason."""
    scheme, host, port = parse_url(url)
    return Target(scheme, host, port, tuple(resolve_checked(host, port, policy, resolver)))


def parse_url(url: str) -> tuple[str, str, int]:
    """Split a webhook URL into scheme, host and port; raise UnsafeURLError when it is not http(s)."""
    if not isinstance(url, str) or not url.strip():
        raise UnsafeURLError("webhook URL is empty: give an absolute http:// or https:// URL")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UnsafeURLError(f"webhook URL {url!r} is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        shown = scheme or "none"
        raise UnsafeURLError(f"webhook URL {url!r} has scheme {shown!r}; only http and https are allowed")
    if not parts.hostname:
        raise UnsafeURLError(f"webhook URL {url!r} has no host; give an absolute URL like https://host/path")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def resolve_checked(host: str, port: int, policy: Policy, resolver: Resolver = system_resolver) -> list[str]:
    """Resolve a host and check every address; return them all, or raise UnsafeURLError."""
    literal = _ip_literal(host)
    if literal is not None:
        check_ip(literal, policy)
        return [literal]
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeURLError(
            f"webhook host {host!r} does not resolve ({exc}); check the URL's host name"
        ) from None
    if not addresses:
        raise UnsafeURLError(f"webhook host {host!r} resolves to no address; check the URL's host name")
    # Every address must pass: the connection may go to any of them, so one private answer taints the name.
    for address in addresses:
        check_ip(address, policy, host=host)
    return list(addresses)


def _ip_literal(host: str) -> str | None:
    """Return the host as an address string when it is an IP literal (IPv6 without brackets)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


def _normal_host(host: str) -> str:
    """Lower-case a host name and drop a trailing dot, so allow-list matching is exact but not fussy."""
    return host.strip("[]").rstrip(".").lower()


def _looks_like_host(item: str) -> bool:
    """Return whether an allow-list entry is a plausible host name."""
    return all(part and all(c.isalnum() or c in "-_" for c in part) for part in item.rstrip(".").split("."))
