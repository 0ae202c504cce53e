"""``sealkeeper log``: read, export and independently verify the usage log.

Mounted by the top-level application as ``app.add_typer(log_cmds.app, name="log")``.
The server URL and token come from ``sealkeeper login`` (or SEALKEEPER_URL /
SEALKEEPER_TOKEN), like the other client commands.

* ``log list`` / ``log export``: the organization's entries (its
  administrators see every entry, other members their own), filtered.
* ``log security``: refused attempts (administrators); ``-o FILE`` exports CSV.
* ``log verify``: checkpoint signature, consistency with the checkpoint saved
  locally, and with ``--full`` every entry and the root recomputed
  (:mod:`sealkeeper.client.logverify`).
* ``log proof SEQ``: one entry with its inclusion proof checked against a
  signed checkpoint.

Exit codes: 0 ok; 1 the log does not verify (the first bad index is named);
2 error (network, authentication, bad input).
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from sealkeeper.cli import client_cmds
from sealkeeper.cli._errors import handle_errors
from sealkeeper.client import logproof
from sealkeeper.client.api import SealkeeperClient
from sealkeeper.client.logverify import (
    ApiLogSource,
    LogVerification,
    StateDir,
    check_entry,
    default_state_dir,
    verify_log,
)
from sealkeeper.errors import CryptoError, InvalidInput

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True,
                  help="The usage log: list, export, security events, verify.")
console = Console(highlight=False)
err = Console(stderr=True, highlight=False)
_ADMIN_ROLES = {"account_admin", "eseal_admin"}


def _connect() -> SealkeeperClient:
    return client_cmds.client()


def _me(sk: SealkeeperClient) -> tuple[str | None, bool]:
    """(the caller's organization, whether they administer it)."""
    me = sk.me()
    return me["user"].get("organization_id"), bool(_ADMIN_ROLES & set(me.get("roles", [])))


def _org_required(sk: SealkeeperClient, org: str | None) -> str:
    if org:
        return org
    own, _ = _me(sk)
    if own is None:
        raise InvalidInput("your account belongs to no organization: give --org", field="org")
    return own


def _read_scope(sk: SealkeeperClient, org: str | None) -> str | None:
    """The organization whose log to read, or None for the caller's own entries
    (/me/log: a member who is not an administrator, or in no organization)."""
    if org:
        return org
    own, admin = _me(sk)
    return own if admin else None


def _filters(seal: str | None, user: str | None, since: str | None, until: str | None,
             file_name: str | None, file_digest: str | None,
             kind: str | None) -> dict[str, str | None]:
    return {"seal_id": seal, "user_id": user, "since": since, "until": until,
            "file_name": file_name, "file_digest": file_digest, "kind": kind}


def _when(value: Any) -> str:
    return str(value or "")[:19].replace("T", " ")


# The filter options of `list` and `export` (functions: one OptionInfo per use).
def _o_org() -> Any:
    return typer.Option(None, "--org", help="Organization id (default: yours).")


def _o_seal() -> Any:
    return typer.Option(None, "--seal", help="Only this SealID.")


def _o_user() -> Any:
    return typer.Option(None, "--user", help="Only this user id.")


def _o_since() -> Any:
    return typer.Option(None, "--since", help="From this time (ISO 8601; UTC if no zone).")


def _o_until() -> Any:
    return typer.Option(None, "--until", help="Before this time (ISO 8601; UTC if no zone).")


def _o_file_name() -> Any:
    return typer.Option(None, "--file-name", help="File name contains this text.")


def _o_file_digest() -> Any:
    return typer.Option(None, "--file-digest", help="File digest (lowercase hex).")


def _o_kind() -> Any:
    return typer.Option(None, "--kind", help="signature, grant, withdrawal, seal_status, "
                        "rekey, approval_password_reset or decryption.")


@app.command("list")
@handle_errors
def list_entries(
    org: str | None = _o_org(),
    seal: str | None = _o_seal(),
    user: str | None = _o_user(),
    since: str | None = _o_since(),
    until: str | None = _o_until(),
    file_name: str | None = _o_file_name(),
    file_digest: str | None = _o_file_digest(),
    kind: str | None = _o_kind(),
    page: int = typer.Option(1, min=1, help="Page number."),
    page_size: int = typer.Option(50, min=1, max=500, help="Entries per page."),
    oldest_first: bool = typer.Option(False, "--oldest-first", help="Oldest entries first."),
    as_json: bool = typer.Option(False, "--json", help="Print the page as JSON."),
) -> None:
    """List usage-log entries, newest first.

    Administrators see their whole organization's log (deleted employees
    included); other members their own entries."""
    with _connect() as sk:
        scope = _read_scope(sk, org)
        body = sk.log_entries(scope, page=page, page_size=page_size,
                              order="asc" if oldest_first else "desc",
                              **_filters(seal, user, since, until, file_name, file_digest,
                                         kind))
    if as_json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return
    table = Table("seq", "time (UTC)", "kind", "seal", "user", "file", "digest")
    for e in body["items"]:
        table.add_row(str(e["seq"]), _when(e["time"]), e["kind"],
                      escape(e.get("seal_name") or e.get("seal_id") or ""),
                      escape(e.get("user_email") or e.get("user_id") or ""),
                      escape(e.get("file_name") or ""),
                      (e.get("file_digest") or "")[:16])
    console.print(table)
    total, size = int(body["total"]), int(body["page_size"])
    pages = max(1, -(-total // size))
    console.print(f"page {body['page']} of {pages}; {total} matching entries"
                  + ("" if scope else " (your own entries)"))


@app.command("export")
@handle_errors
def export(
    output: Path = typer.Option(..., "-o", "--output", help="The CSV file to write "
                                "('-' for standard output).", dir_okay=False),
    org: str | None = _o_org(),
    seal: str | None = _o_seal(),
    user: str | None = _o_user(),
    since: str | None = _o_since(),
    until: str | None = _o_until(),
    file_name: str | None = _o_file_name(),
    file_digest: str | None = _o_file_digest(),
    kind: str | None = _o_kind(),
) -> None:
    """Export the entries you may read as CSV (oldest first)."""
    filters = _filters(seal, user, since, until, file_name, file_digest, kind)
    with _connect() as sk:
        scope = _read_scope(sk, org)
        _write_csv(output, lambda write: sk.export_log_csv(write, scope, **filters))


def _write_csv(output: Path, export: Callable[[Callable[[bytes], object]], int]) -> None:
    """Stream an export to standard output ('-') or to ``output``, which appears
    only once complete."""
    if str(output) == "-":
        export(sys.stdout.buffer.write)
        sys.stdout.flush()
        return
    part = output.with_name(output.name + ".part")
    try:
        with part.open("wb") as f:
            size = export(f.write)
        os.replace(part, output)
    except OSError as e:
        part.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {output}: {e.strerror}", field="output") from e
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    err.print(f"wrote {output} ({size} bytes)")


@app.command("security")
@handle_errors
def security(
    org: str | None = _o_org(),
    user: str | None = _o_user(),
    seal: str | None = _o_seal(),
    reason: str | None = typer.Option(None, "--reason", help="e.g. approval_refused."),
    since: str | None = _o_since(),
    until: str | None = _o_until(),
    page: int = typer.Option(1, min=1, help="Page number."),
    page_size: int = typer.Option(50, min=1, max=500, help="Events per page."),
    as_json: bool = typer.Option(False, "--json", help="Print the page as JSON."),
    output: Path | None = typer.Option(None, "-o", "--output", dir_okay=False,
                                       help="Export every matching event as CSV, oldest "
                                       "first, to this file ('-' for standard output)."),
) -> None:
    """The security log of refused attempts (administrators).

    Wrong approval passwords, missing grants, exhausted quota..., newest first;
    with -o, every matching event as CSV."""
    filters = {"user_id": user, "seal_id": seal, "reason": reason, "since": since,
               "until": until}
    with _connect() as sk:
        org_id = _org_required(sk, org)
        if output is not None:
            _write_csv(output, lambda write: sk.export_security_csv(write, org_id, **filters))
            return
        body = sk.security_events(org_id, page=page, page_size=page_size, **filters)
    if as_json:
        print(json.dumps(body, indent=2, ensure_ascii=False))
        return
    table = Table("time (UTC)", "action", "reason", "user", "seal", "message", "from")
    for e in body["items"]:
        table.add_row(_when(e["time"]), e["action"], e["reason"], e.get("user_id") or "",
                      e.get("seal_id") or "", escape(e["message"]), e.get("remote_addr") or "")
    console.print(table)
    console.print(f"page {body['page']}; {body['total']} events")


@app.command("verify")
@handle_errors
def verify(
    org: str | None = _o_org(),
    full: bool = typer.Option(False, "--full", help="Download every entry (administrators) "
                              "and recompute the tree."),
    state: Path | None = typer.Option(None, "--state", file_okay=False, help="Where the "
                                      "pinned key and the last checkpoint are kept "
                                      "(default: ~/.local/state/sealkeeper/log/<host>/<org>)."),
    key: str | None = typer.Option(None, "--key", envvar="SEALKEEPER_LOG_KEY",
                                   help="The log's verifier key (name+id+key) to trust; "
                                   "default: the pinned one, else the server's on first use."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Verify the log independently of the server.

    Checks the checkpoint's signature, its consistency with the checkpoint
    saved here last time, and with --full every entry and the root. Exit 0
    consistent, 1 mismatch (the first bad index is named), 2 error."""
    with _connect() as sk:
        org_id = _org_required(sk, org)
        state_dir = StateDir(state or default_state_dir(sk.base_url, org_id))
        with _progress(enabled=full and not as_json) as progress:
            res = verify_log(ApiLogSource(sk, org_id), org_id, state=state_dir, key=key,
                             full=full, progress=progress)
    for w in res.warnings:
        err.print(f"[yellow]warning[/yellow]: {escape(w)}")
    if as_json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        _print_verification(res)
    raise typer.Exit(res.exit_code)


@contextmanager
def _progress(*, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A download progress bar on a terminal's stderr (nothing otherwise)."""
    if not enabled or not err.is_terminal:
        yield None
        return
    with Progress(TextColumn("entries"), BarColumn(), MofNCompleteColumn(), console=err,
                  transient=True) as bar:
        task = bar.add_task("entries", total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _print_verification(res: LogVerification) -> None:
    def line(label: str, text: str) -> None:
        console.print(f"{label:<11} {text}", soft_wrap=True)

    source = {"given": "given with --key", "pinned": "pinned",
              "first-use": "trusted on first use"}.get(res.key_source or "", "")
    if res.verifier_key:
        name, kid = res.verifier_key.split("+")[:2]
        line("key", f"{escape(name)}+{kid} ({source})")
    if res.tree_size is not None:
        line("log", escape(res.origin or ""))
        line("checkpoint", f"{res.tree_size} entries, root {res.root}; signature verified")
    prev = res.previous
    if res.consistency == "first-use":
        line("history", "no earlier checkpoint saved here: nothing to compare with yet")
    elif res.consistency == "same" and prev is not None:
        line("history", f"unchanged since the checkpoint saved {prev.saved_at}")
    elif res.consistency == "proven" and prev is not None:
        line("history", f"consistent with the checkpoint of {prev.size} entries saved "
             f"{prev.saved_at} (consistency proof verified)")
    elif res.consistency == "failed":
        line("history", "[red]NOT consistent with the checkpoint saved earlier[/red]")
    if res.full and res.root_recomputed is not None:
        verdict = "matches" if res.root_recomputed else "[red]DOES NOT match[/red]"
        line("entries", f"{res.entries_checked} downloaded and checked; root recomputed "
             f"from them: {verdict}")
    if res.problem is None:
        saved = f"; saved in {res.state_dir}" if res.saved else ""
        console.print(f"[bold green]OK[/bold green]: the log is consistent{saved}",
                      soft_wrap=True)
        return
    p = res.problem
    where = f"entry {p.index}" if p.index is not None else "the log"
    more = (f" (and {res.other_problems} more problem(s) after it)"
            if res.other_problems else "")
    console.print(f"[bold red]MISMATCH[/bold red] at {where} {escape(f'[{p.kind}]')}: "
                  f"{escape(p.detail)}{more}", soft_wrap=True)


@app.command("proof")
@handle_errors
def proof(
    seq: int = typer.Argument(..., min=0, help="The entry's index (seq)."),
    org: str | None = _o_org(),
    state: Path | None = typer.Option(None, "--state", file_okay=False,
                                      help="Where `log verify` pinned the key."),
    key: str | None = typer.Option(None, "--key", envvar="SEALKEEPER_LOG_KEY",
                                   help="The log's verifier key (name+id+key)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Show one entry, proven by its inclusion proof.

    The proof is checked against the log's signed checkpoint (key: --key, else
    the one `log verify` pinned, else the server's)."""
    with _connect() as sk:
        org_id = _org_required(sk, org)
        state_dir = StateDir(state or default_state_dir(sk.base_url, org_id))
        key_text = key or state_dir.load_key()
        if key_text is None:
            key_text = sk.log_verifier_key(org_id)
            err.print("[yellow]warning[/yellow]: the log key comes from the server itself "
                      "(run `sealkeeper log verify` once to pin it, or pass --key)")
        vkey = logproof.parse_verifier_key(key_text)
        note = sk.log_checkpoint(org_id)
        try:
            try:
                cp = logproof.open_checkpoint(note, vkey)
            except InvalidInput as e:
                raise CryptoError(f"malformed checkpoint: {e.message}") from None
            if seq >= cp.size:
                raise CryptoError(f"the signed checkpoint has {cp.size} entries: entry {seq} "
                                  "is not in it")
            p = sk.log_inclusion_proof(org_id, seq=seq, tree_size=cp.size)
            try:
                entry = base64.b64decode(p["entry"], validate=True)
                path = [bytes.fromhex(h) for h in p["path"]]
            except (KeyError, TypeError, ValueError) as e:
                raise CryptoError(f"malformed proof from the server: {e}") from None
            leaf = logproof.leaf_hash(entry)
            logproof.verify_inclusion(leaf, seq, cp.size, path, cp.root_hash)
            if int(p["seq"]) != seq:
                raise CryptoError(f"the server proved entry {p['seq']}, not {seq}")
            problem = check_entry(entry, seq, org_id)
            if problem is not None:
                raise CryptoError(problem.detail)
        except CryptoError as e:
            if as_json:
                print(json.dumps({"ok": False, "seq": seq, "error": e.message}, indent=2))
            else:
                console.print(f"[bold red]NOT PROVEN[/bold red]: entry {seq}: "
                              f"{escape(e.message)}")
            raise typer.Exit(1) from None
    fields = json.loads(entry)
    if as_json:
        print(json.dumps({"ok": True, "seq": seq, "tree_size": cp.size,
                          "root": cp.root_hash.hex(), "leaf_hash": leaf.hex(),
                          "origin": cp.origin, "entry": fields}, indent=2, ensure_ascii=False))
        return
    for k in sorted(fields):
        console.print(f"{k:<17} {escape(str(fields[k]))}", soft_wrap=True)
    console.print(f"[bold green]PROVEN[/bold green]: entry {seq} of {cp.size} "
                  f"(leaf {leaf.hex()[:16]}…) is in the tree signed by "
                  f"{escape(vkey.name)}+{vkey.key_id.hex()}", soft_wrap=True)
