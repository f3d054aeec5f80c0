"""Emails are compared as NFKC_Casefold, and lookalike (mixed-script) local parts refused."""

from __future__ import annotations

import httpx
import pytest

from coderoom.auth.emails import highly_restrictive, normalize_email
from coderoom.auth.errors import InvalidEmail

PASSWORD = "correct horse battery staple"
FULLWIDTH_ADA = "\uff21\uff24\uff21@example.com"
CYRILLIC_A_ADA = "ad\u0430@example.com"


def test_fullwidth_and_case_fold_to_one_address() -> None:
    assert normalize_email(FULLWIDTH_ADA) == "ada@example.com"
    assert normalize_email(" ADA@Example.COM ") == "ada@example.com"
    assert normalize_email("STRASSE@example.com") == normalize_email("Stra\u00dfe@example.com")


def test_a_latin_address_with_one_cyrillic_letter_is_refused() -> None:
    with pytest.raises(InvalidEmail) as refused:
        normalize_email(CYRILLIC_A_ADA)
    assert refused.value.errors == [
        {"field": "body.email", "message": "mixed scripts: cyrillic, latin", "type": "mixed_script"}
    ]


@pytest.mark.parametrize(
    "local",
    ["jos\u00e9", "\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae", "\u5c71\u7530taro", "ada.lovelace+1"],
)
def test_one_script_or_an_allowed_mix_is_accepted(local: str) -> None:
    assert highly_restrictive(local)


@pytest.mark.parametrize(
    "local", ["p\u0430ypal", "\u03b1dmin", "\u5c71\u7530\u0442\u0430\u0440\u043e"]
)
def test_other_mixes_are_refused(local: str) -> None:
    assert not highly_restrictive(local)


async def test_a_fullwidth_twin_cannot_register_beside_the_original(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post(
        "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert first.status_code == 201
    twin = await client.post(
        "/api/v1/auth/register", json={"email": FULLWIDTH_ADA, "password": PASSWORD}
    )
    assert twin.status_code == 409
    assert twin.json()["code"] == "email_taken"


async def test_a_cyrillic_lookalike_cannot_register(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register", json={"email": CYRILLIC_A_ADA, "password": PASSWORD}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_email"


async def test_sign_in_with_the_fullwidth_form_finds_the_account(client: httpx.AsyncClient) -> None:
    await client.post(
        "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    response = await client.post(
        "/api/v1/auth/login", json={"email": FULLWIDTH_ADA, "password": PASSWORD}
    )
    assert response.status_code == 200
