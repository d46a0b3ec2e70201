"""Keep secrets out of output, events and the failed-jobs store."""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr

REDACTED = "***"
_SENSITIVE = re.compile(
    r"passw(or)?d|passphrase|token|secret|api[_-]?key|authorization|credential|private[_-]?key",
    re.IGNORECASE,
)


def is_sensitive_name(name: str) -> bool:
    """True for field names like password, token, secret, api_key."""
    return bool(_SENSITIVE.search(name))


def secret_fields(job: Any) -> set[str]:
    """Names of a job's fields that hold `SecretStr` / `SecretBytes` values."""
    if not isinstance(job, BaseModel):
        return set()
    return {
        name
        for name in type(job).model_fields
        if isinstance(getattr(job, name, None), SecretStr | SecretBytes)
    }


def declared_secret_fields(model: type[BaseModel]) -> set[str]:
    """Names of a model's fields declared as `SecretStr` / `SecretBytes` (optional or not).

    For a job that could not be built: its parameters arrive as plain text, and only
    the class can say which of them are secrets.
    """
    return {name for name, info in model.model_fields.items() if _holds_secret(info.annotation)}


def _holds_secret(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_holds_secret(arg) for arg in typing.get_args(annotation))


def redact(
    data: Mapping[str, Any], secrets: set[str] | frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A copy of ``data`` with sensitive values replaced by ``***``, nested dicts too."""
    return {key: _redact_value(key, value, secrets) for key, value in data.items()}


def secret_values(params: Mapping[str, Any], secrets: set[str] | frozenset[str]) -> frozenset[str]:
    """The plain values of a job's sensitive parameters, to scrub from error text.

    Values shorter than four characters are left out: masking every ``1`` or ``on`` in
    a message would hide more than it protects.
    """
    found: set[str] = set()
    for key, value in params.items():
        if key in secrets or is_sensitive_name(key):
            text = value.get_secret_value() if isinstance(value, SecretStr | SecretBytes) else value
            if isinstance(text, str | int | float | bytes) and len(str(text)) >= 4:
                found.add(text.decode() if isinstance(text, bytes) else str(text))
        elif isinstance(value, Mapping):
            found |= secret_values(value, frozenset())
    return frozenset(found)


def scrub(text: str, values: frozenset[str]) -> str:
    """``text`` with every secret value in ``values`` replaced by ``***``.

    An exception message may quote a secret (``login failed for hunter2``); its
    class, message and traceback pass through here before they are shown or stored.
    """
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    return text


def _redact_value(key: str, value: Any, secrets: set[str] | frozenset[str]) -> Any:
    if key in secrets or is_sensitive_name(key) or isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, Mapping):
        return redact(value)
    if isinstance(value, list | tuple):
        return [redact(v) if isinstance(v, Mapping) else v for v in value]
    return value
