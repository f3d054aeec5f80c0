"""Email addresses as account identities: one canonical form, no lookalikes.

The rule (docs/API.md, "Auth"):
1. Fold: Unicode NFKC, then case folding, then NFKC again (the "NFKC_Casefold" of UTS #31).
   Fullwidth `ADA@example.com` (U+FF21…) and `ADA@Example.com` are both `ada@example.com`,
   and `Straße` is `strasse`. The whole address is folded, local part included: virtually every
   provider treats it case-insensitively, and two accounts that differ only in case or width
   are a support problem and a phishing aid.
2. Check the syntax (email-validator; no DNS lookup, so sign-up works offline).
3. Refuse a local part that mixes scripts beyond what UTS #39 calls "highly restrictive":
   one script, or Latin with Han and Hiragana/Katakana (Japanese), with Han and Bopomofo
   (Chinese) or with Han and Hangul (Korean). Digits and punctuation (Common) and combining
   marks (Inherited) go with any script. So `ada@` spelt with a Cyrillic `a` (U+0430) is refused,
   while `josé@`, `δοκιμή@` and `山田taro@` are accepted.

Script data comes from confusable_homoglyphs (Unicode's Scripts.txt, with the UTS #39
confusables, maintained and packaged); the restriction-level rule itself is the few lines in
`highly_restrictive`, since no maintained Python package implements UTS #39 §5.2.
"""

from __future__ import annotations

import unicodedata

from confusable_homoglyphs import categories  # type: ignore[import-untyped]
from email_validator import EmailNotValidError, validate_email

from coderoom.auth.errors import InvalidEmail

#: Scripts that may share an identifier (UTS #39 §5.2, "Highly Restrictive").
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
_ANY_SCRIPT = frozenset({"COMMON", "INHERITED"})


def fold(text: str) -> str:
    """NFKC_Casefold: the form two addresses are compared in."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def scripts(text: str) -> frozenset[str]:
    """The scripts of `text`'s characters, leaving out those that go with any script."""
    return frozenset(categories.alias(ch) for ch in text) - _ANY_SCRIPT


def highly_restrictive(text: str) -> bool:
    """Whether `text` uses one script, or one of the mixes UTS #39 allows."""
    found = scripts(text)
    return len(found) <= 1 or any(found <= mix for mix in _ALLOWED_MIXES)


def normalize_email(raw: str) -> str:
    """The canonical form of an address, or InvalidEmail (422) saying why."""
    try:
        checked = validate_email(fold(raw.strip()), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(
            "This is not a valid email address.",
            errors=[{"field": "body.email", "message": str(exc), "type": "invalid_email"}],
        ) from None
    local = checked.local_part
    if not highly_restrictive(local):
        raise InvalidEmail(
            "The part before @ mixes alphabets (e.g. a Cyrillic letter among Latin ones), "
            "which makes it look like another address.",
            errors=[
                {
                    "field": "body.email",
                    "message": "mixed scripts: " + ", ".join(sorted(scripts(local))).lower(),
                    "type": "mixed_script",
                }
            ],
        )
    return fold(checked.normalized)
