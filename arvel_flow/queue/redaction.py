"""Keep secrets out of what is stored or sent: parameters, failed-job records, error text.

What is secret, references and the scrubber are `arvel_flow.secrets`; this module
applies them to jobs. `stored_params` is the one way parameters leave a process
(the stored plan, broker messages, failed-job records): references stay references,
and a secret given in Python becomes ``{"$redacted": FIELD}``, never its value.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic_core import to_jsonable_python

from arvel_flow.secrets import (
    MASK,
    SECRET_KEY,
    holds_reference,
    is_redacted_marker,
    is_secret_field_name,
    is_secret_marker,
    redacted,
    register_secret,
    scrub_text,
    url_passwords,
)


def stored_params(
    params: Mapping[str, Any],
    instance: Any = None,
    secrets: set[str] | frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Parameters as they may be stored or sent: no secret value, ever.

    References stay references. A `SecretStr`, a value of a field named like a secret
    or in ``secrets``, and a URL holding a password become ``{"$redacted": FIELD}``:
    a job given such a value in Python runs only from its live ``instance``, whose
    fields (nested models too) are read with their `SecretStr` wrappers intact.
    """
    if isinstance(instance, BaseModel):
        # A parameter holding a reference stays as given: the instance holds what the
        # reference resolved to.
        dumped = instance.model_dump(mode="python")
        params = {
            name: value if holds_reference(value) else dumped.get(name, value)
            for name, value in params.items()
        }
    safe = {
        key: _safe(str(key), value, key in secrets or is_secret_field_name(str(key)))
        for key, value in params.items()
    }
    jsonable: dict[str, Any] = to_jsonable_python(safe, fallback=str)
    return jsonable


def may_hold_secret(params: Mapping[str, Any]) -> bool:
    """A quick look: whether `stored_params` could change anything in ``params``.

    Flat items of plain numbers and URL-less text under ordinary names (the bulk of a
    100,000-item fan-out) are passed over without a copy.
    """
    return any(
        is_secret_field_name(str(key))
        or not isinstance(value, str | int | float | bool | None)
        or (isinstance(value, str) and "://" in value)
        for key, value in params.items()
    )


def _safe(field: str, value: Any, secret: bool) -> Any:
    if is_secret_marker(value) or is_redacted_marker(value):
        return value
    if isinstance(value, SecretStr | SecretBytes):
        return redacted(field)
    if isinstance(value, Mapping):
        return {
            key: _safe(f"{field}.{key}", item, secret or is_secret_field_name(str(key)))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_safe(field, item, secret) for item in value]
    if secret and not isinstance(value, bool) and value not in (None, ""):
        return redacted(field)
    if isinstance(value, str) and url_passwords(value):
        return redacted(field)
    return value


def shown_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Stored parameters for people: a reference as its template, a redacted one as ``***``."""
    return {key: _shown(value) for key, value in params.items()}


def _shown(value: Any) -> Any:
    if is_secret_marker(value):
        return value[SECRET_KEY]
    if is_redacted_marker(value):
        return MASK
    if isinstance(value, Mapping):
        return shown_params(value)
    if isinstance(value, list):
        return [_shown(item) for item in value]
    return value


def secret_fields(job: Any) -> set[str]:
    """Names of a job's fields that hold `SecretStr` / `SecretBytes` values."""
    if not isinstance(job, BaseModel):
        return set()
    return {
        name
        for name in type(job).model_fields
        if isinstance(getattr(job, name, None), SecretStr | SecretBytes)
    }


@functools.lru_cache(maxsize=256)
def declared_secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """Names of a model's fields declared as `SecretStr` / `SecretBytes` (optional or not).

    For a job that could not be built: its parameters arrive as plain text, and only
    the class can say which of them are secrets. Kept per model: strict validation asks
    once per step, and a file has thousands of steps over a few classes.
    """
    return frozenset(
        name for name, info in model.model_fields.items() if _holds_secret(info.annotation)
    )


def _holds_secret(annotation: Any) -> bool:
    if annotation in (SecretStr, SecretBytes):
        return True
    return any(_holds_secret(arg) for arg in typing.get_args(annotation))


def secret_values(params: Mapping[str, Any], secrets: set[str] | frozenset[str]) -> frozenset[str]:
    """The plain values of a job's sensitive parameters, to scrub from error text.

    Values shorter than four characters are left out: masking every ``1`` or ``on`` in
    a message would hide more than it protects.
    """
    found: set[str] = set()
    for key, value in params.items():
        if key in secrets or is_secret_field_name(key):
            text = value.get_secret_value() if isinstance(value, SecretStr | SecretBytes) else value
            if isinstance(text, str | int | float | bytes) and len(str(text)) >= 4:
                found.add(text.decode() if isinstance(text, bytes) else str(text))
        elif isinstance(value, str):
            found.update(url_passwords(value))
        elif isinstance(value, Mapping):
            found |= secret_values(value, frozenset())
    return frozenset(found)


def wrapped_secret_values(job: Any) -> frozenset[str]:
    """The values of every `SecretStr` / `SecretBytes` a built job holds, at any depth."""
    if not isinstance(job, BaseModel):
        return frozenset()
    found: set[str] = set()
    pending: list[Any] = [job.model_dump(mode="python")]
    while pending:
        value = pending.pop()
        if isinstance(value, SecretStr | SecretBytes):
            secret = value.get_secret_value()
            text = secret.decode(errors="replace") if isinstance(secret, bytes) else secret
            if len(text) >= 4:
                found.add(text)
        elif isinstance(value, Mapping):
            pending.extend(value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            pending.extend(value)
    return frozenset(found)


def scrub(text: str, values: frozenset[str]) -> str:
    """``text`` with every secret this process knows, and those in ``values``, masked.

    An exception message may quote a secret (``login failed for hunter2``), encoded
    too; its class, message and traceback pass through here before they are shown or
    stored. ``values`` (secrets given in Python) join the process's scrubber.
    """
    for value in values:
        register_secret(value)
    return scrub_text(text)
