"""Secrets at rest: Fernet tokens under the keys from settings.ENCRYPTION_KEYS (newest first)."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.ENCRYPTION_KEYS])


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        # Never echo the token: say which configuration is wrong instead.
        raise ValueError("a stored secret cannot be decrypted with ENCRYPTION_KEYS") from None


class EncryptedTextField(models.TextField):
    """Plaintext in Python, a Fernet token in the database; the empty string means "not set"."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str:
        return decrypt(value) if value else ""

    def get_prep_value(self, value: Any) -> str:
        value = super().get_prep_value(value)
        return encrypt(value) if value else ""
