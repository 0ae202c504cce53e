"""PAdES signing of PDFs on the user's machine around a CMS built by the server.

Scope: pyHanko's interrupted signing. :func:`prepare_pdf` writes the document
with its signature field, visible seal stamp and an empty ``/Contents``
placeholder to the output file and computes the digest of the signed byte
range locally; only that digest goes to the server, which answers with a
complete CMS SignedData (``CmsTemplate(pades=True)``: no signingTime, and a
signature time-stamp when asked). :func:`finish_pdf` checks that CMS against
the digest, embeds it, and for B-LT / B-LTA adds a DSS (certificates, OCSP
responses, CRLs fetched from the URLs in the certificates) and a document
time-stamp. :func:`sign_pdfs` does a batch: prepare every file, one call to
the remote signer for all digests (one approval), then finish each file.

Files are streamed: the output is written to a temporary file next to the
destination and renamed when complete, so a failure never leaves a half
signed file, and the document is never held in memory. The space for the
CMS is computed from the certificate chain (``bytes_reserved``), which skips
pyHanko's dry-run signature.

Levels:

- ``B-B``: the server's CMS as is.
- ``B-T``: the CMS must carry a signature time-stamp; the server adds it when
  asked (see :attr:`Level.signature_timestamp`); if it did not and a TSA URL
  is given, the client adds one.
- ``B-LT``: B-T plus the validation data of the signer and of the signature
  time-stamp in the document security store (DSS).
- ``B-LTA``: B-LT plus a document time-stamp (and the DSS data of its TSA).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from PIL import Image, UnidentifiedImageError
from pyhanko.pdf_utils import layout
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.fields import SigFieldSpec, SigSeedSubFilter, enumerate_sig_fields
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_cms import ExternalSigner
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata, PdfSigner, PdfTimeStamper
from pyhanko.sign.timestamps import HTTPTimeStamper
from pyhanko.sign.timestamps.api import TimeStamper
from pyhanko.sign.validation.dss import DocumentSecurityStore, collect_validation_info
from pyhanko.stamp import BaseStampStyle, StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.registry import SimpleCertificateStore

from sealkeeper.client.verify import (
    check_signature_for_digest,
    has_signature_timestamp,
    signer_info_of,
)
from sealkeeper.crypto.digests import DigestAlgorithm, Hashed
from sealkeeper.errors import Conflict, CryptoError, InvalidInput, SealkeeperError

__all__ = [
    "Certificate",
    "Level",
    "PdfSource",
    "PreparedPdf",
    "RemoteSigner",
    "SignedPdf",
    "finish_pdf",
    "prepare_pdf",
    "sign_pdfs",
]

RemoteSigner = Callable[[list[tuple[str, Hashed]]], list[bytes]]
"""Signs a batch: ``[(file name, digest)] -> [CMS SignedData DER]``, in order, one approval."""

Certificate = x509.Certificate | bytes
PdfSource = str | os.PathLike[str] | IO[bytes]
Progress = Callable[[str, str], None]
"""Called with (stage, file name); stages: "prepared", "signed"."""

_MAX_STAMP_BYTES = 10 * 1024 * 1024
_MAX_STAMP_PIXELS = 4096 * 4096
_CMS_OVERHEAD = 2048          # SignedData / SignerInfo framing, attributes, algorithm ids
_TIMESTAMP_ALLOWANCE = 16384  # a time-stamp token with its TSA certificate chain
_FIELD_PREFIX = "Seal"
_MAX_RESERVE = 1 << 20


class Level(StrEnum):
    """PAdES baseline levels (ETSI EN 319 142-1)."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"

    @classmethod
    def parse(cls, value: str | Level) -> Level:
        if isinstance(value, Level):
            return value
        norm = value.strip().upper().replace("_", "-").removeprefix("PADES-")
        if not norm.startswith("B-"):
            norm = "B-" + norm
        for level in cls:
            if level.value == norm:
                return level
        raise InvalidInput(f"unknown PAdES level {value!r}; expected B-B, B-T, B-LT or B-LTA",
                           field="level")

    @property
    def signature_timestamp(self) -> bool:
        """Whether the server must be asked for a signature time-stamp."""
        return self is not Level.B_B

    @property
    def long_term(self) -> bool:
        """Whether validation data goes into a DSS after signing."""
        return self in (Level.B_LT, Level.B_LTA)

    @property
    def document_timestamp(self) -> bool:
        return self is Level.B_LTA


@dataclass(eq=False)
class PreparedPdf:
    """A PDF written up to its signature placeholder, waiting for the server's CMS."""

    name: str
    """The name sent to the server with the digest (the file name)."""
    digest: Hashed
    """Digest of the signed byte ranges: what the server signs."""
    field_name: str
    level: Level
    bytes_reserved: int
    """Hex characters available for the CMS in ``/Contents``."""
    signer_certificate: bytes
    _byte_range: PreparedByteRangeDigest = field(repr=False)
    _work: Path | IO[bytes] = field(repr=False)
    _target: Path | None = field(repr=False)
    _strict: bool = field(repr=False, default=True)

    def discard(self) -> None:
        """Remove the temporary output file (when the batch is abandoned)."""
        if isinstance(self._work, Path):
            self._work.unlink(missing_ok=True)


@dataclass(frozen=True)
class SignedPdf:
    name: str
    output: Path | IO[bytes]
    field_name: str


# --------------------------------------------------------------------------- helpers


def _cert_der(cert: Certificate) -> bytes:
    if isinstance(cert, x509.Certificate):
        return cert.public_bytes(Encoding.DER)
    if isinstance(cert, bytes | bytearray):
        return bytes(cert)
    raise InvalidInput("certificates must be x509.Certificate objects or DER bytes",
                       field="chain")


def _chain(chain: Sequence[Certificate]) -> list[bytes]:
    if not chain:
        raise InvalidInput("the signer's certificate chain is empty", field="chain")
    ders = [_cert_der(c) for c in chain]
    for der in ders:
        try:
            x509.load_der_x509_certificate(der)
        except ValueError as e:
            raise InvalidInput("a certificate of the chain is not valid DER",
                               field="chain") from e
    return ders


def _signature_size(cert_der: bytes) -> int:
    key = x509.load_der_x509_certificate(cert_der).public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return (key.key_size + 7) // 8
    if isinstance(key, ec.EllipticCurvePublicKey):
        return 2 * ((key.curve.key_size + 7) // 8) + 9
    return 512


def _estimate_reserve(chain: Sequence[bytes], level: Level) -> int:
    """Hex characters to reserve for the CMS: certificates + signature + a time-stamp."""
    der = sum(len(c) for c in chain) + _signature_size(chain[0]) + _CMS_OVERHEAD
    if level.signature_timestamp:
        der += _TIMESTAMP_ALLOWANCE
    return 2 * der


def _display_name(source: PdfSource) -> str:
    if isinstance(source, str | os.PathLike):
        return Path(source).name
    return str(getattr(source, "name", "document.pdf"))


def _stamp_style(stamp_png: bytes | None, visible: bool) -> BaseStampStyle | None:
    if stamp_png is None:
        return None  # pyHanko's default text stamp, only drawn when the field is visible
    if len(stamp_png) > _MAX_STAMP_BYTES:
        raise InvalidInput("the stamp image is larger than 10 MB", field="stamp_png")
    try:
        with Image.open(io.BytesIO(stamp_png)) as probe:
            probe.verify()
        image: Image.Image = Image.open(io.BytesIO(stamp_png))
        if image.width * image.height > _MAX_STAMP_PIXELS:
            raise InvalidInput("the stamp image has too many pixels", field="stamp_png")
        image.load()
    except InvalidInput:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise InvalidInput("the stamp image is not a readable image", field="stamp_png") from e
    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA")
    if not visible:
        return None
    return StaticStampStyle(
        background=PdfImage(image),
        border_width=0,
        background_opacity=1.0,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins(0, 0, 0, 0),
            inner_content_scaling=layout.InnerScaling.STRETCH_TO_FIT,
        ),
    )


def _open_writer(stream: IO[bytes], name: str, strict: bool) -> IncrementalPdfFileWriter:
    try:
        writer = IncrementalPdfFileWriter(stream, strict=strict)
        encrypted = writer.prev.encrypted
        _ = writer.prev.root["/Pages"]
    except Exception as e:  # pyHanko raises anything, assertions included, on garbage
        raise InvalidInput(f"{name} is not a readable PDF: {_reason(e)}", field="file") from e
    if encrypted:
        raise InvalidInput(f"{name} is encrypted; decrypt it before signing", field="file")
    return writer


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return text if text else type(e).__name__


def _page_count(reader: PdfFileReader, name: str) -> int:
    try:
        count = int(reader.root["/Pages"]["/Count"])
    except Exception as e:  # malformed page tree
        raise InvalidInput(f"{name} has no readable page tree", field="file") from e
    if count < 1:
        raise InvalidInput(f"{name} has no pages", field="file")
    return count


def _field_state(reader: PdfFileReader, field_name: str) -> bool | None:
    """None: no such field; False: empty signature field; True: already signed."""
    try:
        for _name, value, _ref in enumerate_sig_fields(reader, with_name=field_name):
            return value is not None
    except Exception as e:  # malformed form
        raise InvalidInput(f"the form fields of the PDF cannot be read: {e}",
                           field="file") from e
    return None


def _existing_field_names(reader: PdfFileReader) -> set[str]:
    try:
        return {name for name, _value, _ref in enumerate_sig_fields(reader)}
    except Exception:  # malformed form: pyHanko reports it when writing the field
        return set()


def _new_field_name(reader: PdfFileReader) -> str:
    taken = _existing_field_names(reader)
    n = 1
    while f"{_FIELD_PREFIX}{n}" in taken:
        n += 1
    return f"{_FIELD_PREFIX}{n}"


def _check_box(box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    if len(box) != 4:
        raise InvalidInput("the stamp box is (x1, y1, x2, y2)", field="box")
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise InvalidInput("the stamp box must have x1 < x2 and y1 < y2", field="box")
    return x1, y1, x2, y2


def _plan_field(reader: PdfFileReader, display: str, field_name: str | None, page: int,
                box: tuple[float, float, float, float] | None
                ) -> tuple[str, bool, SigFieldSpec | None]:
    """(field name, whether it is an existing empty field, spec of the field to create)."""
    pages = _page_count(reader, display)
    if not -pages <= page < pages:
        raise InvalidInput(f"{display} has {pages} page(s); page {page} is out of range "
                           "(pages are numbered from 0)", field="page")
    state: bool | None = None
    if field_name is None:
        field_name = _new_field_name(reader)
    else:
        if not field_name or "." in field_name:
            raise InvalidInput("a field name must be non-empty and contain no '.'",
                               field="field_name")
        state = _field_state(reader, field_name)
        if state is True:
            raise Conflict(f"the signature field {field_name!r} of {display} is already "
                           "signed", field="field_name")
    if state is False:
        return field_name, True, None  # the field's own widget places the stamp
    spec = SigFieldSpec(sig_field_name=field_name, on_page=page,
                        box=_check_box(box) if box is not None else None)
    return field_name, False, spec


def _digest(pdf_signer: PdfSigner, writer: IncrementalPdfFileWriter, existing: bool,
            bytes_reserved: int, out_stream: IO[bytes], display: str
            ) -> PreparedByteRangeDigest:
    """Write the document with its placeholder to ``out_stream``; digest the byte range."""
    try:
        prepared, _tbs, _out = asyncio.run(pdf_signer.async_digest_doc_for_signing(
            writer, existing_fields_only=existing, bytes_reserved=bytes_reserved,
            output=out_stream))
    except SigningError as e:  # e.g. a certified document that allows no more signatures
        raise Conflict(f"{display} cannot be signed: {_reason(e)}", field="file") from e
    except Exception as e:  # malformed objects surface only while writing
        raise InvalidInput(f"{display} could not be prepared for signing: {_reason(e)}",
                           field="file") from e
    result: PreparedByteRangeDigest = prepared
    return result


# --------------------------------------------------------------------------- prepare


def prepare_pdf(
    source: PdfSource,
    chain: Sequence[Certificate],
    *,
    output: str | os.PathLike[str] | IO[bytes] | None = None,
    field_name: str | None = None,
    page: int = 0,
    box: tuple[float, float, float, float] | None = None,
    stamp_png: bytes | None = None,
    reason: str | None = None,
    location: str | None = None,
    level: Level | str = Level.B_B,
    digest_algorithm: DigestAlgorithm = DigestAlgorithm.SHA256,
    reserve: int | None = None,
    strict: bool = True,
    name: str | None = None,
) -> PreparedPdf:
    """Write ``source`` with a signature placeholder and return the digest to sign.

    ``chain``: the seal's certificate first, then its CA certificates, as the
    server will embed them (sizes the placeholder). ``output``: a path (written
    through a temporary file, renamed by :func:`finish_pdf`), a readable,
    writable and seekable stream, or ``None`` for memory. ``field_name``: an
    existing empty signature field to fill, or the name of the new field
    (default ``Seal<n>``). A new field is visible when ``box`` (x1, y1, x2, y2
    in PDF points) is given, on page ``page`` (0-based; negative counts from
    the end), with ``stamp_png`` as its appearance. ``reserve``: bytes of DER
    to reserve for the CMS instead of the estimate.
    """
    chain_der = _chain(chain)
    level = Level.parse(level)
    display = name or _display_name(source)
    if reserve is not None and not 0 < reserve <= _MAX_RESERVE:
        raise InvalidInput(f"the reserve must be 1 to {_MAX_RESERVE} bytes", field="reserve")
    bytes_reserved = 2 * reserve if reserve is not None else _estimate_reserve(chain_der, level)
    with _opened(source, display) as in_stream:
        writer = _open_writer(in_stream, display, strict)
        field_name, existing, new_spec = _plan_field(writer.prev, display, field_name,
                                                     page, box)
        style = _stamp_style(stamp_png, visible=box is not None or existing)
        signer = ExternalSigner(
            signing_cert=asn1_x509.Certificate.load(chain_der[0]),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [asn1_x509.Certificate.load(c) for c in chain_der[1:]]),
            signature_value=_signature_size(chain_der[0]),
        )
        meta = PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm=digest_algorithm.value,
            reason=reason,
            location=location,
            subfilter=SigSeedSubFilter.PADES,
        )
        pdf_signer = PdfSigner(meta, signer=signer, stamp_style=style, new_field_spec=new_spec)

        target: Path | None = None
        work: Path | IO[bytes]
        out_stream: IO[bytes]
        if output is None:
            out_stream = work = io.BytesIO()
        elif isinstance(output, str | os.PathLike):
            target = Path(output)
            work, out_stream = _temporary_sibling(target, display)
        else:
            out_stream = work = output
        try:
            prepared = _digest(pdf_signer, writer, existing, bytes_reserved, out_stream,
                               display)
        except BaseException:
            if isinstance(work, Path):
                out_stream.close()
                work.unlink(missing_ok=True)
            raise
        if isinstance(work, Path):
            out_stream.close()
    return PreparedPdf(
        name=display,
        digest=Hashed(digest_algorithm, prepared.document_digest),
        field_name=field_name,
        level=level,
        bytes_reserved=bytes_reserved,
        signer_certificate=chain_der[0],
        _byte_range=prepared,
        _work=work,
        _target=target,
        _strict=strict,
    )


def _temporary_sibling(target: Path, display: str) -> tuple[Path, IO[bytes]]:
    """A new hidden file next to ``target`` (same file system, usual permissions)."""
    work = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    try:
        return work, open(work, "x+b")
    except OSError as e:
        raise InvalidInput(f"the output for {display} cannot be written: {e.strerror}",
                           field="output") from e


class _opened:
    """Context manager yielding a binary stream for a path or an open stream."""

    def __init__(self, source: PdfSource, display: str) -> None:
        self._source = source
        self._display = display
        self._own: IO[bytes] | None = None

    def __enter__(self) -> IO[bytes]:
        if isinstance(self._source, str | os.PathLike):
            try:
                self._own = open(self._source, "rb")
            except OSError as e:
                raise InvalidInput(f"{self._display} cannot be read: {e.strerror}",
                                   field="file") from e
            return self._own
        return self._source

    def __exit__(self, *exc: object) -> None:
        if self._own is not None:
            self._own.close()


# --------------------------------------------------------------------------- finish


class _Finisher:
    """Embeds CMS values and adds long-term data; one per batch (shared fetch cache)."""

    def __init__(self, level: Level, chain: Sequence[bytes],
                 trust_roots: Sequence[Certificate], tsa_url: str | None,
                 timeout: float) -> None:
        self.level = level
        self.timestamper: TimeStamper | None = (
            HTTPTimeStamper(tsa_url, timeout=timeout) if tsa_url else None)
        if level.document_timestamp and self.timestamper is None:
            raise InvalidInput("B-LTA needs the URL of a time-stamping authority",
                               field="tsa_url")
        self.context: ValidationContext | None = None
        if level.long_term:
            roots = [_cert_der(c) for c in trust_roots] or [
                c for c in chain if _self_signed(c)]
            if not roots:
                raise InvalidInput("B-LT needs a trust root: include the root certificate "
                                   "in the chain or pass trust_roots", field="trust_roots")
            self.context = ValidationContext(
                trust_roots=[asn1_x509.Certificate.load(r) for r in roots],
                other_certs=[asn1_x509.Certificate.load(c) for c in chain],
                allow_fetching=True,
                revocation_mode="require",
                fetcher_backend=AIOHttpFetcherBackend(per_request_timeout=timeout),
            )

    async def aclose(self) -> None:
        if self.context is not None:
            await self.context.aclose()  # type: ignore[no-untyped-call]

    async def finish(self, prepared: PreparedPdf, cms_der: bytes) -> SignedPdf:
        try:
            output = await self._finish(prepared, cms_der)
        except BaseException:
            prepared.discard()
            raise
        return SignedPdf(prepared.name, output, prepared.field_name)

    async def _finish(self, prepared: PreparedPdf, cms_der: bytes) -> Path | IO[bytes]:
        info = check_signature_for_digest(cms_der, prepared.digest, what=prepared.name,
                                          signer_certificate=prepared.signer_certificate)
        if prepared.level.signature_timestamp and not has_signature_timestamp(info):
            if self.timestamper is None:
                raise CryptoError(f"the server's signature for {prepared.name} has no "
                                  f"signature time-stamp, which {prepared.level.value} needs")
            cms_der = await _add_signature_timestamp(info, self.timestamper, prepared.name)
        if 2 * len(cms_der) > prepared.bytes_reserved:
            raise CryptoError(
                f"the signature for {prepared.name} is {len(cms_der)} bytes, more than the "
                f"{prepared.bytes_reserved // 2} reserved; sign again with a larger reserve")
        work = prepared._work
        stream: IO[bytes] = open(work, "r+b") if isinstance(work, Path) else work  # noqa: SIM115
        try:
            prepared._byte_range.fill_with_cms(stream, cms_der)
            if prepared.level.long_term:
                await self._add_long_term(stream, prepared)
            stream.flush()
            if isinstance(work, Path):
                os.fsync(stream.fileno())
        finally:
            if isinstance(work, Path):
                stream.close()
        if isinstance(work, Path):
            assert prepared._target is not None
            os.replace(work, prepared._target)
            return prepared._target
        stream.seek(0)
        return stream

    async def _add_long_term(self, stream: IO[bytes], prepared: PreparedPdf) -> None:
        assert self.context is not None
        stream.seek(0)
        try:
            reader = PdfFileReader(stream, strict=prepared._strict)
            sig = next(s for s in reader.embedded_regular_signatures
                       if s.field_name == prepared.field_name)
        except (StopIteration, PdfError, ValueError, KeyError) as e:  # pragma: no cover
            raise CryptoError(f"the signature just added to {prepared.name} cannot be "
                              "read back") from e
        try:
            paths = await collect_validation_info(sig, self.context)
        except Exception as e:  # certvalidator: path building, revocation fetching
            raise CryptoError(f"could not collect the validation data (certificates, OCSP, "
                              f"CRLs) for {prepared.name}: {e}") from e
        writer = IncrementalPdfFileWriter.from_reader(reader)
        DocumentSecurityStore.supply_dss_in_writer(
            writer, sig.pkcs7_content.hex().encode("ascii"), paths=paths,
            validation_context=self.context)
        if not prepared.level.document_timestamp:
            writer.write_in_place()  # type: ignore[no-untyped-call]
            return
        assert self.timestamper is not None
        try:
            await PdfTimeStamper(self.timestamper).async_timestamp_pdf(
                writer, prepared.digest.algorithm.value, self.context, in_place=True)
        except Exception as e:
            raise CryptoError(f"could not add the document time-stamp to {prepared.name}: "
                              f"{e}") from e


def _self_signed(der: bytes) -> bool:
    cert = x509.load_der_x509_certificate(der)
    return cert.issuer == cert.subject


async def _add_signature_timestamp(info: cms.ContentInfo, timestamper: TimeStamper,
                                   name: str) -> bytes:
    """Add an RFC 3161 signature time-stamp (over the signature value) to the signer."""
    signer = signer_info_of(info)
    md = signer["digest_algorithm"]["algorithm"].native
    signed_attrs_before = signer["signed_attrs"].dump()
    try:
        token = await timestamper.async_timestamp(
            hashlib.new(md, signer["signature"].native).digest(), md)
    except Exception as e:
        raise CryptoError(f"could not get a signature time-stamp for {name}: {e}") from e
    attrs: list[Any] = list(signer["unsigned_attrs"]) if signer["unsigned_attrs"].native else []
    attrs.append(cms.CMSAttribute({"type": "signature_time_stamp_token", "values": [token]}))
    signer["unsigned_attrs"] = cms.CMSAttributes(attrs)
    signed = info["content"]
    signed["signer_infos"] = cms.SignerInfos([signer])
    info["content"] = signed
    der: bytes = info.dump()
    check = cms.ContentInfo.load(der)
    if signer_info_of(check)["signed_attrs"].dump() != signed_attrs_before:  # pragma: no cover
        raise CryptoError(f"adding the time-stamp changed the signed attributes of {name}")
    return der


def finish_pdf(prepared: PreparedPdf, cms_der: bytes, *,
               chain: Sequence[Certificate] = (), trust_roots: Sequence[Certificate] = (),
               tsa_url: str | None = None, timeout: float = 10.0) -> Path | IO[bytes]:
    """Embed the server's CMS into a prepared PDF; add B-LT / B-LTA data.

    ``chain`` and ``trust_roots`` serve the DSS at B-LT and above (the trust
    root defaults to the self-signed certificates of ``chain``); ``tsa_url``
    is needed at B-LTA, and at B-T when the server's CMS lacks a signature
    time-stamp. Returns the output path (or stream, rewound).
    """
    chain_der = _chain(chain) if chain else [prepared.signer_certificate]
    finisher = _Finisher(prepared.level, chain_der, trust_roots, tsa_url, timeout)

    async def run() -> SignedPdf:
        try:
            return await finisher.finish(prepared, cms_der)
        finally:
            await finisher.aclose()

    return asyncio.run(run()).output


# --------------------------------------------------------------------------- batch


def _default_output(source: Path) -> Path:
    return source.with_name(f"{source.stem}-signed{source.suffix or '.pdf'}")


def sign_pdfs(
    files: Sequence[str | os.PathLike[str]],
    remote: RemoteSigner,
    chain: Sequence[Certificate],
    *,
    level: Level | str = Level.B_B,
    outputs: Sequence[str | os.PathLike[str]] | None = None,
    field_name: str | None = None,
    page: int = 0,
    box: tuple[float, float, float, float] | None = None,
    stamp_png: bytes | None = None,
    reason: str | None = None,
    location: str | None = None,
    tsa_url: str | None = None,
    trust_roots: Sequence[Certificate] = (),
    digest_algorithm: DigestAlgorithm = DigestAlgorithm.SHA256,
    reserve: int | None = None,
    strict: bool = True,
    timeout: float = 10.0,
    progress: Progress | None = None,
) -> list[SignedPdf]:
    """Sign many PDFs with one call to ``remote`` (one approval for the batch).

    Every file is prepared first (a bad file stops the batch before anything
    is signed), then ``remote`` gets all digests at once, then each file is
    finished. ``outputs`` defaults to ``<name>-signed.pdf`` next to each
    input; an output may be the input itself (replaced when complete). The
    other parameters are those of :func:`prepare_pdf` and :func:`finish_pdf`.
    If some files fail after signing, the others are still finished and the
    error names every failed file.
    """
    level = Level.parse(level)
    chain_der = _chain(chain)
    sources = [Path(f) for f in files]
    if not sources:
        return []
    targets = ([Path(o) for o in outputs] if outputs is not None
               else [_default_output(s) for s in sources])
    if len(targets) != len(sources):
        raise InvalidInput("give one output per input file", field="outputs")
    if len({t.resolve() for t in targets}) != len(targets):
        raise InvalidInput("two inputs would be written to the same output", field="outputs")
    finisher = _Finisher(level, chain_der, trust_roots, tsa_url, timeout)

    prepared: list[PreparedPdf] = []
    try:
        for src, dst in zip(sources, targets, strict=True):
            prepared.append(prepare_pdf(
                src, chain_der, output=dst, field_name=field_name, page=page, box=box,
                stamp_png=stamp_png, reason=reason, location=location, level=level,
                digest_algorithm=digest_algorithm, reserve=reserve, strict=strict))
            if progress:
                progress("prepared", prepared[-1].name)
        signatures = remote([(p.name, p.digest) for p in prepared])
        if not isinstance(signatures, list) or len(signatures) != len(prepared):
            raise CryptoError(f"the server returned {len(signatures)} signatures for "
                              f"{len(prepared)} documents")
    except BaseException:
        for p in prepared:
            p.discard()
        raise
    return asyncio.run(_finish_all(finisher, prepared, signatures, progress))


async def _finish_all(finisher: _Finisher, prepared: Sequence[PreparedPdf],
                      signatures: Sequence[bytes], progress: Progress | None
                      ) -> list[SignedPdf]:
    done: list[SignedPdf] = []
    failed: list[tuple[PreparedPdf, SealkeeperError]] = []
    try:
        for item, cms_der in zip(prepared, signatures, strict=True):
            try:
                done.append(await finisher.finish(item, cms_der))
            except SealkeeperError as e:
                failed.append((item, e))
                continue
            if progress:
                progress("signed", item.name)
    finally:
        await finisher.aclose()
    if failed:
        first = failed[0][1]
        names = ", ".join(p.name for p, _ in failed)
        message = (f"{len(failed)} of {len(prepared)} file(s) could not be finished "
                   f"({names}): {first.message}")
        raise type(first)(message, field=first.field) from first
    return done
