"""The shape of a session's live document, and pure operations on it.

    Y.Doc
    ├── files: Y.Map   file name → Y.Text    (names checked as for executions)
    └── meta:  Y.Map   "entry" → file name, "language" → language id

Indices into a pycrdt `Text` count UTF-8 bytes (yrs' default offset kind), so the diff below
converts code-point positions to byte offsets. Yjs clients count UTF-16 units; both name the
same characters, and what travels is the CRDT update, not an index.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pycrdt import Doc as _Doc
from pycrdt import Map, Text
from pycrdt import get_state as _update_state

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


class InvalidChange(ValueError):
    """An update that would give the document a shape the schema above does not allow."""


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


def encoded_size(doc: Doc) -> int:
    """The document's size as stored and sent: its whole state, encoded (every root, every
    value, formatting and embeds included), not only the text of its files."""
    return len(doc.get_update())


def _state_vector(encoded: bytes) -> dict[int, int]:
    """Decode a v1 state vector: varuint n, then n times (client, clock)."""
    values: list[int] = []
    value = shift = 0
    for byte in encoded:
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            values.append(value)
            value = shift = 0
    count, pairs = values[0], values[1:]
    return {pairs[2 * i]: pairs[2 * i + 1] for i in range(min(count, len(pairs) // 2))}


def check_integrated(after: Doc, update: bytes) -> None:
    """Refuse an update that stays pending in `after` (it depends on changes the document
    has never seen): stored, it would be replayed forever and never become visible, so it
    could grow the log and memory past every cap."""
    have = _state_vector(after.get_state())
    for client, clock in _state_vector(_update_state(update)).items():
        if have.get(client, 0) < clock:
            raise InvalidChange("the update depends on changes this document does not have")


def check_change(before: Doc, after: Doc, *, languages: Collection[str]) -> None:
    """Refuse what `after` (= `before` plus one update) adds outside the schema: another
    top-level type, a file whose value is not text, an invalid file name, another meta key,
    an entry that is not a valid name, a language that does not exist. What `before`
    already held is not judged again (a legacy document stays editable)."""
    extra = set(after.keys()) - {FILES, META} - set(before.keys())
    if extra:
        raise InvalidChange("only 'files' and 'meta' may be top-level")
    old_files, old_meta = _maps(before)
    files, meta = _maps(after)
    for name, value in files.items():
        if not isinstance(value, Text):
            raise InvalidChange("a file's contents must be text")
        if name not in old_files:
            try:
                check_name(name)
            except InvalidFileName as exc:
                raise InvalidChange("invalid file name") from exc
    for key, value in meta.items():
        if old_meta.get(key) == value:
            continue
        if key == ENTRY:
            if not isinstance(value, str):
                raise InvalidChange("the entry must be a file name")
            try:
                check_name(value)
            except InvalidFileName as exc:
                raise InvalidChange("invalid entry file name") from exc
        elif key == LANGUAGE:
            if not isinstance(value, str) or value not in languages:
                raise InvalidChange("unknown language")
        else:
            raise InvalidChange("meta holds only 'entry' and 'language'")


def fork(doc: Doc) -> Doc:
    """A copy with its own client id: edits on it are new operations, not the original's."""
    copy = new_doc()
    copy.apply_update(doc.get_update())
    return copy
