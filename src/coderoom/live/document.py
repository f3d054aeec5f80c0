"""The shape of a session's live document, and pure operations on it.

    Y.Doc
    ├── files: Y.Map   file name → Y.Text    (names checked as for executions)
    └── meta:  Y.Map   "entry" → file name, "language" → language id

Indices into a pycrdt `Text` count UTF-8 bytes (yrs' default offset kind), so the diff below
converts code-point positions to byte offsets. Yjs clients count UTF-16 units; both name the
same characters, and what travels is the CRDT update, not an index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pycrdt import Doc as _Doc
from pycrdt import Map, Text

from coderoom.sandbox.program import ProgramError, check_file_name

Doc = _Doc[Any]

FILES = "files"
META = "meta"
ENTRY = "entry"
LANGUAGE = "language"
#: The client id of the seed transaction. Seeding is deterministic (same id, same clocks,
#: same content), so two instances seeding the same session produce the same update and
#: applying both is a no-op: no lock is needed to create a document lazily.
SEED_CLIENT_ID = 0
EMPTY_UPDATE = b"\x00\x00"


class InvalidFileName(ValueError):
    pass


class DocumentTooLarge(ValueError):
    pass


@dataclass(frozen=True)
class Contents:
    """What the document holds, as plain text."""

    files: dict[str, str]
    entry: str
    language: str

    @property
    def entry_text(self) -> str:
        return self.files.get(self.entry, "")


def _maps(doc: Doc) -> tuple[Map[Any], Map[Any]]:
    return doc.get(FILES, type=Map), doc.get(META, type=Map)


def new_doc(client_id: int | None = None) -> Doc:
    doc: Doc = _Doc(client_id=client_id) if client_id is not None else _Doc()
    _maps(doc)
    return doc


def check_name(name: str) -> str:
    try:
        check_file_name(name)
    except ProgramError as exc:
        raise InvalidFileName(str(exc)) from exc
    return name


def seed(*, source: str, entry: str, language: str) -> bytes:
    """The first update of a session's document: `source` as its entry file."""
    doc = new_doc(SEED_CLIENT_ID)
    files, meta = _maps(doc)
    with doc.transaction():
        files[entry] = Text(source)
        meta[ENTRY] = entry
        meta[LANGUAGE] = language
    return doc.get_update()


def load(updates: list[bytes]) -> Doc:
    doc = new_doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def contents(doc: Doc) -> Contents:
    files, meta = _maps(doc)
    texts = {name: str(value) for name, value in files.items() if isinstance(value, Text)}
    entry = meta.get(ENTRY)
    language = meta.get(LANGUAGE)
    return Contents(
        files=dict(sorted(texts.items())),
        entry=entry if isinstance(entry, str) else "",
        language=language if isinstance(language, str) else "",
    )


def measure(doc: Doc) -> tuple[int, int]:
    """(total, largest file) in UTF-8 bytes."""
    files, _ = _maps(doc)
    sizes = [len(str(value).encode()) for value in files.values() if isinstance(value, Text)]
    return sum(sizes), max(sizes, default=0)


def _byte_len(text: str) -> int:
    return len(text.encode())


def replace_text(text: Text, new: str) -> None:
    """Change `text` into `new` by replacing only the range that differs (common prefix and
    suffix kept), so concurrent edits elsewhere in the text survive the merge."""
    old = str(text)
    if old == new:
        return
    start = 0
    limit = min(len(old), len(new))
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    offset = _byte_len(old[:start])
    removed = _byte_len(old[start:end_old])
    if removed:
        del text[offset : offset + removed]
    if end_new > start:
        text.insert(offset, new[start:end_new])


def edit(
    doc: Doc,
    *,
    files: dict[str, str | None] | None = None,
    entry: str | None = None,
    language: str | None = None,
) -> bytes:
    """Apply a plain-text change as one CRDT transaction; return its update (may be empty).

    `files` maps a name to its new text (created if missing) or to None (deleted)."""
    ymap, meta = _maps(doc)
    before = doc.get_state()
    with doc.transaction():
        for name, new in (files or {}).items():
            check_name(name)
            if new is None:
                if name in ymap:
                    del ymap[name]
                continue
            current = ymap.get(name)
            if isinstance(current, Text):
                replace_text(current, new)
            else:
                ymap[name] = Text(new)
        if entry is not None and meta.get(ENTRY) != check_name(entry):
            meta[ENTRY] = entry
        if language is not None and meta.get(LANGUAGE) != language:
            meta[LANGUAGE] = language
    return doc.get_update(before)


def fork(doc: Doc) -> Doc:
    """A copy with its own client id: edits on it are new operations, not the original's."""
    copy = new_doc()
    copy.apply_update(doc.get_update())
    return copy
