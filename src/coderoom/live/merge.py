"""Three-way merge of plain text, for REST writers that are not CRDT peers.

A REST client reads a file (`base`), changes it (`new`) and sends both; meanwhile live
editors may have changed the document (`current`). `rebase` applies only the client's own
changes, hunk by hunk, at the places they map to in `current`, so the live edits made
after the read survive. Where both changed the same range, the REST change wins there.
"""

from __future__ import annotations

from difflib import SequenceMatcher


def _trim(a: str, b: str) -> tuple[int, int]:
    """Lengths of the common prefix and (non-overlapping) common suffix."""
    limit = min(len(a), len(b))
    start = 0
    while start < limit and a[start] == b[start]:
        start += 1
    end = 0
    while end < limit - start and a[-1 - end] == b[-1 - end]:
        end += 1
    return start, end


def _hunks(a: str, b: str) -> list[tuple[int, int, int, int]]:
    """(a_start, a_end, b_start, b_end) of every differing range. Only the part between the
    common prefix and suffix goes to difflib, which keeps the usual case cheap."""
    start, end = _trim(a, b)
    middle = SequenceMatcher(None, a[start : len(a) - end], b[start : len(b) - end], autojunk=False)
    return [
        (i1 + start, i2 + start, j1 + start, j2 + start)
        for tag, i1, i2, j1, j2 in middle.get_opcodes()
        if tag != "equal"
    ]


def _mapper(base: str, current: str) -> list[tuple[int, int, int, int]]:
    start, end = _trim(base, current)
    middle = SequenceMatcher(
        None, base[start : len(base) - end], current[start : len(current) - end], autojunk=False
    )
    blocks = [(0, start, 0, start)]
    blocks += [
        (i1 + start, i2 + start, j1 + start, j2 + start)
        for tag, i1, i2, j1, j2 in middle.get_opcodes()
        if tag == "equal"
    ]
    blocks.append((len(base) - end, len(base), len(current) - end, len(current)))
    return blocks


def _map(position: int, blocks: list[tuple[int, int, int, int]], *, left: bool) -> int:
    """Where `position` of base is in current: exact inside unchanged text; at the edge of
    the replaced region otherwise (its start for a hunk's start, its end for its end)."""
    best = 0
    for i1, i2, j1, _ in blocks:
        if i1 <= position <= i2:
            return j1 + (position - i1)
        if i2 <= position:
            best = j1 + (i2 - i1)
        elif not left:
            return j1
    return best


def rebase(base: str, new: str, current: str) -> str:
    """`current` with the changes that turn `base` into `new`."""
    if base == current:
        return new
    blocks = _mapper(base, current)
    result = current
    for a1, a2, b1, b2 in reversed(_hunks(base, new)):
        c1 = _map(a1, blocks, left=True)
        c2 = max(c1, _map(a2, blocks, left=False))
        result = result[:c1] + new[b1:b2] + result[c2:]
    return result
