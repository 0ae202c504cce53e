"""Client-side encryption and decryption of files. Imports no server code.

Encrypting happens entirely here, with the recipients' encryption
certificates from the directory:

- a PDF gets PDF public-key security (ISO 32000-2 ``/Adobe.PubSec``,
  ``/adbe.pkcs7.s5``, AES-256, pyHanko), so that a reader holding a
  recipient's private key opens it;
- any other file becomes CMS ``EnvelopedData`` (RFC 5652, DER, ``.p7m``):
  AES-256-CBC content encryption and, per recipient, RSAES-OAEP with SHA-256
  (RSA certificates) or ephemeral-static ECDH with
  ``dhSinglePass-stdDH-sha256kdf-scheme`` (SHA-384 on P-384) and AES-256 key
  wrap (EC certificates). ``openssl cms -decrypt`` reads it.

Decrypting sends the service only the recipient info addressed to one of the
user's certificates (:data:`Unwrap`); the content key comes back and the
content is decrypted here. CMS input may be DER, PEM or S/MIME
(``openssl cms -encrypt`` writes S/MIME by default); ``EnvelopedData`` with
AES-CBC and ``AuthEnvelopedData`` with AES-GCM are read.
"""

from __future__ import annotations

import base64
import email
import io
import secrets
import struct
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import algos, cms, core, keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

from sealkeeper.errors import CryptoError, InvalidInput, NotFound

__all__ = [
    "Unwrap",
    "check_recipient_certificate",
    "decrypt_cms",
    "decrypt_data",
    "decrypt_pdf",
    "decrypted_name",
    "encrypt_cms",
    "encrypt_data",
    "encrypt_pdf",
    "encrypted_name",
    "is_pdf",
    "recipient_info_for",
]

Unwrap = Callable[[bytes], bytes]
"""Turns one DER CMS ``RecipientInfo`` into its content-encryption key (the
service's ``POST /decrypt``, approved with the approval password)."""

_FIELD = "file"
_ECDH_SCHEMES = {  # curve -> (KDF hash, dhSinglePass-stdDH-sha*kdf-scheme)
    "secp256r1": (hashes.SHA256, "1.3.132.1.11.1"),
    "secp384r1": (hashes.SHA384, "1.3.132.1.11.2"),
    "secp521r1": (hashes.SHA512, "1.3.132.1.11.3"),
}
_CBC_KEY_SIZES = {"aes128_cbc": 16, "aes192_cbc": 24, "aes256_cbc": 32}
_GCM_KEY_SIZES = {"aes128_gcm": 16, "aes192_gcm": 24, "aes256_gcm": 32}


class _EccCmsSharedInfo(core.Sequence):  # type: ignore[misc]
    """ECC-CMS-SharedInfo (RFC 5753 7.2)."""

    _fields = [
        ("key_info", cms.KeyEncryptionAlgorithm),
        ("entity_u_info", core.OctetString, {"explicit": 0, "optional": True}),
        ("supp_pub_info", core.OctetString, {"explicit": 2}),
    ]


class _GcmParameters(core.Sequence):  # type: ignore[misc]
    """GCMParameters (RFC 5084 3.2)."""

    _fields = [
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


# --------------------------------------------------------------------------- certificates

def check_recipient_certificate(cert: x509.Certificate, *, email: str | None = None,
                                now: datetime | None = None) -> None:
    """Refuse a certificate that cannot receive encrypted files now: expired,
    without keyEncipherment (RSA) / keyAgreement (EC), or (with ``email``) not
    naming that email."""
    moment = now or datetime.now(UTC)
    who = email or cert.subject.rfc4514_string()
    if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
        raise InvalidInput(f"the encryption certificate of {who} is not valid now",
                           field="recipient")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise InvalidInput(f"the certificate of {who} has no key usage",
                           field="recipient") from None
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        ok = usage.key_encipherment
    elif isinstance(key, ec.EllipticCurvePublicKey):
        ok = usage.key_agreement and key.curve.name in _ECDH_SCHEMES
    else:
        ok = False
    if not ok:
        raise InvalidInput(f"the certificate of {who} is not an encryption certificate",
                           field="recipient")
    if email is not None:
        try:
            names = cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName).value.get_values_for_type(x509.RFC822Name)
        except x509.ExtensionNotFound:
            names = []
        if email.lower() not in {n.lower() for n in names}:
            raise InvalidInput(f"the certificate returned for {email} is for someone else",
                               field="recipient")


def _asn1_cert(cert: x509.Certificate) -> Any:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _issuer_serial(cert: Any) -> Any:
    return cms.IssuerAndSerialNumber({"issuer": cert.issuer,
                                      "serial_number": cert.serial_number})


# --------------------------------------------------------------------------- CMS: encrypt

def _ktri(cert: Any, public_key: rsa.RSAPublicKey, cek: bytes) -> Any:
    params = algos.RSAESOAEPParams({
        "hash_algorithm": {"algorithm": "sha256"},
        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
    })
    encrypted = public_key.encrypt(cek, asym_padding.OAEP(
        mgf=asym_padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    return cms.RecipientInfo(name="ktri", value=cms.KeyTransRecipientInfo({
        "version": 0,
        "rid": cms.RecipientIdentifier(name="issuer_and_serial_number",
                                       value=_issuer_serial(cert)),
        "key_encryption_algorithm": {"algorithm": "rsaes_oaep", "parameters": params},
        "encrypted_key": encrypted,
    }))


def _kari(cert: Any, public_key: ec.EllipticCurvePublicKey, cek: bytes) -> Any:
    kdf_hash, scheme = _ECDH_SCHEMES[public_key.curve.name]
    ephemeral = ec.generate_private_key(public_key.curve)
    z = ephemeral.exchange(ec.ECDH(), public_key)
    wrap = cms.KeyEncryptionAlgorithm({"algorithm": "aes256_wrap"})
    ukm = secrets.token_bytes(16)
    shared_info = _EccCmsSharedInfo({"key_info": wrap, "entity_u_info": ukm,
                                     "supp_pub_info": struct.pack(">I", 256)}).dump()
    kek = X963KDF(algorithm=kdf_hash(), length=32, sharedinfo=shared_info).derive(z)
    originator = keys.PublicKeyInfo.load(ephemeral.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    return cms.RecipientInfo(name="kari", value=cms.KeyAgreeRecipientInfo({
        "version": 3,
        "originator": cms.OriginatorIdentifierOrKey(name="originator_key", value=originator),
        "ukm": ukm,
        "key_encryption_algorithm": cms.KeyEncryptionAlgorithm(
            {"algorithm": scheme, "parameters": wrap}),
        "recipient_encrypted_keys": [cms.RecipientEncryptedKey({
            "rid": cms.KeyAgreementRecipientIdentifier(name="issuer_and_serial_number",
                                                       value=_issuer_serial(cert)),
            "encrypted_key": aes_key_wrap(kek, cek),
        })],
    }))


def encrypt_cms(data: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """CMS EnvelopedData (DER) of ``data`` for every recipient certificate."""
    if not recipients:
        raise InvalidInput("give at least one recipient", field="recipient")
    cek, iv = secrets.token_bytes(32), secrets.token_bytes(16)
    infos = []
    for cert in recipients:
        key = cert.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            infos.append(_ktri(_asn1_cert(cert), key, cek))
        elif isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _ECDH_SCHEMES:
            infos.append(_kari(_asn1_cert(cert), key, cek))
        else:
            raise InvalidInput("a recipient certificate has an unsupported key",
                               field="recipient")
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(cek), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    enveloped = cms.EnvelopedData({
        # RFC 5652 6.1: version 2 as soon as a recipient info is not version 0.
        "version": 2 if any(i.name == "kari" for i in infos) else 0,
        "recipient_infos": infos,
        "encrypted_content_info": {
            "content_type": "data",
            "content_encryption_algorithm": {"algorithm": "aes256_cbc", "parameters": iv},
            "encrypted_content": ciphertext,
        },
    })
    return bytes(cms.ContentInfo({"content_type": "enveloped_data",
                                  "content": enveloped}).dump())


# --------------------------------------------------------------------------- CMS: decrypt

def _load_content_info(data: bytes) -> Any:
    """A CMS ContentInfo from DER, PEM (CMS / PKCS7) or S/MIME."""
    raw = data
    head = data[:4096].lstrip()
    if head.startswith(b"-----BEGIN"):
        lines = [ln for ln in data.decode("ascii", "replace").splitlines()
                 if ln and not ln.startswith("-----")]
        try:
            raw = base64.b64decode("".join(lines), validate=True)
        except ValueError:
            raise InvalidInput("the PEM file is not valid base64", field=_FIELD) from None
    elif b"pkcs7-mime" in head.lower() or head.lower().startswith(b"mime-version"):
        message = email.message_from_bytes(data)
        payload = message.get_payload(decode=True)
        if not isinstance(payload, bytes) or not payload:
            raise InvalidInput("the S/MIME message holds no CMS object", field=_FIELD)
        raw = payload
    try:
        info = cms.ContentInfo.load(raw, strict=True)
        info["content_type"].native  # noqa: B018 (parse now)
        return info
    except (ValueError, TypeError, KeyError):
        raise InvalidInput("the file is neither a PDF nor a CMS object", field=_FIELD) from None


def _rid_matches(rid: Any, cert: Any) -> bool:
    if rid.name == "issuer_and_serial_number":
        value = rid.chosen
        return bool(value["serial_number"].native == cert.serial_number
                    and value["issuer"] == cert.issuer)
    if rid.name == "subject_key_identifier":
        return bool(rid.chosen.native == cert.key_identifier)
    if rid.name == "r_key_id":
        return bool(rid.chosen["subjectKeyIdentifier"].native == cert.key_identifier)
    return False


def recipient_info_for(recipient_infos: Any, cert: x509.Certificate) -> bytes | None:
    """The DER recipient info addressed to ``cert`` (a key-agreement one cut
    down to that recipient's encrypted key), or None."""
    target = _asn1_cert(cert)
    for info in recipient_infos:
        if info.name == "ktri":
            if _rid_matches(info.chosen["rid"], target):
                return bytes(info.dump())
        elif info.name == "kari":
            kari = info.chosen
            for rek in kari["recipient_encrypted_keys"]:
                if _rid_matches(rek["rid"], target):
                    fields = {
                        "version": kari["version"], "originator": kari["originator"],
                        "key_encryption_algorithm": kari["key_encryption_algorithm"],
                        "recipient_encrypted_keys": [rek]}
                    if kari["ukm"].native is not None:
                        fields["ukm"] = kari["ukm"]
                    one = cms.KeyAgreeRecipientInfo(fields)
                    return bytes(cms.RecipientInfo(name="kari", value=one).dump())
    return None


def _choose(recipient_infos: Any, certificates: Sequence[x509.Certificate]) -> bytes:
    for cert in certificates:
        found = recipient_info_for(recipient_infos, cert)
        if found is not None:
            return found
    raise NotFound("this file is not encrypted for any of your encryption keys")


def _cbc_decrypt(algorithm: Any, key: bytes, ciphertext: bytes) -> bytes:
    name = algorithm["algorithm"].native
    if _CBC_KEY_SIZES.get(name) != len(key):
        raise InvalidInput(f"unsupported content encryption {name} (or a content key of "
                           "the wrong size): AES-CBC is read", field=_FIELD)
    iv = algorithm["parameters"].native
    if not isinstance(iv, bytes) or len(iv) != 16 or len(ciphertext) % 16:
        raise InvalidInput("the encrypted content is damaged", field=_FIELD)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return bytes(unpadder.update(padded) + unpadder.finalize())
    except ValueError:
        raise CryptoError("the content does not decrypt: wrong key or damaged file") from None


def decrypt_cms(data: bytes, certificates: Sequence[x509.Certificate],
                unwrap: Unwrap) -> bytes:
    """The content of a CMS EnvelopedData / AuthEnvelopedData file encrypted
    for one of ``certificates``, the content key unwrapped by ``unwrap``."""
    info = _load_content_info(data)
    kind = info["content_type"].native
    try:
        if kind == "enveloped_data":
            env = info["content"]
            infos = env["recipient_infos"]
            content_info = env["encrypted_content_info"]
        elif kind == "authenticated_enveloped_data":
            env = info["content"]
            infos = env["recipient_infos"]
            content_info = env["auth_encrypted_content_info"]
        else:
            raise InvalidInput(f"the CMS object is {kind}, not enveloped data", field=_FIELD)
        ciphertext = content_info["encrypted_content"].native
        algorithm = content_info["content_encryption_algorithm"]
        chosen = _choose(infos, certificates)
    except (ValueError, TypeError, KeyError) as e:
        raise InvalidInput("the CMS object is damaged", field=_FIELD) from e
    if ciphertext is None:
        raise InvalidInput("the CMS object has no encrypted content (detached content is "
                           "not supported)", field=_FIELD)
    key = unwrap(chosen)
    if kind == "enveloped_data":
        return _cbc_decrypt(algorithm, key, bytes(ciphertext))
    name = algorithm["algorithm"].native
    if _GCM_KEY_SIZES.get(name) != len(key):
        raise InvalidInput(f"unsupported authenticated content encryption {name}",
                           field=_FIELD)
    params = _GcmParameters.load(algorithm["parameters"].dump())
    mac = bytes(env["mac"].native)
    if len(mac) != params["aes_icvlen"].native:
        raise InvalidInput("the authentication tag has the wrong length", field=_FIELD)
    aad = env["auth_attrs"].untag().dump() if env["auth_attrs"].native else b""
    try:
        decryptor = Cipher(algorithms.AES(key), modes.GCM(
            bytes(params["aes_nonce"].native), mac, min_tag_length=4)).decryptor()
        if aad:
            decryptor.authenticate_additional_data(aad)
        return decryptor.update(bytes(ciphertext)) + decryptor.finalize()
    except (InvalidTag, ValueError):
        raise CryptoError("the content does not decrypt: wrong key or damaged file") from None


# --------------------------------------------------------------------------- PDF

def is_pdf(data: bytes) -> bool:
    """A PDF header in the first 1024 bytes (as readers accept) and an end-of-file
    marker near the end, so that a text file merely mentioning "%PDF-" is not one."""
    return b"%PDF-" in data[:1024] and b"%%EOF" in data[-2048:]


def _open_pdf(data: bytes) -> Any:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        return PdfFileReader(io.BytesIO(data), strict=False)
    except (PdfError, ValueError, KeyError, TypeError) as e:
        raise InvalidInput(f"the PDF cannot be read: {e}", field=_FIELD) from e


def encrypt_pdf(data: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """The PDF with public-key security for every recipient (AES-256 content
    encryption; RSA-OAEP or ECDH per recipient, by pyHanko)."""
    from pyhanko.pdf_utils.crypt.pubkey import RecipientEncryptionPolicy
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    if not recipients:
        raise InvalidInput("give at least one recipient", field="recipient")
    reader = _open_pdf(data)
    if reader.encrypted:
        raise InvalidInput("the PDF is already encrypted", field=_FIELD)
    try:
        writer = copy_into_new_writer(reader)
        # Key usage was checked by check_recipient_certificate (keyAgreement for EC,
        # which pyHanko's own check does not know).
        writer.encrypt_pubkey([_asn1_cert(c) for c in recipients],
                              policy=RecipientEncryptionPolicy(ignore_key_usage=True,
                                                               prefer_oaep=True))
        out = io.BytesIO()
        writer.write(out)  # type: ignore[no-untyped-call]
    except (PdfError, ValueError, KeyError, TypeError) as e:
        raise InvalidInput(f"the PDF cannot be encrypted: {e}", field=_FIELD) from e
    return out.getvalue()


def _pdf_recipient_infos(handler: Any) -> list[Any]:
    from pyhanko.pdf_utils.crypt.pubkey import PubKeyCryptFilter

    out: list[Any] = []
    for cf in handler.crypt_filter_config.standard_filters():
        if isinstance(cf, PubKeyCryptFilter):
            for recipient_cms in cf.recipients or []:
                if recipient_cms["content_type"].native == "enveloped_data":
                    out.extend(recipient_cms["content"]["recipient_infos"])
    return out


def _remote_decrypter(cert: x509.Certificate, unwrap: Unwrap) -> Any:
    from pyhanko.pdf_utils.crypt.pubkey import EnvelopeKeyDecrypter

    target = _asn1_cert(cert)
    rid = _issuer_serial(target)
    cache: dict[bytes, bytes] = {}

    def once(info: Any) -> bytes:
        der = bytes(info.dump())
        if der not in cache:  # several crypt filters share one recipient CMS
            cache[der] = unwrap(der)
        return cache[der]

    class _Remote(EnvelopeKeyDecrypter):
        @property
        def cert(self) -> Any:
            return target

        def decrypt(self, encrypted_key: bytes, algo_params: Any) -> bytes:
            return once(cms.RecipientInfo(name="ktri", value=cms.KeyTransRecipientInfo({
                "version": 0,
                "rid": cms.RecipientIdentifier(name="issuer_and_serial_number", value=rid),
                "key_encryption_algorithm": algo_params, "encrypted_key": encrypted_key})))

        def decrypt_with_exchange(self, encrypted_key: bytes, algo_params: Any,
                                  originator_identifier: Any,
                                  user_keying_material: bytes | None) -> bytes:
            rek = cms.RecipientEncryptedKey({
                "rid": cms.KeyAgreementRecipientIdentifier(name="issuer_and_serial_number",
                                                           value=rid),
                "encrypted_key": encrypted_key})
            fields = {"version": 3, "originator": originator_identifier,
                      "key_encryption_algorithm": algo_params,
                      "recipient_encrypted_keys": [rek]}
            if user_keying_material is not None:
                fields["ukm"] = user_keying_material
            return once(cms.RecipientInfo(name="kari",
                                          value=cms.KeyAgreeRecipientInfo(fields)))

    return _Remote()


def decrypt_pdf(data: bytes, certificates: Sequence[x509.Certificate],
                unwrap: Unwrap) -> bytes:
    """The PDF without its public-key security, for a recipient among
    ``certificates`` whose key the service unwraps (``unwrap``)."""
    from pyhanko.pdf_utils.crypt import AuthStatus, PubKeySecurityHandler
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    reader = _open_pdf(data)
    handler = reader.security_handler
    if handler is None:
        raise InvalidInput("the PDF is not encrypted", field=_FIELD)
    if not isinstance(handler, PubKeySecurityHandler):
        raise InvalidInput("the PDF is encrypted with a password, not for certificates",
                           field=_FIELD)
    infos = _pdf_recipient_infos(handler)
    cert = next((c for c in certificates if recipient_info_for(infos, c) is not None), None)
    if cert is None:
        raise NotFound("this PDF is not encrypted for any of your encryption keys")
    try:
        result = reader.decrypt_pubkey(_remote_decrypter(cert, unwrap))
        if result.status == AuthStatus.FAILED:
            raise CryptoError("the PDF does not decrypt with your key")
        out = io.BytesIO()
        copy_into_new_writer(reader).write(out)  # type: ignore[no-untyped-call]
    except PdfError as e:
        cause = e.__cause__
        if isinstance(cause, CryptoError | InvalidInput | NotFound):
            raise cause from None
        raise InvalidInput(f"the PDF cannot be decrypted: {e}", field=_FIELD) from e
    return out.getvalue()


# --------------------------------------------------------------------------- files

def encrypt_data(data: bytes, recipients: Sequence[x509.Certificate]) -> bytes:
    """A PDF with PDF public-key security, anything else as CMS EnvelopedData."""
    return encrypt_pdf(data, recipients) if is_pdf(data) else encrypt_cms(data, recipients)


def decrypt_data(data: bytes, certificates: Sequence[x509.Certificate],
                 unwrap: Unwrap) -> bytes:
    return decrypt_pdf(data, certificates, unwrap) if is_pdf(data) \
        else decrypt_cms(data, certificates, unwrap)


def encrypted_name(path: Path, data: bytes) -> Path:
    """contract.pdf -> contract-encrypted.pdf; notes.txt -> notes.txt.p7m"""
    if is_pdf(data):
        return path.with_name(f"{path.stem}-encrypted{path.suffix or '.pdf'}")
    return path.with_name(path.name + ".p7m")


def decrypted_name(path: Path, data: bytes) -> Path:
    """notes.txt.p7m -> notes.txt; contract-encrypted.pdf -> contract-decrypted.pdf"""
    if is_pdf(data):
        stem = path.stem.removesuffix("-encrypted")
        return path.with_name(f"{stem}-decrypted{path.suffix or '.pdf'}")
    if path.suffix.lower() in (".p7m", ".p7", ".cms", ".pem", ".eml"):
        return path.with_name(path.stem)
    return path.with_name(path.name + ".decrypted")
