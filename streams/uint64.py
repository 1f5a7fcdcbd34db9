"""The column type of JetStream's counts and sequences. Its own module, below the models: the plain
INSERTs (streams.sql) convert its values as the ORM does, and the models' managers use those."""

from __future__ import annotations

from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.functional import cached_property


class UInt64Field(models.BigIntegerField):
    """A JetStream count or sequence: an unsigned 64-bit number, which neither SQLite nor
    PostgreSQL has. Stored shifted down by 2**63 in a signed 64-bit column, which keeps the
    order, so sorting and range filters still work in SQL."""

    OFFSET = 1 << 63
    MAX = (1 << 64) - 1

    def get_prep_value(self, value: Any) -> int | None:
        value = super().get_prep_value(value)
        if value is None:
            return None
        if not 0 <= value <= self.MAX:
            raise ValueError(f"{value} is not an unsigned 64-bit number")
        return value - self.OFFSET

    def from_db_value(self, value: int | None, expression: Any, connection: Any) -> int | None:
        return None if value is None else value + self.OFFSET

    @cached_property
    def validators(self) -> list[Any]:
        return [MinValueValidator(0), MaxValueValidator(self.MAX)]
