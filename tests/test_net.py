"""Client IP resolution: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import ipaddress

from coderoom.core.net import resolve_client_ip

PROXIES = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


def test_untrusted_peer_is_the_client_whatever_it_claims() -> None:
    assert resolve_client_ip("203.0.113.9", ["1.2.3.4"], PROXIES) == "203.0.113.9"


def test_no_trusted_proxies_means_headers_are_ignored() -> None:
    assert resolve_client_ip("10.0.0.5", ["1.2.3.4"], []) == "10.0.0.5"


def test_trusted_proxy_forwards_the_client() -> None:
    assert resolve_client_ip("10.0.0.5", ["198.51.100.7"], PROXIES) == "198.51.100.7"


def test_forged_left_part_never_wins() -> None:
    # The client wrote "1.1.1.1" itself; our proxy appended the address it really saw.
    assert resolve_client_ip("10.0.0.5", ["1.1.1.1, 198.51.100.7"], PROXIES) == "198.51.100.7"


def test_chains_of_trusted_proxies_are_walked() -> None:
    chain = ["198.51.100.7, 10.1.1.1", "10.2.2.2"]
    assert resolve_client_ip("10.0.0.5", chain, PROXIES) == "198.51.100.7"


def test_garbled_hop_stops_at_the_last_vouched_address() -> None:
    assert resolve_client_ip("10.0.0.5", ["not-an-ip"], PROXIES) == "10.0.0.5"


def test_ipv6_and_mapped_ipv4() -> None:
    assert resolve_client_ip("::1", ["2001:db8::1"], PROXIES) == "2001:db8::1"
    assert resolve_client_ip("::ffff:203.0.113.9", [], PROXIES) == "203.0.113.9"
