"""Parsing what clients send: well-formed y-protocols messages in, anything else refused."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text, create_sync_message, create_update_message

from coderoom.live import protocol


def test_a_sync_step1_round_trips() -> None:
    doc: Doc[Text] = Doc()
    message = protocol.parse(create_sync_message(doc))
    assert message == protocol.SyncStep1(doc.get_state())


def test_an_update_round_trips() -> None:
    doc: Doc[Text] = Doc()
    doc["t"] = Text("hi")
    update = doc.get_update()
    assert protocol.parse(create_update_message(update)) == protocol.SyncUpdate(update, step2=False)


def test_awareness_round_trips() -> None:
    payload = protocol.encode_awareness([(7, 3, {"cursor": 1}), (8, 4, None)])
    message = protocol.parse(protocol.awareness_message(payload))
    assert isinstance(message, protocol.AwarenessUpdate)
    assert [(e.client_id, e.clock, e.state) for e in message.entries] == [
        (7, 3, {"cursor": 1}),
        (8, 4, None),
    ]


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00",
        b"\x00\x09\x00",
        b"\x00\x02\x05ab",
        b"\x00\x02\x00extra",
        b"\x02\x00\x00",
        b"\x01\x05\x01\x01\x01\x01[",
        b"\x01" + protocol.write_varuint(3) + b"\x11\x00\x00",
        b"\xff" * 12,
    ],
)
def test_malformed_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(protocol.MalformedMessage):
        protocol.parse(frame)


def test_too_many_awareness_states_at_once_are_refused() -> None:
    payload = protocol.encode_awareness(
        [(i, 1, {}) for i in range(protocol.MAX_AWARENESS_ENTRIES + 1)]
    )
    with pytest.raises(protocol.MalformedMessage):
        protocol.parse(protocol.awareness_message(payload))
