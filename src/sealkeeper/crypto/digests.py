"""Typed digests: the only thing a key store ever signs.

A :class:`Hashed` couples a digest value with its algorithm and checks the
length, so a wrong-length or weak digest is refused at the boundary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from sealkeeper.errors import InvalidInput


class DigestAlgorithm(StrEnum):
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"

    @property
    def size(self) -> int:
        return _SIZES[self.value]

    @property
    def oid(self) -> str:
        return _OIDS[self]

    def new(self) -> hashlib._Hash:
        return hashlib.new(self.value)

    @classmethod
    def parse(cls, value: str, *, field: str = "digest_algorithm") -> DigestAlgorithm:
        """Accept a name ("sha256", "SHA-256") or an OID ("2.16.840.1.101.3.4.2.1")."""
        norm = value.strip().lower().replace("-", "").replace("_", "")
        for alg in cls:
            if norm == alg.value or value.strip() == alg.oid:
                return alg
        if norm in _WEAK:
            raise InvalidInput(f"digest algorithm {value!r} is too weak; use SHA-256 or stronger",
                               field=field)
        raise InvalidInput(f"unknown digest algorithm {value!r}", field=field)


_SIZES = {"sha256": 32, "sha384": 48, "sha512": 64}
_OIDS = {
    DigestAlgorithm.SHA256: "2.16.840.1.101.3.4.2.1",
    DigestAlgorithm.SHA384: "2.16.840.1.101.3.4.2.2",
    DigestAlgorithm.SHA512: "2.16.840.1.101.3.4.2.3",
}
_WEAK = {"sha1", "md5", "1.3.14.3.2.26", "1.2.840.113549.2.5", "sha224", "2.16.840.1.101.3.4.2.4"}


@dataclass(frozen=True, slots=True)
class Hashed:
    """A digest value and the algorithm that produced it."""

    algorithm: DigestAlgorithm
    digest: bytes

    def __post_init__(self) -> None:
        if len(self.digest) != self.algorithm.size:
            raise InvalidInput(
                f"a {self.algorithm.value} digest is {self.algorithm.size} bytes, "
                f"got {len(self.digest)}",
                field="digest",
            )

    @classmethod
    def of(cls, data: bytes, algorithm: DigestAlgorithm = DigestAlgorithm.SHA256) -> Hashed:
        return cls(algorithm, hashlib.new(algorithm.value, data).digest())


def hash_file(path: str, algorithm: DigestAlgorithm = DigestAlgorithm.SHA256,
              chunk: int = 1 << 20) -> Hashed:
    h = hashlib.new(algorithm.value)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return Hashed(algorithm, h.digest())
