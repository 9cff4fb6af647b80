"""Signed notes (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint) and cosignatures
(c2sp.org/tlog-cosignature) against the Go note package's and the spec's vectors, and by properties."""
import base64
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from offerlab.ledger import note
from offerlab.ledger.checkpoint import Checkpoint, chain_of, origin
from offerlab.ledger.note import NoteError, Signer, Verifier

VECTORS = json.loads((Path(__file__).parent / "data" / "signed-note-vectors.json").read_text(encoding="utf-8"))
KEYS = {name: Verifier.parse(vkey) for name, vkey in VECTORS["verifierKeys"].items()}


def test_the_go_signer_key_derives_the_go_verifier_key_and_signs_as_go_does():
    for case in VECTORS["signerKeys"]:
        signer = Signer.parse(case["skey"])
        assert signer.verifier.vkey == case["vkey"] and signer.skey == case["skey"]
    peter = Signer.parse(VECTORS["signerKeys"][0]["skey"])
    first = VECTORS["signedNotes"][0]
    assert note.sign(first["text"], [peter]) == first["note"]  # Ed25519 is deterministic: byte-identical


@pytest.mark.parametrize("case", VECTORS["signedNotes"], ids=lambda c: c["desc"])
def test_known_notes_open_with_their_keys(case):
    opened = note.open_note(case["note"], KEYS.values())
    assert opened.text == case["text"]
    assert [v.name for v, _ in opened.verified] == case["signedBy"]


def test_signatures_of_unknown_keys_are_ignored_but_one_known_key_is_required():
    two = VECTORS["signedNotes"][1]["note"]
    opened = note.open_note(two, [KEYS["PeterNeumann"]])
    assert [v.name for v, _ in opened.verified] == ["PeterNeumann"] and len(opened.signatures) == 2
    with pytest.raises(NoteError) as err:
        note.open_note(two, [KEYS["example.com/foo"]])
    assert err.value.code == "UNKNOWN_KEY"


def test_an_invalid_signature_by_a_known_key_rejects_the_note():
    with pytest.raises(NoteError) as err:
        note.open_note(VECTORS["invalidSignature"]["note"], KEYS.values())
    assert err.value.code == "INVALID_SIGNATURE"


@pytest.mark.parametrize("text", VECTORS["malformedNotes"] + [bytes.fromhex(h) for h in VECTORS["malformedNotesBytesHex"]])
def test_malformed_notes_are_refused(text):
    with pytest.raises(NoteError) as err:
        note.open_note(text, KEYS.values())
    assert err.value.code == "MALFORMED_NOTE"


@pytest.mark.parametrize("vkey", VECTORS["badVerifierKeys"] + ["", "a+b", "PeterNeumann+c74f20a3+", "Peter Neumann+c74f20a3+ARpc"])
def test_bad_verifier_keys_are_refused(vkey):
    with pytest.raises(NoteError):
        Verifier.parse(vkey)


def test_every_one_character_change_of_a_vkey_is_refused_or_verifies_nothing():
    vkey = VECTORS["verifierKeys"]["PeterNeumann"]
    signed = VECTORS["signedNotes"][0]["note"]
    for i in range(len(vkey)):
        mangled = vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1:]
        try:
            verifier = Verifier.parse(mangled)
        except NoteError:
            continue
        with pytest.raises(NoteError):
            note.open_note(signed, [verifier])


CHECKPOINT_TEXT = st.builds(lambda o, n, r: Checkpoint(o, n, r).text(),
                            st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FFF), min_size=1, max_size=20),
                            st.integers(0, 2**63), st.binary(min_size=32, max_size=32))


@settings(max_examples=150, deadline=None)
@given(CHECKPOINT_TEXT, st.integers(0, 2**40), st.data())
def test_checkpoints_signed_and_cosigned_verify_and_any_edit_fails(text, stamp, data):
    log = Signer.generate("log.example/ledger")
    witness = Signer.generate("witness.example/w1", note.COSIGNATURE_V1)
    signed = note.sign(text, [log])
    cosigned = note.add_signature(signed, witness, timestamp=stamp)
    opened = note.open_note(cosigned, [log.verifier, witness.verifier])
    assert opened.text == text and Checkpoint.parse(opened.text).text() == text
    assert opened.verified_by(log.verifier) and (witness.verifier, stamp) in opened.verified
    # one changed character of the body breaks both signatures
    i = data.draw(st.integers(0, len(text) - 2))
    changed = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]
    forged = changed + cosigned[len(text):]
    for verifier in (log.verifier, witness.verifier):
        with pytest.raises(NoteError) as err:
            note.open_note(forged, [verifier])
        assert err.value.code in ("INVALID_SIGNATURE", "MALFORMED_NOTE")
    # a cosignature's timestamp is signed too: the same signature under another time fails
    with pytest.raises(NoteError) as err:
        note.open_note(signed + _swap_stamp(witness.signature_line(text, stamp), stamp + 1), [witness.verifier])
    assert err.value.code == "INVALID_SIGNATURE"


def _swap_stamp(line: str, new_stamp: int) -> str:
    """A cosignature line whose timestamp bytes are replaced (the signature kept)."""
    head, encoded = line.rstrip("\n").rsplit(" ", 1)
    raw = bytearray(base64.b64decode(encoded))
    raw[4:12] = struct.pack(">Q", new_stamp)
    return f"{head} {base64.b64encode(bytes(raw)).decode()}\n"


@pytest.mark.parametrize("body", ["", "o\n", "o\n1\n", "o\n01\nAAAA\n", "o\n-1\n" + "A" * 43 + "=\n",
                                  "o\n1\nnot base64!\n", "o\n1\n" + "QUJD" + "\n", "o\n\n1\nx\n", "o\n1\nAAAA\next\n"])
def test_malformed_checkpoint_bodies_are_refused(body):
    with pytest.raises(NoteError):
        Checkpoint.parse(body)


def test_origins_name_their_chain_without_spaces_or_plus():
    for chain in ("exp-1", "cohort:c 1+2", "ünï"):
        line = origin("offerlab.example/ledger", chain)
        assert " " not in line and "+" not in line
        assert chain_of(line, "offerlab.example/ledger") == chain
    assert chain_of("other.example/x", "offerlab.example/ledger") is None
