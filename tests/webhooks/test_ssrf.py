"""The address policy: a table of refused URLs (each with its reason) and what the operator can allow."""

from __future__ import annotations

import socket

import pytest

from trainforge.webhooks.ssrf import Policy, UnsafeURLError, check_url, embedded_ipv4

PUBLIC = "93.184.216.34"


def fake_dns(table: dict[str, list[str]]):
    """Return a resolver answering from a table (unknown names fail like a real NXDOMAIN)."""

    def resolve(host: str, port: int) -> list[str]:
        host = host.rstrip(".").lower()  # as DNS does
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


DNS = fake_dns(
    {
        "intranet.example": ["10.0.0.5"],
        "split.example": [PUBLIC, "192.168.1.10"],
        "metadata.example": ["169.254.169.254"],
        "v6private.example": ["fd00::1"],
        "public.example": [PUBLIC],
    }
)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://public.example/hook", "scheme 'ftp'; only http and https"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("public.example/hook", "scheme 'none'"),
        ("http:///hook", "has no host"),
        ("http://public.example:99999/", "malformed"),
        ("", "empty"),
        ("http://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("http://127.0.0.1:8080/hook", "127.0.0.1 is a loopback address"),
        ("http://127.1.2.3/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata address"),
        ("http://169.254.10.1/", "link-local"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://172.16.5.4/", "private"),
        ("http://192.168.0.1/", "private"),
        ("http://224.0.0.1/", "multicast"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://240.0.0.1/", "reserved"),
        ("http://255.255.255.255/", "broadcast"),
        ("http://[::1]/hook", "::1 is a loopback address"),
        ("http://[::]/", "unspecified"),
        ("http://[::ffff:127.0.0.1]/hook", "127.0.0.1 is a loopback address (embedded in ::ffff:7f00:1)"),
        ("http://[::ffff:169.254.169.254]/", "cloud metadata address (embedded"),
        ("http://[::127.0.0.1]/", "loopback address (embedded"),
        ("http://[64:ff9b::10.0.0.1]/", "10.0.0.1 is a private address (embedded"),
        ("http://[2002:7f00:1::]/", "127.0.0.1 is a loopback address (embedded"),
        ("http://[fd12:3456::1]/", "unique local (private)"),
        ("http://[fe80::1]/", "link-local"),
        ("http://[ff02::1]/", "multicast"),
        ("http://[fd00:ec2::254]/", "cloud metadata"),
        (
            "http://intranet.example/hook",
            "'intranet.example' resolves to 10.0.0.5: 10.0.0.5 is a private address",
        ),
        ("http://split.example/", "resolves to 192.168.1.10"),
        ("http://metadata.example/", "cloud metadata"),
        ("http://v6private.example/", "unique local"),
        ("http://nowhere.example/", "does not resolve"),
    ],
)
def test_refused_urls_name_the_reason(url: str, reason: str) -> None:
    with pytest.raises(UnsafeURLError) as info:
        check_url(url, Policy(), DNS)
    assert reason in str(info.value)


@pytest.mark.parametrize("url", ["http://localhost:8000/hook", "http://2130706433/", "http://0x7f.1/"])
def test_names_the_system_resolves_to_loopback_are_refused(url: str) -> None:
    with pytest.raises(UnsafeURLError, match="loopback"):
        check_url(url, Policy())


def test_refusals_tell_the_operator_how_to_allow() -> None:
    with pytest.raises(UnsafeURLError, match="TRAINFORGE_WEBHOOK_ALLOW"):
        check_url("http://10.0.0.1/", Policy(), DNS)


@pytest.mark.parametrize(
    "url", ["https://public.example/hook", f"http://{PUBLIC}:8080/x?y=1", "https://user:pw@public.example/"]
)
def test_public_urls_pass(url: str) -> None:
    target = check_url(url, Policy(), DNS)
    assert target.addresses == (PUBLIC,)


def test_allow_list_of_cidrs_and_hosts() -> None:
    policy = Policy.from_allow("127.0.0.0/8, ::1/128, intranet.example")
    assert check_url("http://127.0.0.1:9/", policy, DNS).addresses == ("127.0.0.1",)
    assert check_url("http://[::1]/", policy, DNS).port == 80
    # The IPv4-mapped form of an allowed address is allowed too; it is the same host.
    check_url("http://[::ffff:127.0.0.1]/", policy, DNS)
    assert check_url("https://intranet.example/", policy, DNS).port == 443
    assert check_url("https://INTRANET.example./", policy, DNS).addresses == ("10.0.0.5",)
    with pytest.raises(UnsafeURLError, match="cloud metadata"):
        check_url("http://169.254.169.254/", policy, DNS)
    with pytest.raises(UnsafeURLError, match="private"):
        check_url("http://10.9.9.9/", policy, DNS)


def test_allow_list_accepts_lists_and_none() -> None:
    assert Policy.from_allow(None) == Policy()
    policy = Policy.from_allow(["10.0.0.0/8", "hooks.internal"])
    assert policy.allows_host("hooks.internal")
    check_url("http://10.2.3.4/", policy, DNS)


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "not a host!", "a..b", "1.2.3.4/xx"])
def test_bad_allow_entries_are_named(entry: str) -> None:
    with pytest.raises(ValueError, match="neither a CIDR"):
        Policy.from_allow([entry])


def test_embedded_ipv4_forms() -> None:
    import ipaddress

    def emb(text: str) -> str | None:
        found = embedded_ipv4(ipaddress.ip_address(text))
        return None if found is None else str(found)

    assert emb("::ffff:10.0.0.1") == "10.0.0.1"
    assert emb("64:ff9b::808:808") == "8.8.8.8"
    assert emb("2002:0a00:0001::1") == "10.0.0.1"
    assert emb("2606:4700::1111") is None
    assert emb("10.0.0.1") is None
