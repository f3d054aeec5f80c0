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
from typing import Annotated, Any

import nh3
from pydantic import AfterValidator, Field
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

_MAX_PASSES = 5
#: The validation error type of a lone surrogate (see `_encodable`).
LONE_SURROGATE = "lone_surrogate"


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
    """JSON can smuggle lone surrogates (\\ud800) that no database or hash can encode.

    Such a text is not I-JSON (RFC 7493) and many JSON parsers refuse it outright; the API
    answers it as malformed JSON (api/errors.py looks for this error type).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PydanticCustomError(
            LONE_SURROGATE, "must be valid Unicode (no lone surrogates)"
        ) from None
    return value


def _no_nul(value: str) -> str:
    # Refused, not rewritten: PostgreSQL text cannot hold NUL, and code is never altered.
    if "\x00" in value:
        raise ValueError("must not contain NUL (\\u0000) characters")
    return _encodable(value)


#: What the schema says of program text and identifiers: no NUL (`_no_nul` enforces it).
#: Lone surrogates are not declared by a pattern: JSON Schema tools (Rust's regex among them)
#: cannot compile a surrogate range, and such a body is answered as malformed JSON anyway
#: (see `_encodable`).
NO_NUL_PATTERN = "^[^\\u0000]*$"


def _kind(kind: str, pattern: str | None = None) -> Any:
    extra: JsonDict = {"x-text-kind": kind}
    if pattern is not None:
        extra["pattern"] = pattern
    return Field(json_schema_extra=extra)


PlainText = Annotated[
    str, AfterValidator(_encodable), AfterValidator(sanitize_plain_text), _kind("plain")
]
RawCode = Annotated[str, AfterValidator(_no_nul), _kind("code", NO_NUL_PATTERN)]
#: Passwords and tokens: compared or hashed exactly as sent, never sanitized, never logged.
SecretText = Annotated[str, AfterValidator(_encodable), _kind("secret")]
#: Machine-readable values with their own validation (emails, language ids, cursors).
#: NUL is refused: no identifier holds one, and PostgreSQL text cannot store or compare it.
Identifier = Annotated[str, AfterValidator(_no_nul), _kind("identifier", NO_NUL_PATTERN)]
