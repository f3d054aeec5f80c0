"""Two kinds of user text, declared by type so no field escapes the decision.

- `PlainText`: free text shown to other people (display names, titles, descriptions,
  labels). Stored XSS is the threat, so it goes through one sanitizer built on nh3
  (Ammonia): every tag is removed, the contents of script/style-like elements are dropped,
  and entities are decoded back so "Tom & Jerry" stays "Tom & Jerry". No markup survives:
  the result is plain text that a client must still render as text, never as HTML.
- `RawCode`: program source, stdin, arguments, file contents and output. Stored and
  returned byte for byte; never sanitized, trimmed or normalised.
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


PlainText = Annotated[
    str, AfterValidator(sanitize_plain_text), Field(json_schema_extra={"x-text-kind": "plain"})
]
RawCode = Annotated[str, Field(json_schema_extra={"x-text-kind": "code"})]
#: Passwords and tokens: compared or hashed exactly as sent, never sanitized, never logged.
SecretText = Annotated[str, Field(json_schema_extra={"x-text-kind": "secret"})]
#: Machine-readable values with their own validation (emails, language ids, cursors).
Identifier = Annotated[str, Field(json_schema_extra={"x-text-kind": "identifier"})]
