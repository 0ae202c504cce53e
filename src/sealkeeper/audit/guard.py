"""The ORM guard that keeps the log append-only.

Importing this module (``sealkeeper.audit`` does) installs listeners on every
SQLAlchemy :class:`~sqlalchemy.orm.Session` that refuse, with
:class:`~sealkeeper.errors.Conflict`:

* flushing a modified or deleted :class:`LogEntry`, :class:`LogNode`,
  :class:`LogCheckpoint` or :class:`SecurityEvent` (``before_flush``, and the
  mappers' ``before_update`` / ``before_delete`` as a second line);
* ORM-enabled ``update(...)`` / ``delete(...)`` statements on those classes
  (``do_orm_execute``);
* any SQLAlchemy ``UPDATE`` / ``DELETE`` statement object on their tables, on
  every engine (``before_execute``): this also covers the legacy bulk methods
  (``Session.bulk_update_mappings``) that bypass the unit of work.

Inserts are untouched. Raw SQL strings are not stopped here (the test suite
empties tables with them); the Merkle tree makes such changes detectable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Delete, Engine, Update, event
from sqlalchemy.orm import Mapper, ORMExecuteState, Session, UOWTransaction

from sealkeeper.audit.models import LogCheckpoint, LogEntry, LogNode, SecurityEvent
from sealkeeper.errors import Conflict

APPEND_ONLY: tuple[type[Any], ...] = (LogEntry, LogNode, LogCheckpoint, SecurityEvent)


def _refuse(what: str, obj_or_cls: object) -> None:
    name = obj_or_cls.__name__ if isinstance(obj_or_cls, type) else type(obj_or_cls).__name__
    raise Conflict(f"the usage log is append-only: cannot {what} a {name}")


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _ctx: UOWTransaction, _instances: object) -> None:
    for obj in session.deleted:
        if isinstance(obj, APPEND_ONLY):
            _refuse("delete", obj)
    for obj in session.dirty:
        if isinstance(obj, APPEND_ONLY) and session.is_modified(obj):
            _refuse("modify", obj)


def _mapper_update(_mapper: Mapper[Any], _conn: object, target: object) -> None:
    _refuse("modify", target)


def _mapper_delete(_mapper: Mapper[Any], _conn: object, target: object) -> None:
    _refuse("delete", target)


for _cls in APPEND_ONLY:
    event.listen(_cls, "before_update", _mapper_update)
    event.listen(_cls, "before_delete", _mapper_delete)


@event.listens_for(Session, "do_orm_execute")
def _orm_execute(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    for mapper in state.all_mappers:
        if issubclass(mapper.class_, APPEND_ONLY):
            _refuse("update" if state.is_update else "delete", mapper.class_)


_TABLES = frozenset(cls.__tablename__ for cls in APPEND_ONLY)


@event.listens_for(Engine, "before_execute")
def _core_execute(_conn: object, clauseelement: object, *_args: object) -> None:
    if isinstance(clauseelement, Update | Delete):
        name = getattr(clauseelement.table, "name", None)
        if name in _TABLES:
            raise Conflict(f"the usage log is append-only: cannot "
                           f"{'update' if isinstance(clauseelement, Update) else 'delete'} "
                           f"rows of {name}")
