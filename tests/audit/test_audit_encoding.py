"""The canonical entry encoding (docs/merkle.md, "Entry encoding"): known
answers, round trips, and everything it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from sealkeeper.audit import EntryDraft
from sealkeeper.audit.encoding import (
    EntryKind,
    decode_entry,
    encode_entry,
    entry_details,
    format_time,
    parse_time,
)
from sealkeeper.crypto import merkle
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.errors import InvalidInput

T = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def sig(**kw) -> EntryDraft:
    args = dict(seal_id="S1", seal_name="Contract Seal", seal_type="contract",
                user_id="u1", user_email="alice@example.com", file_name="合同 v2.pdf",
                digest=Hashed(DigestAlgorithm.SHA256, bytes(range(32))), api="native",
                approval_id="ap1")
    args.update(kw)
    return EntryDraft.signature(**args)  # type: ignore[arg-type]


def test_known_answer():
    data = encode_entry("org1", 7, EntryKind.SIGNATURE, T, sig().body())
    assert data == (
        '{"api":"native","approval_id":"ap1","digest_algorithm":"sha256",'
        '"file_digest":"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",'
        '"file_name":"合同 v2.pdf","kind":"signature","org":"org1",'
        '"seal_id":"S1","seal_name":"Contract Seal","seal_type":"contract","seq":7,'
        '"time":"2026-01-02T03:04:05.000006Z","user_email":"alice@example.com",'
        '"user_id":"u1","v":1}').encode()
    assert merkle.leaf_hash(data).hex() == __import__("hashlib").sha256(b"\0" + data).hexdigest()
    assert decode_entry(data)["file_name"] == "合同 v2.pdf"


def test_details_and_escapes():
    d = EntryDraft.grant(seal_id="S1", seal_name='The "Big" \\ Seal', seal_type="official",
                         user_id="u2", user_email="bob@example.com", by_user_id="adm",
                         note="ok", count=3, final=True)
    data = encode_entry("org1", 0, d.kind, T, d.body())
    assert b'"seal_name":"The \\"Big\\" \\\\ Seal"' in data
    assert b'"count":3' in data and b'"final":true' in data
    assert entry_details(data) == {"by_user_id": "adm", "note": "ok", "count": 3,
                                   "final": True}
    assert entry_details(data.replace(b'"v":1', b'"v":2')) is None


def test_times():
    assert format_time(T) == "2026-01-02T03:04:05.000006Z"
    assert format_time(T.replace(microsecond=0)) == "2026-01-02T03:04:05.000000Z"
    east = T.astimezone(timezone(timedelta(hours=8)))
    assert format_time(east) == "2026-01-02T03:04:05.000006Z"
    assert parse_time(format_time(T)) == T
    with pytest.raises(InvalidInput):
        format_time(T.replace(tzinfo=None))
    for bad in ("2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000006+00:00"):
        with pytest.raises(InvalidInput):
            parse_time(bad)


@pytest.mark.parametrize("draft, field", [
    (sig(file_name="a\nb.pdf"), "file_name"),
    (sig(file_name="a\x7f"), "file_name"),
    (sig(file_name="x" * 1025), "file_name"),
    (sig(file_name="\ud800.pdf"), "file_name"),
    (sig(file_name=""), "file_name"),
    (sig(api="Native API"), "api"),
    (sig(seal_type="Contract"), "seal_type"),
    (EntryDraft(EntryKind.SIGNATURE, seal_id="S"), "seal_name"),
    (EntryDraft(EntryKind.GRANT, seal_id="S", seal_name="n", seal_type="t",
                user_id="u"), "user_email"),
    (EntryDraft(EntryKind.SIGNATURE, seal_id="S", seal_name="n", seal_type="t", user_id="u",
                user_email="e", file_name="f", file_digest="ABCD", digest_algorithm="sha256",
                api="native"), "file_digest"),
    (sig(ratio=0.5), "details"),
    (sig(seq=5), "details"),
    (sig(Bad=1), "details"),
    (sig(big=2**53), "details"),
    (sig(note="x" * 2001), "details"),
])
def test_refused_fields(draft: EntryDraft, field: str):
    with pytest.raises(InvalidInput) as e:
        draft.body()
    assert e.value.field == field


def test_size_limit():
    body = sig(**{f"d{i}": "x" * 1000 for i in range(20)}).body()
    with pytest.raises(InvalidInput):
        encode_entry("org1", 0, EntryKind.SIGNATURE, T, body)


@pytest.mark.parametrize("mutate", [
    lambda b: b.replace(b',"v":1}', b',"v":1 }'),           # whitespace
    lambda b: b.replace(b'{"api"', b'{"v":1,"api"'),         # duplicate key
    lambda b: b.replace(b'"seq":7', b'"seq":7.0'),           # float
    lambda b: b.replace(b'"seq":7', b'"seq":07'),            # not JSON
    lambda b: b.replace(b'"kind":"signature"', b'"kind":"other"'),
    lambda b: b.replace(b'"v":1', b'"v":2'),
    lambda b: b.replace(b'"time":"2026-01-02T03:04:05.000006Z"', b'"time":"2026-01-02"'),
    lambda b: b.replace("合同".encode(), b"\\u5408\\u540c"),  # escaped non-ASCII
    lambda b: b.replace(b'"api":"native",', b'"api":"native","x":[1],'),
    lambda b: b[:-1],
    lambda b: b"\xff" + b,
])
def test_decode_refuses_non_canonical(mutate):
    data = encode_entry("org1", 7, EntryKind.SIGNATURE, T, sig().body())
    decode_entry(data)
    with pytest.raises(InvalidInput):
        decode_entry(mutate(data))
