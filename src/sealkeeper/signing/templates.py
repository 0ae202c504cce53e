"""A per-process cache of CMS templates, one per (certificate, digest
algorithm, signature scheme, PAdES or not): the constant parts of every
signature are encoded once, not per signature."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from sealkeeper.crypto.cms import CmsTemplate
from sealkeeper.crypto.digests import DigestAlgorithm
from sealkeeper.crypto.keystore.base import KeyAlgorithm, SignatureScheme

_Key = tuple[str, DigestAlgorithm, SignatureScheme, bool]


class TemplateCache:
    def __init__(self, max_entries: int = 4096) -> None:
        self._items: dict[_Key, CmsTemplate] = {}
        self._lock = threading.Lock()
        self._max = max_entries

    def get(self, cert_id: str, chain: Callable[[], Sequence[bytes]], digest: DigestAlgorithm,
            scheme: SignatureScheme, key_algorithm: KeyAlgorithm, pades: bool) -> CmsTemplate:
        key = (cert_id, digest, scheme, pades)
        hit = self._items.get(key)
        if hit is None:
            hit = CmsTemplate(list(chain()), digest, scheme, key_algorithm=key_algorithm,
                              pades=pades)
            with self._lock:
                if len(self._items) >= self._max:
                    self._items.clear()
                self._items[key] = hit
        return hit
