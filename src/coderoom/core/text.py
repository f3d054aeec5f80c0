"""Two kinds of user text, declared by type so no field escapes the decision.

- `PlainText`: free text shown to other people (display names, titles, descriptions,
  labels). Stored XSS is the threat, so it goes through one sanitizer built on nh3
  (Ammonia): every tag is removed, the contents of script/style-like elements are dropped,
  and entities are decoded back so "Tom & Jerry" stays "Tom & Jerry". No markup survives:
  the result is plain text that a client must still render as text, never as HTML.
- `RawCode`: program source, stdin, arguments, file contents and output. Stored and
  returned byte for byte; never sanitized, trimmed or normalised. The one thing refused
  (422, never rewritten) is the NUL character, which PostgreSQL text cannot store.
"""

from __future__ import annotations

import html
import unicodedata
from typing import Annotated

import nh3
from pydantic import AfterValidator, Field

_MAX_PASSES = 5


def sanitize_plain_text(value: str) -> str:
    """Strip markup until none is left, then normalise white space at the ends.

    Runs to a fixed point: an attacker who writes `&lt;script&gt;` gets no tag back after
    decoding, because the decoded text is cleaned again.
    """
    text = value
    for _ in range(_MAX_PASSES):
        cleaned = html.unescape(nh3.clean(text, tags=set(), attributes={}, strip_comments=True))
        if cleaned == text:
            break
        text = cleaned
    else:
        text = html.escape(text)  # pathological nesting: fall back to inert escaping
    # Control characters (bidi overrides, NUL…) are no part of a name or a title.
    text = "".join(
        ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    return text.strip()


def _encodable(value: str) -> str:
    """JSON can smuggle lone surrogates (\\ud800) that no database or hash can encode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _no_nul(value: str) -> str:
    # Refused, not rewritten: PostgreSQL text cannot hold NUL, and code is never altered.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return _encodable(value)


PlainText = Annotated[
    str,
    AfterValidator(_encodable),
    AfterValidator(sanitize_plain_text),
    Field(json_schema_extra={"x-text-kind": "plain"}),
]
RawCode = Annotated[str, AfterValidator(_no_nul), Field(json_schema_extra={"x-text-kind": "code"})]
#: Passwords and tokens: compared or hashed exactly as sent, never sanitized, never logged.
SecretText = Annotated[
    str, AfterValidator(_encodable), Field(json_schema_extra={"x-text-kind": "secret"})
]
#: Machine-readable values with their own validation (emails, language ids, cursors).
#: NUL is refused: no identifier holds one, and PostgreSQL text cannot store or compare it.
Identifier = Annotated[
    str, AfterValidator(_no_nul), Field(json_schema_extra={"x-text-kind": "identifier"})
]
