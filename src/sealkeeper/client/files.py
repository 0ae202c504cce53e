"""Writing result files on the client: through a hidden sibling file that is
renamed into place once complete, so no half-written output is ever left."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from sealkeeper.errors import InvalidInput

__all__ = ["write_atomically"]


def write_atomically(target: Path, data: bytes, *, private: bool = False) -> None:
    """Write through a hidden sibling file, then rename; ``private`` files
    (decrypted content) get mode 0600."""
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.part")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600 if private else 0o666)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InvalidInput(f"{target.name} cannot be written: {e.strerror}",
                           field="output") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
