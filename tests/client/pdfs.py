"""Small PDFs for the client tests, written byte by byte (no PDF library).

``make_pdf`` writes a classic PDF 1.7 (one xref table, no object streams)
with N pages of text and, optionally, an empty signature field; the same
generator is the base of the encrypted and malformed variants.
"""

from __future__ import annotations

import io
from collections.abc import Iterator


def _obj(num: int, body: bytes) -> bytes:
    return b"%d 0 obj\n" % num + body + b"\nendobj\n"


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _escape(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def make_pdf(pages: int = 1, *, text: str = "Sealkeeper test document",
             sig_field: str | None = None,
             field_rect: tuple[int, int, int, int] = (350, 60, 520, 230),
             field_page: int = 0, size: tuple[int, int] = (595, 842),
             filler_kib: int = 0) -> bytes:
    """A PDF with ``pages`` pages of text.

    ``sig_field``: name of an empty signature field placed at ``field_rect``
    on ``field_page``. ``filler_kib``: an extra unused stream of that size,
    to make bigger files.
    """
    if pages < 1:
        raise ValueError("at least one page")
    objects: dict[int, bytes] = {}
    font_num = 3
    objects[font_num] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    next_num = 4
    page_nums: list[int] = []
    field_num = None
    if sig_field is not None:
        field_num = next_num
        next_num += 1
    for i in range(pages):
        page_num, content_num = next_num, next_num + 1
        next_num += 2
        page_nums.append(page_num)
        content = (b"BT /F1 24 Tf 72 %d Td (%s) Tj ET\n" % (size[1] - 100, _escape(text))
                   + b"BT /F1 14 Tf 72 %d Td (Page %d of %d) Tj ET\n"
                   % (size[1] - 140, i + 1, pages))
        objects[content_num] = _stream(content)
        annots = b""
        if field_num is not None and i == field_page:
            annots = b" /Annots [%d 0 R]" % field_num
        objects[page_num] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >>%s >>"
            % (size[0], size[1], content_num, font_num, annots))
    if field_num is not None:
        assert sig_field is not None
        objects[field_num] = (
            b"<< /FT /Sig /T (%s) /Type /Annot /Subtype /Widget /F 4 "
            b"/Rect [%d %d %d %d] /P %d 0 R >>"
            % (_escape(sig_field), *field_rect, page_nums[field_page]))
    if filler_kib:
        objects[next_num] = _stream(bytes(range(256)) * 4 * filler_kib)
        next_num += 1
    kids = b" ".join(b"%d 0 R" % n for n in page_nums)
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages)
    acroform = b""
    if field_num is not None:
        acroform = b" /AcroForm << /Fields [%d 0 R] /SigFlags 0 >>" % field_num
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R%s >>" % acroform
    return _assemble(objects)


def _assemble(objects: dict[int, bytes], *, trailer_extra: bytes = b"") -> bytes:
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    size = max(objects) + 1
    offsets = [0] * size
    for num in sorted(objects):
        offsets[num] = out.tell()
        out.write(_obj(num, objects[num]))
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n" % size)
    out.write(b"0000000000 65535 f \n")
    for num in range(1, size):
        if num in objects:
            out.write(b"%010d 00000 n \n" % offsets[num])
        else:
            out.write(b"0000000000 65535 f \n")
    out.write(b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n"
              % (size, trailer_extra, xref_at))
    return out.getvalue()


def make_encrypted_pdf(password: str = "secret") -> bytes:
    """A one-page PDF encrypted with the standard security handler (AES-256)."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    reader_src = IncrementalPdfFileWriter(io.BytesIO(make_pdf())).prev
    writer = copy_into_new_writer(reader_src)
    writer.encrypt(password, password)  # type: ignore[no-untyped-call]
    out = io.BytesIO()
    writer.write(out)  # type: ignore[no-untyped-call]
    return out.getvalue()


def malformed_pdfs() -> Iterator[tuple[str, bytes]]:
    """(description, bytes) pairs that no PDF reader should accept as a document."""
    good = make_pdf(2)
    yield "empty file", b""
    yield "not a PDF at all", b"hello, this is plain text\n" * 20
    yield "PNG bytes", b"\x89PNG\r\n\x1a\n" + bytes(200)
    yield "header only", b"%PDF-1.7\n"
    yield "truncated in the middle", good[: len(good) // 2]
    yield "no startxref", good.replace(b"startxref", b"startxrex")
    yield ("startxref points nowhere",
           good.rsplit(b"startxref", 1)[0] + b"startxref\n999999\n%%EOF\n")
    yield "xref garbage", good.replace(b"xref\n0 ", b"xrXf\n0 ")
    yield "no root in trailer", good.replace(b"/Root 1 0 R", b"/Rooo 1 0 R")
    yield "root is not a dictionary", _assemble(
        {1: b"42", 2: b"<< /Type /Pages /Kids [] /Count 0 >>"})
    yield "random bytes", bytes((i * 7919 + 13) % 256 for i in range(4096))


def fuzzed_pdfs(count: int = 60, seed: int = 5) -> Iterator[tuple[str, bytes]]:
    """``count`` deterministic corruptions of a valid 2-page PDF with a form field.

    Some may still be readable (a reader may repair them); a caller checks
    that each one either works or fails with a clear error, never a crash.
    """
    import random

    rng = random.Random(seed)
    good = make_pdf(2, sig_field="Field")
    tokens = [b"obj", b"endobj", b"stream", b"endstream", b"xref", b"trailer", b"/Root",
              b"/Pages", b"/Kids", b"/Count", b"/Type", b"/Length", b"/Contents", b"<<",
              b">>", b"[", b"]", b"0 R", b"/Fields", b"/AcroForm"]
    made = 0
    while made < count:
        kind = made % 5
        data = bytearray(good)
        if kind == 0:  # truncation
            cut = rng.randrange(1, len(good) - 1)
            label, out = f"truncated at {cut}", bytes(data[:cut])
        elif kind == 1:  # a structural token replaced
            token = rng.choice(tokens)
            hits = [i for i in range(len(good)) if good.startswith(token, i)]
            at = rng.choice(hits)
            junk = bytes(rng.choice(b"#%!?zZ9") for _ in token)
            label = f"{token.decode()} at {at} -> {junk.decode()}"
            out = bytes(data[:at]) + junk + bytes(data[at + len(token):])
        elif kind == 2:  # random bytes flipped in the xref / trailer area
            start = good.rindex(b"xref")
            for _ in range(rng.randrange(1, 6)):
                i = rng.randrange(start, len(good))
                data[i] = rng.randrange(256)
            label, out = f"xref area flipped (seed {made})", bytes(data)
        elif kind == 3:  # a number in an object replaced by a huge or negative one
            nums = [i for i in range(len(good) - 1)
                    if good[i:i + 1].isdigit() and not good[i - 1:i].isdigit()]
            at = rng.choice(nums)
            end = at
            while good[end:end + 1].isdigit():
                end += 1
            repl = rng.choice([b"-1", b"99999999999999999999", b"0", b"3.5"])
            label = f"number at {at} -> {repl.decode()}"
            out = bytes(data[:at]) + repl + bytes(data[end:])
        else:  # a chunk deleted or duplicated
            a = rng.randrange(0, len(good) - 10)
            b = rng.randrange(a + 1, min(len(good), a + 200))
            if rng.random() < 0.5:
                label, out = f"bytes {a}-{b} deleted", bytes(data[:a]) + bytes(data[b:])
            else:
                label, out = f"bytes {a}-{b} doubled", bytes(data[:b]) + bytes(data[a:])
        made += 1
        yield label, out
