"""Client IP resolution: X-Forwarded-For is believed only from trusted proxies."""

from __future__ import annotations

import ipaddress

from coderoom.core.net import request_origin, resolve_client_ip

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


def test_request_origin_ignores_forwarded_headers_from_strangers() -> None:
    origin = request_origin(
        scheme="http",
        host="10.0.0.5:4000",
        peer="203.0.113.9",
        forwarded_proto="https",
        forwarded_host="evil.example",
        trusted_proxies=[ipaddress.ip_network("10.0.0.0/8")],
    )
    assert origin == "http://10.0.0.5:4000"


def test_request_origin_takes_the_last_forwarded_values_from_our_proxy() -> None:
    origin = request_origin(
        scheme="http",
        host="10.0.0.5:4000",
        peer="10.0.0.2",
        forwarded_proto="http, https",
        forwarded_host="evil.example, code.example.com",
        trusted_proxies=[ipaddress.ip_network("10.0.0.0/8")],
    )
    assert origin == "https://code.example.com"


def test_request_origin_refuses_a_host_header_that_is_not_a_host() -> None:
    origin = request_origin(
        scheme="http",
        host="evil.example/path?x",
        peer="127.0.0.1",
        forwarded_proto=None,
        forwarded_host=None,
        trusted_proxies=[],
    )
    assert origin is None
