"""The independent verifier of an organization's usage log: the engine behind
``sealkeeper log verify``.

It trusts nothing the server says that it cannot check:

1. the checkpoint (size and root) must carry a valid signature by the log
   key: given by the user, or pinned in the state directory the first time
   (trust on first use, with a warning);
2. the checkpoint must extend the last checkpoint saved in the state
   directory: same size and root, or a verified RFC 9162 consistency proof;
   a smaller size means the log was truncated;
3. with ``full``, every entry of the tree is downloaded; each must be
   canonical (``docs/merkle.md``), name this organization and carry its own
   index as ``seq``; the leaf hashes are re-derived from the bytes and the
   root recomputed; it must be the checkpoint's.

When something does not match, the first bad index is found: entries that
break a rule locally are known at once; a recomputed tree that diverges from
the signed one is bisected with consistency proofs against the signed root
(each proof is checked here, so a lying server cannot move the blame), which
names the first entry that is not the one the checkpoint commits to. After a
full run the verified leaf hashes are saved too, so a later rewritten history
is located the same way.

The state is saved only when everything verified. Errors (network,
authentication, malformed answers) raise :class:`~sealkeeper.errors.SealkeeperError`;
mismatches are results (:class:`LogVerification` with a :class:`Problem`).
Imports no server code.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

from sealkeeper.client import logproof
from sealkeeper.errors import (
    CryptoError,
    InvalidInput,
    NotFound,
    PermissionDenied,
)

__all__ = [
    "ApiLogSource",
    "LogSource",
    "LogVerification",
    "Problem",
    "SavedCheckpoint",
    "StateDir",
    "check_entry",
    "default_state_dir",
    "verify_log",
]

PAGE = 1000  # entries per /log/entries call (the server's maximum)
MAX_ENTRY_BYTES = 16 * 1024
MAX_SAFE_INT = 2**53 - 1
MAX_STRING = 2000
KINDS = frozenset({"signature", "grant", "withdrawal", "seal_status", "rekey",
                   "approval_password_reset", "decryption"})
_KEY = re.compile(r"[a-z][a-z0-9_]{0,31}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SAFE = re.compile(r"[^A-Za-z0-9._-]")

ProblemKind = Literal[
    "checkpoint_signature",  # the checkpoint is not validly signed by the log key
    "checkpoint_malformed",  # the checkpoint is not a well-formed signed note
    "wrong_log",             # the checkpoint is another log's
    "log_shrank",            # fewer entries than the checkpoint saved earlier
    "inconsistent",          # not an extension of the checkpoint saved earlier
    "missing_entry",         # a row is missing (the next index came instead)
    "misplaced_entry",       # a row out of order, or twice
    "missing_entries",       # fewer entries than the tree size
    "non_canonical",         # bytes that are not a canonical entry
    "wrong_index",           # an entry whose seq is not its index (moved)
    "wrong_organization",    # an entry of another organization
    "changed_entry",         # not the entry the signed tree commits to
]


@dataclass
class Problem:
    """The first mismatch found; ``index`` is the first bad entry (``None`` when
    the checkpoint itself is bad, or the earlier tree is not known here)."""

    kind: ProblemKind
    index: int | None
    detail: str


@dataclass
class SavedCheckpoint:
    origin: str
    size: int
    root: str  # hex
    note: str
    saved_at: str
    leaves: int = 0  # leaf hashes saved in leaves.bin (after a full run)


@dataclass
class LogVerification:
    """What ``sealkeeper log verify`` found. ``ok`` iff no problem."""

    organization_id: str
    state_dir: str | None = None
    verifier_key: str | None = None
    key_source: Literal["given", "pinned", "first-use"] | None = None
    origin: str | None = None
    tree_size: int | None = None
    root: str | None = None
    previous: SavedCheckpoint | None = None
    consistency: Literal["first-use", "same", "proven", "failed"] | None = None
    full: bool = False
    entries_checked: int = 0
    root_recomputed: bool | None = None
    problem: Problem | None = None
    other_problems: int = 0
    warnings: list[str] = field(default_factory=list)
    saved: bool = False

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.previous is not None:
            out["previous"] = {k: v for k, v in out["previous"].items() if k != "note"}
        out["ok"] = self.ok
        return out

    def _fail(self, kind: ProblemKind, index: int | None, detail: str) -> LogVerification:
        self._add(Problem(kind, index, detail))
        return self

    def _add(self, p: Problem) -> None:
        """Keep the problem with the smallest index (index-less ones come first:
        they concern the checkpoint or the whole history)."""
        if self.problem is None:
            self.problem = p
            return
        self.other_problems += 1
        current = -1 if self.problem.index is None else self.problem.index
        new = -1 if p.index is None else p.index
        if new < current:
            self.problem = p


# =========================================================================== the source


class LogSource(Protocol):
    """What the verifier needs from a server (one organization's log)."""

    def checkpoint(self) -> str: ...

    def verifier_key(self) -> str: ...

    def consistency_proof(self, old: int, new: int) -> list[bytes]: ...

    def raw_entries(self, start: int, end: int) -> list[tuple[int, bytes]]: ...


class _LogApi(Protocol):
    def log_checkpoint(self, org_id: str) -> str: ...

    def log_verifier_key(self, org_id: str) -> str: ...

    def log_consistency_proof(self, org_id: str, old: int,
                              new: int | None = None) -> dict[str, Any]: ...

    def log_raw_entries(self, org_id: str, start: int, end: int) -> dict[str, Any]: ...


class ApiLogSource:
    """A :class:`LogSource` over the JSON API (a :class:`SealkeeperClient`)."""

    def __init__(self, client: _LogApi, organization_id: str) -> None:
        self.client = client
        self.org = organization_id

    def checkpoint(self) -> str:
        return self.client.log_checkpoint(self.org)

    def verifier_key(self) -> str:
        return self.client.log_verifier_key(self.org)

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        body = self.client.log_consistency_proof(self.org, old, new)
        try:
            if int(body["old_size"]) != old or int(body["new_size"]) != new:
                raise InvalidInput("the server answered a proof for other tree sizes")
            return [_unhex(h) for h in body["path"]]
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidInput(f"malformed consistency proof from the server: {e}") from e

    def raw_entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        try:
            body = self.client.log_raw_entries(self.org, start, end)
        except PermissionDenied as e:
            raise PermissionDenied("downloading every entry (--full) needs an administrator "
                                   f"of the organization: {e.message}") from None
        try:
            return [(int(e["seq"]), base64.b64decode(e["entry"], validate=True))
                    for e in body["entries"]]
        except (KeyError, TypeError, ValueError, binascii.Error) as e:
            raise InvalidInput(f"malformed entries from the server: {e}") from e


def _unhex(h: object) -> bytes:
    if not isinstance(h, str):
        raise ValueError("a hash is not a string")
    return bytes.fromhex(h)


# =========================================================================== local state


def default_state_dir(server_url: str, organization_id: str) -> Path:
    """``$XDG_STATE_HOME/sealkeeper/log/<host>/<org>`` (``~/.local/state`` by default)."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    host = urlparse(server_url).netloc or server_url
    return base / "sealkeeper" / "log" / _SAFE.sub("_", host) / _SAFE.sub("_", organization_id)


class StateDir:
    """The verifier's memory: the pinned verifier key, the last verified
    checkpoint and, after a full run, its verified leaf hashes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def key_file(self) -> Path:
        return self.path / "verifier-key"

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.json"

    @property
    def leaves_file(self) -> Path:
        return self.path / "leaves.bin"

    def load_key(self) -> str | None:
        try:
            return self.key_file.read_text().strip() or None
        except FileNotFoundError:
            return None
        except OSError as e:
            raise InvalidInput(f"cannot read {self.key_file}: {e.strerror}") from e

    def load_checkpoint(self) -> SavedCheckpoint | None:
        try:
            data = json.loads(self.checkpoint_file.read_text())
            return SavedCheckpoint(origin=str(data["origin"]), size=int(data["size"]),
                                   root=str(data["root"]), note=str(data["note"]),
                                   saved_at=str(data["saved_at"]),
                                   leaves=int(data.get("leaves", 0)))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InvalidInput(f"{self.checkpoint_file} is unreadable ({e}); remove it to "
                               "start over") from e

    def load_leaves(self, count: int) -> list[bytes] | None:
        """The first ``count`` saved leaf hashes, or None if they are not there."""
        try:
            data = self.leaves_file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise InvalidInput(f"cannot read {self.leaves_file}: {e.strerror}") from e
        if len(data) < count * logproof.HASH_SIZE:
            return None
        return [data[i:i + logproof.HASH_SIZE]
                for i in range(0, count * logproof.HASH_SIZE, logproof.HASH_SIZE)]

    def save(self, key: str, cp: logproof.Checkpoint, note: str,
             leaves: Sequence[bytes] | None, previous: SavedCheckpoint | None) -> None:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        kept = 0
        if leaves is not None:
            _write_atomic(self.leaves_file, b"".join(leaves))
            kept = len(leaves)
        elif previous is not None and previous.leaves:
            kept = previous.leaves  # still a verified prefix of the new tree
        _write_atomic(self.key_file, (key + "\n").encode())
        saved = SavedCheckpoint(origin=cp.origin, size=cp.size, root=cp.root_hash.hex(),
                                note=note, saved_at=datetime.now(UTC).isoformat(
                                    timespec="seconds"), leaves=kept)
        _write_atomic(self.checkpoint_file,
                      (json.dumps(asdict(saved), indent=2) + "\n").encode())


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# =========================================================================== entries


def check_entry(data: bytes, index: int, organization_id: str) -> Problem | None:
    """Check the bytes of entry ``index``: a canonical version-1 entry
    (``docs/merkle.md``, "Entry encoding") of this organization whose ``seq``
    is ``index``. Returns the problem, or None."""
    def bad(detail: str) -> Problem:
        return Problem("non_canonical", index, f"entry {index} {detail}")

    if len(data) > MAX_ENTRY_BYTES:
        return bad(f"is larger than {MAX_ENTRY_BYTES} bytes")
    try:
        obj = json.loads(data.decode("utf-8"), parse_float=_refuse_number,
                         parse_constant=_refuse_number, object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError) as e:
        return bad(f"is not UTF-8 JSON without floats or repeated keys ({e})")
    if not isinstance(obj, dict):
        return bad("is not a JSON object")
    if obj.get("v") != 1 or isinstance(obj.get("v"), bool):
        return bad("is not a version-1 entry")
    for key in ("org", "seq", "kind", "time"):
        if key not in obj:
            return bad(f"has no {key!r}")
    for key, value in obj.items():
        if not _KEY.fullmatch(key):
            return bad(f"has a key that is not [a-z][a-z0-9_]{{0,31}}: {key!r}")
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
                return bad(f"has an integer outside +-(2**53 - 1) in {key!r}")
        elif isinstance(value, str):
            if len(value) > MAX_STRING or _CONTROL.search(value):
                return bad(f"has a string that is too long or holds control characters "
                           f"in {key!r}")
        else:
            return bad(f"has a value that is not a string, integer or boolean in {key!r}")
    if obj["kind"] not in KINDS:
        return bad(f"has an unknown kind {obj['kind']!r}")
    if not isinstance(obj["time"], str) or not _TIME.fullmatch(obj["time"]):
        return bad("has a time that is not RFC 3339 UTC with six fractional digits")
    try:
        canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return bad("holds text that is not valid Unicode")
    if canonical != data:
        return bad("is not in canonical form (key order, spacing or escapes)")
    if obj["org"] != organization_id:
        return Problem("wrong_organization", index,
                       f"entry {index} belongs to organization {obj['org']!r}")
    if obj["seq"] != index or isinstance(obj["seq"], bool):
        return Problem("wrong_index", index, f"entry {index} says it is entry {obj['seq']!r} "
                       "(moved, swapped or inserted)")
    return None


def _refuse_number(value: str) -> Any:
    raise ValueError(f"non-integer number {value!r}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a key appears twice")
    return out


# =========================================================================== the verifier


def verify_log(source: LogSource, organization_id: str, *, state: StateDir | None = None,
               key: str | None = None, full: bool = False,
               progress: Callable[[int, int], None] | None = None) -> LogVerification:
    """Verify one organization's log; see the module docstring. ``key``: the
    verifier key to trust (else the pinned one, else the server's, trusted on
    first use). ``progress(done, total)`` is called while entries download."""
    res = LogVerification(organization_id, state_dir=str(state.path) if state else None,
                          full=full)
    vkey = _resolve_key(source, state, key, res)
    note = source.checkpoint()
    try:
        cp = logproof.open_checkpoint(note, vkey)
    except CryptoError as e:
        return res._fail("checkpoint_signature", None,
                         f"{e.message} (key {vkey.name}+{vkey.key_id.hex()}, "
                         f"{res.key_source})")
    except InvalidInput as e:
        return res._fail("checkpoint_malformed", None, e.message)
    res.origin, res.tree_size, res.root = cp.origin, cp.size, cp.root_hash.hex()
    if not cp.origin.endswith(f"/log/{organization_id}"):
        return res._fail("wrong_log", None, f"the checkpoint is for the log {cp.origin!r}, "
                         f"not organization {organization_id}'s")

    saved = state.load_checkpoint() if state is not None else None
    res.previous = saved
    if saved is not None and saved.origin != cp.origin:
        return res._fail("wrong_log", None, f"the checkpoint's origin {cp.origin!r} is not "
                         f"the saved one {saved.origin!r}")
    if saved is None:
        res.consistency = "first-use"
    else:
        _check_against_saved(source, state, saved, cp, res)

    leaves: list[bytes] | None = None
    if full:
        leaves = _check_full(source, organization_id, cp, res, progress)

    if res.ok and state is not None:
        state.save(vkey.text, cp, note, leaves, saved)
        res.saved = True
    return res


def _resolve_key(source: LogSource, state: StateDir | None, key: str | None,
                 res: LogVerification) -> logproof.VerifierKey:
    pinned = state.load_key() if state is not None else None
    if key is not None:
        vkey = logproof.parse_verifier_key(key)
        res.key_source = "given"
        if state is not None and pinned is not None and pinned != vkey.text:
            res.warnings.append(f"the given key differs from the key pinned in {state.path}; "
                                "it replaces it if the log verifies")
    elif pinned is not None:
        try:
            vkey = logproof.parse_verifier_key(pinned)
        except InvalidInput as e:
            raise InvalidInput(f"the pinned key in {state.key_file if state else ''} is "
                               f"invalid: {e.message}") from e
        res.key_source = "pinned"
    else:
        vkey = logproof.parse_verifier_key(source.verifier_key())
        res.key_source = "first-use"
        res.warnings.append(
            f"trusting the log key {vkey.name}+{vkey.key_id.hex()} on first use: it came "
            "from the server being verified. Compare it with the key your administrator "
            "published (or pass --key); " + (f"it is pinned in {state.key_file} from now on."
                                             if state is not None else "it is not pinned."))
    res.verifier_key = vkey.text
    return vkey


def _check_against_saved(source: LogSource, state: StateDir | None, saved: SavedCheckpoint,
                         cp: logproof.Checkpoint, res: LogVerification) -> None:
    old_root = bytes.fromhex(saved.root)
    if cp.size < saved.size:
        res.consistency = "failed"
        index = _locate_with_saved(source, state, saved, cp)
        first = cp.size if index is None else index
        res._add(Problem("log_shrank", first,
                         f"the log has {cp.size} entries but had {saved.size} at the checkpoint "
                         f"saved {saved.saved_at}: " + (
                             f"entries {cp.size} to {saved.size - 1} were removed"
                             if first == cp.size else
                             f"entry {first} onwards were rewritten or removed")))
        return
    if cp.size == saved.size:
        if hmac.compare_digest(cp.root_hash, old_root):
            res.consistency = "same"
            return
        problem = f"same size {cp.size} as the checkpoint saved {saved.saved_at}, other root"
    else:
        try:
            path = source.consistency_proof(saved.size, cp.size)
            logproof.verify_consistency(saved.size, cp.size, old_root, cp.root_hash, path)
            res.consistency = "proven"
            return
        except (CryptoError, InvalidInput, NotFound) as e:
            msg = e.message
        problem = (f"the log of {cp.size} entries does not extend the checkpoint of "
                   f"{saved.size} saved {saved.saved_at} ({msg})")
    res.consistency = "failed"
    index = _locate_with_saved(source, state, saved, cp)
    where = (f"entry {index} is the first that changed" if index is not None else
             f"an entry before index {saved.size} changed (run --full once to save the "
             "leaf hashes and locate such changes)")
    res._add(Problem("inconsistent", index, f"history rewritten: {problem}; {where}"))


def _locate_with_saved(source: LogSource, state: StateDir | None, saved: SavedCheckpoint,
                       cp: logproof.Checkpoint) -> int | None:
    """The first saved (verified) leaf that is not in the new tree, if leaf
    hashes were saved; else None."""
    if state is None or saved.leaves == 0:
        return None
    leaves = state.load_leaves(saved.leaves)
    if leaves is None:
        return None
    tree = logproof.MerkleTree(leaves)
    if saved.leaves == saved.size and not hmac.compare_digest(tree.root(),
                                                              bytes.fromhex(saved.root)):
        return None  # the saved file does not match its checkpoint: ignore it
    first = _first_unproven(source, tree, cp.size, cp.root_hash)
    return first if first < min(tree.size, cp.size) or cp.size < tree.size else None


def _first_unproven(source: LogSource, tree: logproof.MerkleTree, size: int,
                    root: bytes) -> int:
    """The largest m such that the first m leaves of ``tree`` are proven (by a
    consistency proof checked here) to be the first m leaves of the signed tree
    (``size``, ``root``); m is the first bad index when m < min(tree.size, size)."""
    def proven(m: int) -> bool:
        if m == 0:
            return True
        if m == size:
            return hmac.compare_digest(tree.root(m), root)
        try:
            logproof.verify_consistency(m, size, tree.root(m), root,
                                        source.consistency_proof(m, size))
            return True
        except (CryptoError, InvalidInput, NotFound):
            return False

    hi = min(tree.size, size)
    if proven(hi):
        return hi
    lo = 0  # invariant: proven(lo), not proven(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if proven(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _check_full(source: LogSource, org: str, cp: logproof.Checkpoint, res: LogVerification,
                progress: Callable[[int, int], None] | None) -> list[bytes] | None:
    """Download [0, size), check every entry, recompute the root; returns the
    leaf hashes if everything matched."""
    leaves: list[bytes] = []
    local: Problem | None = None
    local_count = 0
    start = 0
    while start < cp.size:
        end = min(start + PAGE, cp.size)
        rows = source.raw_entries(start, end)
        for seq, data in rows:
            i = len(leaves)
            problem: Problem | None = None
            if seq != i:
                if seq > i:
                    problem = Problem("missing_entry", i, f"entry {i} is missing (the next "
                                      f"row is entry {seq})")
                else:
                    problem = Problem("misplaced_entry", i, f"the row at index {i} is "
                                      f"numbered {seq} (out of order or repeated)")
            else:
                problem = check_entry(data, i, org)
            if problem is not None:
                local_count += 1
                local = local or problem
            leaves.append(logproof.leaf_hash(data))
        start = end  # the server answered every row it has in [start, end)
        if progress is not None:
            progress(min(len(leaves), cp.size), cp.size)
    res.entries_checked = len(leaves)
    tree = logproof.MerkleTree(leaves[:cp.size])
    matches = len(leaves) == cp.size and hmac.compare_digest(tree.root(), cp.root_hash)
    res.root_recomputed = matches
    if local is not None:
        res._add(local)
        res.other_problems += local_count - 1  # the later local ones
    if not matches:
        first = _first_unproven(source, tree, cp.size, cp.root_hash)
        if first < tree.size:
            res._add(Problem("changed_entry", first,
                             f"entry {first} is not the entry the signed checkpoint commits to "
                             "(edited, replaced or inserted)"))
        else:
            res._add(Problem("missing_entries", first,
                             f"the tree has {cp.size} entries, the server returned "
                             f"{len(leaves)}: entry {first} onwards are missing"))
    if len(leaves) > cp.size:
        res._add(Problem("misplaced_entry", cp.size, f"the server returned {len(leaves)} "
                         f"entries for a tree of {cp.size}"))
    return leaves if res.ok else None
