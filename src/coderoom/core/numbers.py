"""Integers in request bodies, as JSON Schema means them.

JSON Schema's `integer` is any number with a zero fractional part, so `5.0` is one; `true`
and `"5"` are not. Pydantic's lax `int` takes all three and its `StrictInt` none but `5`:
`JsonInt` takes exactly what the schema it produces allows. (Pydantic writes `ge`/`le`
on such a type under those names; api/openapi.py renames them `minimum`/`maximum`.)
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Strict


def _json_integer(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # bools, strings and fractions fail the strict check that follows


JsonInt = Annotated[int, BeforeValidator(_json_integer), Strict()]
