"""Reading the usage log: who sees what, filters, paging, CSV export (with
formula injection defused), raw entries, proofs by reader, and the security
log. Both databases, on the standard world of two organizations."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from audit_helpers import BASE_URL, FrozenClock, signature
from sqlalchemy import select

from factories import World
from sealkeeper.audit import (
    AuditLog,
    EntryDraft,
    LogFilter,
    LogSigner,
    PendingSecurityEvents,
    SecurityEvent,
    SecurityEventDraft,
    SecurityFilter,
    record_security_event,
    record_security_event_independently,
)
from sealkeeper.audit.encoding import EntryKind
from sealkeeper.audit.export import CSV_HEADER, csv_cell
from sealkeeper.authz import Actor
from sealkeeper.crypto import merkle
from sealkeeper.errors import InvalidInput, NotFound, PermissionDenied
from sealkeeper.runtime import Runtime
from sealkeeper.services import UnitOfWork


@dataclass
class Logged:
    """Org A's log as the world left it (``base`` entries: grants and the like),
    then 6 signatures by a.employee (seq base..base+5), a day later 4 by
    a.employee2 (base+6..base+9) and a grant to a.employee2 (base+10), all at
    or after ``t0``; org B's log gets 3 more signatures."""

    uow: UnitOfWork
    log: AuditLog
    clock: FrozenClock
    world: World
    actors: dict[str, Actor]
    base: int
    before: dict[str, int]       # role -> entries about that user before ours
    t0: datetime

    def actor(self, role: str) -> Actor:
        return self.actors[role]

    def mine(self, **kw: object) -> LogFilter:
        """A filter over our entries only."""
        return LogFilter(since=self.t0, **kw)  # type: ignore[arg-type]


@pytest.fixture
def logged(runtime: Runtime, world: World, signer: LogSigner) -> Iterator[Logged]:
    uow = UnitOfWork(runtime)
    # After everything the world logged with the real clock.
    clock = FrozenClock(datetime.now(UTC) + timedelta(days=1))
    t0 = clock.now
    log = AuditLog(uow.session, clock, base_url=BASE_URL, signer=signer)
    acc = uow.accounts
    actors: dict[str, Actor] = {"operator": acc.actor_for(acc.find_by_email(
        "operator@operator.example"))}
    for prefix, org in (("a", world.a), ("b", world.b)):
        for role, email in org.emails.items():
            actors[f"{prefix}.{role}"] = acc.actor_for(acc.find_by_email(email))
    a = world.a
    admin = actors["a.eseal_admin"]
    base = log.size(admin, a.id)
    before = {role: log.entries(admin, a.id, LogFilter(user_id=uid)).total
              for role, uid in a.users.items()}
    log.append(a.id, [signature(i, user=a.users["employee"], email=a.emails["employee"],
                                seal=a.seals["contract"]) for i in range(6)])
    clock.advance(days=1)
    log.append(a.id, [signature(100 + i, user=a.users["employee2"], email=a.emails["employee2"],
                                seal=a.seals["official"], api="csc-v2") for i in range(4)])
    log.append(a.id, [EntryDraft.grant(
        seal_id=a.seals["official"], seal_name="Official Seal", seal_type="official",
        user_id=a.users["employee2"], user_email=a.emails["employee2"],
        by_user_id=a.users["eseal_admin"])])
    log.append(world.b.id, [signature(i, user=world.b.users["employee"],
                                      email=world.b.emails["employee"]) for i in range(3)])
    uow.commit()
    yield Logged(uow, log, clock, world, actors, base, before, t0)
    uow.close()


def seqs(page) -> list[int]:
    return [e.seq for e in page.items]


def test_administrators_see_everything_employees_their_own(logged: Logged):
    a, b = logged.world.a, logged.base
    log = logged.log
    for role in ("a.account_admin", "a.eseal_admin"):
        page = log.entries(logged.actor(role), a.id, page_size=500)
        assert page.total == b + 11 and seqs(page) == list(range(b + 10, -1, -1))
    mine = log.entries(logged.actor("a.employee"), a.id, page_size=500)
    assert mine.total == logged.before["employee"] + 6
    assert {e.user_id for e in mine.items} == {a.users["employee"]}
    assert seqs(log.my_entries(logged.actor("a.employee"), logged.mine())) == \
        list(range(b + 5, b - 1, -1))
    # The grant is about employee2, so they see it with their signatures.
    theirs = log.entries(logged.actor("a.employee2"), a.id)
    assert theirs.total == logged.before["employee2"] + 5
    assert theirs.items[0].kind == EntryKind.GRANT and theirs.items[0].seq == b + 10
    # A filter can only narrow what one may see.
    assert log.entries(logged.actor("a.employee"), a.id,
                       LogFilter(user_id=a.users["employee2"])).total == 0
    assert log.my_entries(Actor(user_id="x" * 32, email="x@example.com")).total == 0


@pytest.mark.parametrize("role", ["b.eseal_admin", "b.account_admin", "b.employee", "operator"])
def test_another_organizations_log_does_not_exist(logged: Logged, role: str):
    a = logged.world.a
    actor = logged.actor(role)
    log = logged.log
    calls = [lambda: log.entries(actor, a.id), lambda: log.csv_export(actor, a.id),
             lambda: log.checkpoint(actor, a.id), lambda: log.inclusion_proof(actor, a.id, seq=0),
             lambda: log.consistency_proof(actor, a.id, 1, 2),
             lambda: log.raw_entries(actor, a.id, 0, 10),
             lambda: log.security_events(actor, a.id), lambda: log.verifier_key(actor, a.id),
             lambda: log.entry(actor, a.id, 0), lambda: log.size(actor, a.id)]
    for call in calls:
        with pytest.raises(NotFound) as e:
            call()
        assert a.id not in e.value.message and a.name not in e.value.message


def test_deleted_employees_entries_stay_visible_with_proofs(logged: Logged):
    a = logged.world.a
    uow = logged.uow
    uow.employees.delete(logged.actor("a.account_admin"), a.id, a.users["employee"])
    uow.outbox.drain()
    uow.commit()
    admin = logged.actor("a.eseal_admin")
    page = logged.log.entries(admin, a.id, LogFilter(user_id=a.users["employee"],
                                                     kind="signature"))
    assert page.total == 6
    proof = logged.log.inclusion_proof(admin, a.id, seq=logged.base + 3)
    assert proof.leaf_hash == merkle.leaf_hash(proof.entry)
    proof.verify()


def test_employees_prove_only_their_own_entries(logged: Logged):
    a, b = logged.world.a, logged.base
    emp = logged.actor("a.employee")
    logged.log.inclusion_proof(emp, a.id, seq=b + 2).verify()
    entry = logged.log.entry(logged.actor("a.eseal_admin"), a.id, b + 7)
    with pytest.raises(NotFound):
        logged.log.inclusion_proof(emp, a.id, seq=b + 7)
    with pytest.raises(NotFound):
        logged.log.inclusion_proof(emp, a.id, leaf_hash=entry.leaf_hash)
    with pytest.raises(NotFound):
        logged.log.entry(emp, a.id, b + 7)
    # Sizes and roots are not secret within the organization.
    logged.log.consistency_proof(emp, a.id, 3, b + 11).verify()
    assert logged.log.checkpoint(emp, a.id).startswith(f"testserver/log/{a.id}\n{b + 11}\n")
    with pytest.raises(PermissionDenied):
        logged.log.raw_entries(emp, a.id, 0, 10)
    with pytest.raises(PermissionDenied):
        logged.log.security_events(emp, a.id)


def test_filters(logged: Logged):
    a = logged.world.a
    log, admin = logged.log, logged.actor("a.eseal_admin")

    def total(**kw) -> int:
        return log.entries(admin, a.id, LogFilter(**kw)).total

    def ours(**kw) -> int:
        return log.entries(admin, a.id, logged.mine(**kw)).total

    assert ours() == 11
    assert ours(seal_id=a.seals["contract"]) == 6
    assert ours(seal_id=a.seals["official"]) == 5
    assert ours(user_id=a.users["employee2"]) == 5
    start = logged.t0
    second_day = start + timedelta(days=1)
    assert total(since=start, until=second_day) == 6
    assert total(since=second_day) == 5
    assert total(since=second_day.replace(tzinfo=None)) == 5      # a naive time is UTC
    assert total(since=second_day, until=second_day + timedelta(hours=1)) == 5
    assert total(since=start + timedelta(hours=1), until=second_day) == 0
    assert ours(file_name="CONTRACT-101") == 1              # substring, any case
    assert ours(file_name="tract-10") == 4
    assert ours(file_name="%") == 0 and ours(file_name="_") == 0   # no wildcards
    digest = log.entries(admin, a.id, logged.mine(), order="asc").items[0].file_digest
    assert digest is not None and total(file_digest=digest.upper()) == 1
    assert ours(kind="grant") == 1 and ours(kind=EntryKind.SIGNATURE) == 10
    assert ours(api="csc-v2") == 4
    assert total(seal_id=a.seals["contract"], user_id=a.users["employee2"]) == 0
    for bad, field in ((dict(kind="nope"), "kind"), (dict(file_digest="xyz"), "file_digest"),
                       (dict(file_digest="abc"), "file_digest"),
                       (dict(since=start, until=start - timedelta(1)), "since"),
                       (dict(file_name="x" * 1025), "file_name")):
        with pytest.raises(InvalidInput) as e:
            log.entries(admin, a.id, LogFilter(**bad))
        assert e.value.field == field


def test_paging_is_stable(logged: Logged):
    a, b = logged.world.a, logged.base
    log, admin = logged.log, logged.actor("a.account_admin")
    mine = logged.mine()
    pages = [log.entries(admin, a.id, mine, page=p, page_size=4) for p in (1, 2, 3, 4)]
    assert [seqs(p) for p in pages] == [[b + 10, b + 9, b + 8, b + 7], [b + 6, b + 5, b + 4,
                                                                         b + 3],
                                        [b + 2, b + 1, b], []]
    assert pages[0].total == 11 and pages[0].pages == 3
    asc = log.entries(admin, a.id, mine, page=2, page_size=4, order="asc")
    assert seqs(asc) == [b + 4, b + 5, b + 6, b + 7]
    for kw, field in ((dict(page=0), "page"), (dict(page_size=0), "page_size"),
                      (dict(page_size=501), "page_size"), (dict(order="up"), "order")):
        with pytest.raises(InvalidInput) as e:
            log.entries(admin, a.id, **kw)
        assert e.value.field == field


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_csv_export(logged: Logged, runtime: Runtime):
    a, b = logged.world.a, logged.base
    log, admin = logged.log, logged.actor("a.eseal_admin")
    export = log.csv_export(admin, a.id, logged.mine(seal_id=a.seals["official"]))
    text = "".join(export.lines(logged.uow.session))
    assert text.endswith("\r\n")
    rows = parse_csv(text)
    assert rows[0] == CSV_HEADER
    assert [int(r[0]) for r in rows[1:]] == [b + 6, b + 7, b + 8, b + 9, b + 10]  # oldest first
    grant = dict(zip(CSV_HEADER, rows[-1], strict=True))
    assert grant["kind"] == "grant" and a.users["eseal_admin"] in grant["details"]
    first = dict(zip(CSV_HEADER, rows[1], strict=True))
    assert first["user_email"] == a.emails["employee2"] and first["api"] == "csc-v2"
    assert first["time"].endswith("Z") and len(first["leaf_hash"]) == 64
    # Streamed in short transactions of its own (as a response is, once the
    # request's transaction has ended): the same text.
    logged.uow.session.rollback()
    assert "".join(export.stream(runtime.session_factory)) == text
    # The export is the log as it was when it was asked for.
    logged.log.append(a.id, [signature(500, user=a.users["employee2"], seal=a.seals["official"],
                                       email=a.emails["employee2"])])
    logged.uow.commit()
    assert "".join(export.stream(runtime.session_factory)) == text
    assert "".join(export.lines(logged.uow.session)) == text
    # An employee's export holds only their entries.
    mine = parse_csv("".join(log.csv_export(logged.actor("a.employee"), a.id)
                             .lines(logged.uow.session)))
    assert len(mine) == 1 + logged.before["employee"] + 6
    assert {r[6] for r in mine[1:]} == {a.users["employee"]}


def test_csv_export_in_chunks(runtime: Runtime, logged: Logged):
    a = logged.world.a
    logged.log.append(a.id, [signature(1000 + i, user=a.users["employee"]) for i in range(2500)])
    logged.uow.commit()
    export = logged.log.csv_export(logged.actor("a.eseal_admin"), a.id)
    logged.uow.session.rollback()
    streamed = "".join(export.stream(runtime.session_factory))
    rows = parse_csv(streamed)
    assert [int(r[0]) for r in rows[1:]] == list(range(logged.base + 2511))
    assert "".join(export.lines(logged.uow.session)) == streamed


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)",
                                  "=cmd|' /C calc'!A0.pdf"])
def test_csv_formula_injection_is_defused(logged: Logged, name: str):
    a = logged.world.a
    logged.log.append(a.id, [signature(7, user=a.users["employee"], file_name=name)])
    export = logged.log.csv_export(logged.actor("a.eseal_admin"), a.id,
                                   LogFilter(file_name=name))
    rows = parse_csv("".join(export.lines(logged.uow.session)))
    assert len(rows) == 2 and rows[1][CSV_HEADER.index("file_name")] == "'" + name
    # The log itself keeps the name as given.
    assert logged.log.entries(logged.actor("a.eseal_admin"), a.id,
                              LogFilter(file_name=name)).items[0].file_name == name


def test_csv_cell():
    assert csv_cell(None) == "" and csv_cell(5) == "5" and csv_cell("a=b") == "a=b"
    assert csv_cell("\t=1") == "'\t=1" and csv_cell("-") == "'-"


def test_raw_entries_for_verifiers(logged: Logged):
    a = logged.world.a
    admin = logged.actor("a.account_admin")
    rows = logged.log.raw_entries(admin, a.id, 0, 1000)
    assert [s for s, _ in rows] == list(range(logged.base + 11))
    leaves = [merkle.leaf_hash(e) for _, e in rows]
    stored = logged.log.inclusion_proof(admin, a.id, seq=logged.base + 10)
    assert stored.root == merkle.root_from_leaves(leaves)
    assert [s for s, _ in logged.log.raw_entries(admin, a.id, 4, 6)] == [4, 5]
    assert logged.log.raw_entries(admin, a.id, 5000, 5010) == []
    for start, end, field in ((0, 1001, "end"), (5, 4, "end"), (-1, 3, "start")):
        with pytest.raises(InvalidInput) as e:
            logged.log.raw_entries(admin, a.id, start, end)
        assert e.value.field == field


def test_security_events(logged: Logged, runtime: Runtime):
    a = logged.world.a
    uow = logged.uow
    record_security_event(uow.session, logged.clock, SecurityEventDraft(
        action="sign", reason="approval_refused", message="wrong approval password",
        organization_id=a.id, user_id=a.users["employee"], seal_id=a.seals["contract"],
        api="native", remote_addr="192.0.2.7"))
    uow.commit()
    # A refusal rolls the request back; the event written independently stays.
    uow.session.execute(select(1))
    uow.rollback()
    record_security_event_independently(runtime.session_factory, logged.clock, SecurityEventDraft(
        action="sign", reason="no_grant", message="not granted\x00\nthis seal",
        organization_id=a.id, user_id=a.users["employee2"], seal_id=a.seals["official"]))
    pending = PendingSecurityEvents()
    pending.add(SecurityEventDraft(action="Sign!", reason="quota_exhausted", message="x" * 5000,
                                   organization_id=a.id))
    pending.add(SecurityEventDraft(action="sign", reason="quota_exhausted", message="b",
                                   organization_id=logged.world.b.id))
    pending.write(runtime.session_factory, logged.clock)
    assert len(pending) == 0
    admin = logged.actor("a.eseal_admin")
    ours = SecurityFilter(since=logged.t0)
    page = logged.log.security_events(admin, a.id, ours)
    assert page.total == 3
    by_reason = {e.reason: e for e in page.items}
    assert by_reason["no_grant"].message == "not granted  this seal"
    assert by_reason["quota_exhausted"].action == "sign_" and \
        len(by_reason["quota_exhausted"].message) == 1000
    assert by_reason["approval_refused"].remote_addr == "192.0.2.7"
    assert logged.log.security_events(admin, a.id, SecurityFilter(
        since=logged.t0, user_id=a.users["employee"])).total == 1
    assert logged.log.security_events(admin, a.id, SecurityFilter(
        since=logged.t0, reason="no_grant")).total == 1
    assert logged.log.security_events(logged.actor("a.account_admin"), a.id, ours).total == 3
    assert logged.log.security_events(logged.actor("b.eseal_admin"), logged.world.b.id,
                                      ours).total == 1
    # Security events are append-only too.
    ev = uow.session.scalars(select(SecurityEvent)).first()
    assert ev is not None
    ev.message = "edited"
    from sealkeeper.errors import Conflict

    with pytest.raises(Conflict):
        uow.session.flush()
    uow.session.rollback()
