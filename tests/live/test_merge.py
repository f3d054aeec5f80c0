"""The three-way merge REST writers get with base_source / base_files (pure functions)."""

from __future__ import annotations

import pytest

from coderoom.live.merge import rebase

CASES = {
    "live edit above, rest edit below": (
        "one\ntwo\n",
        "one\n2\n",
        "# live\none\ntwo\n",
        "# live\none\n2\n",
    ),
    "live edits around two rest hunks": ("a b c d", "A b c D", "a x b c d y", "A x b c D y"),
    "nothing changed by rest keeps live text": ("abc", "abc", "xyz", "xyz"),
    "no live edits: the new text": ("abc", "abd", "abc", "abd"),
    "both inserted at one place": (
        "hello world",
        "hello brave world",
        "hello there world",
        "hello brave there world",
    ),
    "rest deletes what live extended": ("abc", "", "abcdef", "def"),
    "unicode": ("😀 a", "😀 b", "x😀 a", "x😀 b"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rebase_applies_only_the_writers_changes(name: str) -> None:
    base, new, current, expected = CASES[name]
    assert rebase(base, new, current) == expected
