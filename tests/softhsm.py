"""SoftHSM2 tokens for tests (reusable by every suite that needs a PKCS#11 token).

``make_softhsm_token(tmp_dir)`` writes a softhsm2 config whose
``directories.tokendir`` is inside ``tmp_dir``, points ``SOFTHSM2_CONF`` at it
and initialises a fresh token with ``softhsm2-util --init-token --free``.

SoftHSM2 reads ``SOFTHSM2_CONF`` only at ``C_Initialize``, and a process loads
the module once. So the first call in a process fixes the config and token
directory; later calls in the same process add their token (unique label) to
that same directory, and every token stays visible to the loaded module (a
``Pkcs11KeyStore`` re-initialises the module when its token is not found).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

SOFTHSM_MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)

_shared_conf: Path | None = None


def softhsm_module() -> str | None:
    """Path of libsofthsm2.so, or None when SoftHSM2 is not installed."""
    for candidate in SOFTHSM_MODULE_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


def softhsm_missing_reason() -> str | None:
    """Why SoftHSM2 tests must skip, or None when they can run."""
    if softhsm_module() is None:
        return ("SoftHSM2 is not installed (no libsofthsm2.so; "
                "apt-get install softhsm2)")
    if shutil.which("softhsm2-util") is None:
        return "SoftHSM2 is not installed (no softhsm2-util on PATH)"
    return None


def make_softhsm_token(tmp_dir: Path | str, *, label: str | None = None,
                       pin: str = "1234", so_pin: str = "12345678") -> dict[str, str]:
    """Initialise a SoftHSM2 token; return conf_path, module, label, pin, so_pin."""
    global _shared_conf
    module = softhsm_module()
    if module is None:
        raise RuntimeError("SoftHSM2 is not installed")
    if _shared_conf is None or not _shared_conf.is_file():
        base = Path(tmp_dir)
        token_dir = base / "softhsm-tokens"
        token_dir.mkdir(parents=True, exist_ok=True)
        conf = base / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {token_dir}\n"
                        "objectstore.backend = file\n"
                        "log.level = ERROR\n"
                        "slots.removable = false\n")
        _shared_conf = conf
    os.environ["SOFTHSM2_CONF"] = str(_shared_conf)
    label = label or f"sk-{uuid.uuid4().hex[:12]}"
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", label,
         "--so-pin", so_pin, "--pin", pin],
        check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(_shared_conf)},
    )
    return {"conf_path": str(_shared_conf), "module": module, "label": label,
            "pin": pin, "so_pin": so_pin}
