"""``sealkeeper verify``: check the signatures of a PDF, or a file and its ``.p7s``.

Mounted by the top-level application as ``app.command("verify")(verify)``.
The work is done by :mod:`sealkeeper.client.report` (client side, no server
code); this module gathers the options, prints the report and turns the
verdict into the exit code.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sealkeeper.errors import InvalidInput, SealkeeperError

if TYPE_CHECKING:  # pyHanko is imported when a file is verified, not at start-up
    from sealkeeper.client.report import SignatureReport, VerificationReport

__all__ = ["verify"]

_EXIT_ERROR = 2
_LOGGERS = ("pyhanko", "pyhanko_certvalidator", "asyncio", "aiohttp")
_STYLE = {"valid": "bold green", "invalid": "bold red", "indeterminate": "bold yellow"}


def verify(
    file: Path = typer.Argument(..., help="The signed PDF, or any file signed with a "
                                "detached .p7s (give it with --signature).",
                                dir_okay=False),
    signature: Path | None = typer.Option(None, "--signature", "-s", dir_okay=False,
                                          help="Detached CMS signature (.p7s) of FILE."),
    trust: list[Path] = typer.Option(
        [], "--trust", "-t", dir_okay=False,
        help="Trust root certificate (PEM or DER); repeatable. Default: the root "
             "of --server (/pki/root.crt)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    server: str | None = typer.Option(None, "--server", envvar="SEALKEEPER_URL",
                                      help="sealkeeper server URL: its root is the "
                                      "default trust root, and with --token the usage "
                                      "log is checked. Default: the server of "
                                      "'sealkeeper login'."),
    token: str | None = typer.Option(None, "--token", envvar="SEALKEEPER_TOKEN",
                                     help="API token of a member of the signing "
                                     "organization (for the usage-log check)."),
    no_log_check: bool = typer.Option(False, "--no-log-check",
                                      help="Do not look the signatures up in the usage "
                                      "log."),
    log_key: str | None = typer.Option(None, "--log-key", envvar="SEALKEEPER_LOG_KEY",
                                       help="The usage log's signed-note verifier key "
                                       "(name+id+key); default: fetched from the server."),
    offline: bool = typer.Option(False, "--offline",
                                 help="Never fetch revocation data; signatures without "
                                 "embedded validation data then stay undecided."),
    timeout: float = typer.Option(10.0, min=0.5, max=300.0,
                                  help="Network timeout in seconds."),
) -> None:
    """Verify the signatures of FILE: signer, seal, times, integrity, trust,
    revocation at signing time, PAdES level, changes after signing, usage log.

    Exit codes: 0 every signature is valid; 1 a signature is invalid (changed,
    not trusted, revoked at signing time, modified after signing, failed
    usage-log proof) or the PDF has no signature; 2 error: unreadable or
    malformed file, network failure, or a status that could not be decided
    (revocation data unavailable).
    """
    if server is None and token is None:
        server, token = _login_defaults()
    with _one_line_errors(), _quiet_libraries():
        report = _run(file, signature, trust, server, token, no_log_check, log_key,
                      offline, timeout)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print(report)
    raise typer.Exit(report.exit_code)


def _login_defaults() -> tuple[str | None, str | None]:
    """The server URL and token saved by ``sealkeeper login``, if any."""
    try:
        from sealkeeper.cli.client_cmds import ClientConfig
    except ImportError:  # pragma: no cover - the client commands are not installed
        return None, None
    try:
        cfg = ClientConfig.load()
    except (SealkeeperError, OSError, ValueError):
        return None, None
    return cfg.url, cfg.token


def _run(file: Path, signature: Path | None, trust: list[Path], server: str | None,
         token: str | None, no_log_check: bool, log_key: str | None, offline: bool,
         timeout: float) -> VerificationReport:
    from sealkeeper.client.report import (
        HttpLogChecker,
        VerifyOptions,
        fetch_server_root,
        load_certificates,
        verify_file,
    )

    roots: list[bytes] = []
    for path in trust:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InvalidInput(f"{path} cannot be read: {e.strerror}", field="trust") from e
        roots.extend(load_certificates(data, path.name))
    client: httpx.Client | None = None
    if server:
        if not server.startswith(("http://", "https://")):
            raise InvalidInput("--server must be an http:// or https:// URL",
                               field="server")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=server.rstrip("/"), headers=headers, timeout=timeout)
    try:
        if not roots and client is not None:
            roots.append(fetch_server_root(client))
        log = None
        if client is not None and token and not no_log_check:
            log = HttpLogChecker(client, verifier_key=log_key)
        options = VerifyOptions(trust_roots=roots, allow_fetching=not offline,
                                timeout=timeout, log=log)
        return verify_file(file, options, signature=signature)
    finally:
        if client is not None:
            client.close()


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Every failure is one line on stderr and exit code 2 (never a traceback)."""
    err = Console(stderr=True, soft_wrap=True)
    try:
        yield
    except SealkeeperError as e:
        err.print(f"[red]error[/red]: {e.message}", highlight=False, markup=True)
        raise typer.Exit(_EXIT_ERROR) from None
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as e:  # a bug or an unforeseen library error: still one line
        text = " ".join(str(e).split())[:300] or type(e).__name__
        err.print(f"[red]error[/red]: verification failed: {text}", highlight=False)
        raise typer.Exit(_EXIT_ERROR) from None


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """pyHanko logs validation failures with tracebacks; the report says it better."""
    saved = []
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.CRITICAL + 1)
        logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level, propagate in saved:
            logger.setLevel(level)
            logger.propagate = propagate


# --------------------------------------------------------------------------- human output


def _when(t: datetime | None) -> str:
    return "-" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _yes(ok: bool, text: str) -> Text:
    return Text(text, style="green" if ok else "red")


def _signature_table(s: SignatureReport) -> Table:
    kind = "Document time-stamp" if s.kind == "document_timestamp" else "Signature"
    title = Text.assemble(f"{kind} {s.index}", f" · field {s.field}" if s.field else "",
                          " · ", (s.verdict.upper(), _STYLE[s.verdict]))
    t = Table(title=title, title_justify="left", show_header=False, box=None,
              padding=(0, 2, 0, 1))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    if s.signer is not None:
        p = s.signer
        who = p.common_name or p.subject
        extra = [x for x in (p.organization and f"O={p.organization}",
                             p.organization_identifier
                             and f"organizationIdentifier={p.organization_identifier}",
                             p.email and f"email={p.email}") if x]
        t.add_row("TSA" if s.kind == "document_timestamp" else "Signer",
                  who + (f" ({', '.join(extra)})" if extra else ""))
    if s.organization and s.kind == "signature":
        t.add_row("Organization", s.organization)
    if s.seal is not None:
        parts = [s.seal.name or "-", s.seal.type or s.seal.kind.replace("_", " ")]
        if s.seal.seal_id:
            parts.append(f"SealID {s.seal.seal_id}")
        t.add_row("Seal", " · ".join(parts))
    if s.signing_time is not None:
        t.add_row("Signing time", f"{_when(s.signing_time)} ({s.signing_time_source})")
    if s.timestamp is not None and s.kind == "signature":
        ts = s.timestamp
        t.add_row("Time-stamp", _yes(ts.valid, f"{_when(ts.time)} by {ts.tsa or '?'}"
                                     + ("" if ts.valid else f": {ts.problem}")))
    integrity = ("intact, signature valid" if s.intact and s.signature_valid
                 else "CHANGED (digest mismatch)" if not s.intact else "signature INVALID")
    if s.digest_algorithm:
        integrity += f" ({s.digest_algorithm}, {s.signature_algorithm})"
    t.add_row("Integrity", _yes(s.intact and s.signature_valid, integrity))
    if s.trust is not None:
        text = (f"chain to {s.trust.root}" if s.trust.trusted
                else f"NOT TRUSTED: {s.trust.problem}")
        t.add_row("Trust", _yes(s.trust.trusted, text))
    if s.revocation is not None and s.revocation.status != "not_checked":
        rv = s.revocation
        text = f"{rv.status} as of {_when(rv.as_of)}" + (f"; {rv.source}" if rv.source else "")
        if rv.detail:
            text += f" ({rv.detail})"
        t.add_row("Revocation", Text(text, style={"good": "green", "revoked": "red"}.get(
            rv.status, "yellow")))
    if s.format:
        t.add_row("Format", s.format + (f", level {s.level}" if s.level else ""))
    if s.changes is not None:
        t.add_row("Changes", _yes(s.changes.permitted, s.changes.summary))
    if s.log is not None:
        lg = s.log
        style = {"verified": "green", "failed": "red", "error": "yellow"}.get(lg.status, "")
        text = lg.status.replace("_", " ") + (f": {lg.detail}" if lg.detail else "")
        if lg.status == "verified" and lg.user_email:
            text += f"; used by {lg.user_email} at {lg.logged_at}"
        t.add_row("Usage log", Text(text, style=style))
    for w in s.warnings:
        t.add_row("Warning", Text(w, style="yellow"))
    for problem in s.problems:
        t.add_row("Problem", Text(problem, style="red"))
    return t


def _print(report: VerificationReport) -> None:
    out = Console(soft_wrap=False)
    name = report.file + (f" + {report.signature_file}" if report.signature_file else "")
    n = len(report.signatures)
    out.print(Text.assemble((name, "bold"), " — ", (report.verdict.upper(),
                                                    _STYLE[report.verdict]),
                            f" ({n} signature{'s' if n != 1 else ''})"))
    if not report.signatures:
        out.print(Text("no signatures found", style="red"))
    for p in report.problems:
        out.print(Text(p, style="red"))
    out.print(f"trust roots: {', '.join(report.trust_roots)}", highlight=False)
    for s in report.signatures:
        out.print()
        out.print(_signature_table(s))
