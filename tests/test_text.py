"""Untrusted text: one sanitizer for what others see, code untouched, and no field undecided."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from coderoom.api import create_app
from coderoom.core.text import sanitize_plain_text
from tests.conftest import make_settings

KINDS = {"plain", "code", "secret", "identifier"}


class Note(BaseModel):
    text: str  # deliberately undeclared: the walker must notice


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Tom & Jerry", "Tom & Jerry"),
        ("<b>bold</b> move", "bold move"),
        ("<script>alert(1)</script>Bob", "Bob"),
        ("&lt;script&gt;alert(1)&lt;/script&gt;", ""),
        ("<img src=x onerror=alert(1)>pic", "pic"),
        ("a < b && c > d", "a < b && c > d"),
        ("<a href='javascript:alert(1)'>link</a>", "link"),
        ("  spaced  ", "spaced"),
        ("rtl\u202eevil\u0000", "rtlevil"),
        ("line one\nline two", "line one\nline two"),
    ],
)
def test_plain_text_sanitizer(raw: str, clean: str) -> None:
    assert sanitize_plain_text(raw) == clean


def _string_properties(
    schema: dict[str, Any], components: dict[str, Any], path: str
) -> list[tuple[str, dict[str, Any]]]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return _string_properties(components[name], components, name)
    found: list[tuple[str, dict[str, Any]]] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key, []):
            found += _string_properties(
                {**option, **{k: v for k, v in schema.items() if k.startswith("x-")}},
                components,
                path,
            )
    if schema.get("type") == "string":
        found.append((path, schema))
    if schema.get("type") == "array" and "items" in schema:
        found += _string_properties(
            {**schema["items"], **{k: v for k, v in schema.items() if k.startswith("x-")}},
            components,
            path + "[]",
        )
    for name, prop in schema.get("properties", {}).items():
        found += _string_properties(prop, components, f"{path}.{name}")
    return found


def undecided_fields(schema: dict[str, Any]) -> tuple[int, list[str]]:
    components = schema["components"]["schemas"]
    undecided = []
    checked = 0
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            params = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            targets = [(f"{method} {path} body", body["schema"])] if body else []
            targets += [(f"{method} {path} ?{p['name']}", p["schema"]) for p in params]
            for where, target in targets:
                for field, prop in _string_properties(target, components, where):
                    checked += 1
                    if prop.get("x-text-kind") in KINDS or "enum" in prop or "const" in prop:
                        continue
                    if prop.get("format") in ("uuid", "date-time"):
                        continue
                    undecided.append(field)
    return checked, undecided


def test_every_request_string_declares_its_kind() -> None:
    """A string field added to any request body must say PlainText, RawCode, SecretText or
    Identifier (or be an enum, a UUID or a date); otherwise this test fails."""
    checked, undecided = undecided_fields(create_app(make_settings()).openapi())
    assert checked > 10
    assert undecided == []


def test_the_check_catches_an_undeclared_field() -> None:
    app = create_app(make_settings())

    @app.post("/api/v1/_test/note")
    async def note(body: Note) -> None:
        del body

    _, undecided = undecided_fields(app.openapi())
    assert undecided == ["Note.text"]
