"""Detached CAdES signatures (``.p7s``) of any file, around a CMS built by the server.

Scope: hash each file locally (streamed, so file size does not matter), send
all digests to the remote signer in one call (one approval for the batch),
check every returned CMS against its digest and write it unchanged, DER, as
``<file>.p7s`` (through a temporary file renamed when complete). The server
builds the CMS with ``CmsTemplate(pades=False)``: signingTime,
signingCertificateV2, and a signature time-stamp when asked.

A ``.p7s`` verifies with ``openssl cms -verify -binary -inform DER -in
FILE.p7s -content FILE -CAfile ROOT.pem``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from sealkeeper.client.files import write_atomically
from sealkeeper.client.verify import check_signature_for_digest
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed, hash_file
from sealkeeper.errors import CryptoError, InvalidInput

__all__ = ["RemoteSigner", "digest_file", "sign_files"]

RemoteSigner = Callable[[list[tuple[str, Hashed]]], list[bytes]]
"""Signs a batch: ``[(file name, digest)] -> [CMS SignedData DER]``, in order, one approval."""

_CHUNK = 1 << 20


def digest_file(path: str | os.PathLike[str],
                algorithm: DigestAlgorithm = DigestAlgorithm.SHA256) -> Hashed:
    """The digest of a file, read in 1 MiB chunks."""
    try:
        return hash_file(os.fspath(path), algorithm, _CHUNK)
    except OSError as e:
        raise InvalidInput(f"{Path(path).name} cannot be read: {e.strerror}",
                           field="file") from e


def sign_files(
    paths: Sequence[str | os.PathLike[str]],
    remote: RemoteSigner,
    *,
    algorithm: DigestAlgorithm = DigestAlgorithm.SHA256,
    outputs: Sequence[str | os.PathLike[str]] | None = None,
    signer_certificate: bytes | None = None,
    progress: Callable[[str, str], None] | None = None,
) -> list[bytes]:
    """Sign every file with one ``remote`` call; write ``<file>.p7s``; return the CMS values.

    ``outputs`` overrides the ``.p7s`` paths (one per file).
    ``signer_certificate`` (DER), when given, must be the certificate that
    signed. ``progress`` is called with ("hashed" | "signed", file name).
    Nothing is written unless every returned signature checks out.
    """
    files = [Path(p) for p in paths]
    if not files:
        return []
    targets = ([Path(o) for o in outputs] if outputs is not None
               else [f.with_name(f.name + ".p7s") for f in files])
    if len(targets) != len(files):
        raise InvalidInput("give one output per input file", field="outputs")
    if len({t.resolve() for t in targets}) != len(targets):
        raise InvalidInput("two inputs would be written to the same output", field="outputs")
    digests: list[Hashed] = []
    for f in files:
        if not f.is_file():
            raise InvalidInput(f"{f.name} is not a file", field="file")
        digests.append(digest_file(f, algorithm))
        if progress:
            progress("hashed", f.name)
    signatures = remote([(f.name, d) for f, d in zip(files, digests, strict=True)])
    if not isinstance(signatures, list) or len(signatures) != len(files):
        raise CryptoError(f"the server returned {len(signatures)} signatures for "
                          f"{len(files)} files")
    for f, d, der in zip(files, digests, signatures, strict=True):
        check_signature_for_digest(der, d, what=f.name, signer_certificate=signer_certificate)
    for f, target, der in zip(files, targets, signatures, strict=True):
        write_atomically(target, bytes(der))
        if progress:
            progress("signed", f.name)
    return [bytes(s) for s in signatures]
