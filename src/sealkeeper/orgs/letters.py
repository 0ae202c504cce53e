"""Checks on an uploaded authorization letter: PDF or image, size-limited."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sealkeeper.errors import InvalidInput, PayloadTooLarge

MAX_LETTER_BYTES = 10 << 20

_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
}


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def check_letter(upload: UploadedFile, max_bytes: int = MAX_LETTER_BYTES) -> UploadedFile:
    if not upload.data:
        raise InvalidInput("the authorization letter is empty", field="letter")
    if len(upload.data) > max_bytes:
        raise PayloadTooLarge(f"the authorization letter is over {max_bytes} bytes",
                              field="letter")
    ctype = upload.content_type.split(";")[0].strip().lower()
    detected = next((t for t, magics in _MAGIC.items()
                     if any(upload.data.startswith(m) for m in magics)), None)
    if detected is None:
        raise InvalidInput("the authorization letter must be a PDF, PNG or JPEG file",
                           field="letter")
    if ctype not in ("", "application/octet-stream") and ctype != detected:
        raise InvalidInput(f"the letter was sent as {ctype} but its content is {detected}",
                           field="letter")
    name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1].strip() or "letter"
    if len(name) > 255 or any(ord(c) < 32 for c in name):
        raise InvalidInput("bad file name for the authorization letter", field="letter")
    return UploadedFile(name, detected, upload.data)
