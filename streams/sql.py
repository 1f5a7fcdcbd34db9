"""Plain INSERT statements for the hot paths where the ORM's preparation of each row costs more
than the database's work: a 10,000-stream listing, and the audit entries every job writes.
Values are converted as the ORM converts them for the column types these tables use."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models

from streams.uint64 import UInt64Field


@dataclass(frozen=True)
class Insert:
    sql: str
    columns: list[tuple[str, Callable[[Any], Any]]]  # (attname, conversion)

    def params(self, row: Mapping[str, Any]) -> list[Any]:
        """One row's parameters, from a mapping of attnames (a dict, or a model's vars())."""
        return [convert(row[attname]) for attname, convert in self.columns]


def insert(
    model: type[models.Model], names: Sequence[str], *, rows: int = 1,
    upsert_on: Sequence[str] = (), returning_pk: bool = False,
) -> Insert:
    """INSERT of `rows` rows of the fields `names`; with `upsert_on` (the fields of a unique
    constraint) a conflicting row is updated instead; with `returning_pk` the new ids come back
    in row order."""
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    columns = [field.column for field in fields]
    row = f"({', '.join(['%s'] * len(columns))})"
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) "
           f"VALUES {', '.join([row] * rows)}")
    if upsert_on:
        keys = {model._meta.get_field(name).column for name in upsert_on}
        sql += (f" ON CONFLICT ({', '.join(quote(column) for column in columns if column in keys)})"
                " DO UPDATE SET " + ", ".join(f"{quote(column)} = excluded.{quote(column)}"
                                              for column in columns if column not in keys))
    if returning_pk:
        sql += f" RETURNING {quote(model._meta.pk.column)}"
    return Insert(sql, [(field.attname, _conversion(field)) for field in fields])


# Columns whose values the database driver takes as they are.
_PLAIN = (models.CharField, models.TextField, models.BooleanField, models.ForeignKey)
_PLAIN_EXACT = {models.BigIntegerField, models.IntegerField, models.PositiveSmallIntegerField,
                models.PositiveBigIntegerField, models.PositiveIntegerField}


def _conversion(field: models.Field[Any, Any]) -> Callable[[Any], Any]:
    """How the ORM would convert a value for this column. A column type not listed is refused,
    not passed through: a subclass may change the value (an encrypted text field encrypts)."""
    ops = connection.ops
    if isinstance(field, models.JSONField):
        return lambda value: None if value is None else ops.adapt_json_value(value,
                                                                             field.encoder)
    if isinstance(field, models.DateTimeField):
        return ops.adapt_datetimefield_value
    if isinstance(field, models.GenericIPAddressField):
        return ops.adapt_ipaddressfield_value
    if isinstance(field, UInt64Field):
        return field.get_prep_value
    if type(field) in _PLAIN_EXACT or (isinstance(field, _PLAIN)
                                       and type(field).__module__.startswith("django.")):
        return lambda value: value
    raise TypeError(f"sql.insert cannot convert {type(field).__name__} ({field.name})")
