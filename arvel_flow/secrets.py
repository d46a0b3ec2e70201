"""Secrets: which values are secret, references that stand for them, and scrubbing.

A secret value is never written to a store or shown. Three things make that hold:

* **References.** The value of an environment variable that is secret (declared
  under ``secrets:`` in the file, named like ``*PASSWORD*``, ``*TOKEN*``, ... or
  holding a URL with a password) is not put in the plan: interpolation yields a
  `SecretRef`, a mapping ``{"$secret": TEMPLATE}`` such as
  ``{"$secret": "postgres://app:${DB_PASSWORD}@db/x"}``. Being a plain mapping, it is
  stored, sent and shown as the template; `resolve_secrets` turns it into the value
  only in the process that builds the job, from that process's environment.
* **Redacted markers.** A secret given in Python (a `SecretStr`, or a field named
  like a secret) is stored as ``{"$redacted": FIELD}``; such a job can run only from
  its live instance, and a job rebuilt from stored data that holds one is refused.
* **Scrubbing.** Every value resolved or known to be secret is registered with the
  process-wide `Scrubber`, which masks it (and its common encodings) and URL
  passwords in everything this process shows or records: output, events, logs,
  failed-job records. It is defence in depth, not the model: values never reach
  a store in the first place.

The scrubber is the one piece of module state in arvel-flow: it stands for what the
process has seen, as `logging`'s configuration does, and every output channel of the
process must reach the same one.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote

from arvel_flow.errors import SecretError
from arvel_flow.scalars import resolve_plain

SECRET_KEY = "$secret"
PLAIN_KEY = "$plain"
REDACTED_KEY = "$redacted"
MASK = "***"

MIN_SCRUBBED_LENGTH = 4
"""Shorter values are not scrubbed: masking every ``1`` or ``on`` hides more than it protects."""

SECRET_ENV_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "DSN", "AUTH")
"""An environment variable whose name contains one of these (any case) is secret."""

SECRET_FIELD_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "authorization",
        "credential",
        "credentials",
        "dsn",
    }
)
"""A field whose name ends with one of these words is secret (``api_token``, ``dsn``)."""

SECRET_FIELD_PAIRS = frozenset(
    {("api", "key"), ("private", "key"), ("secret", "key"), ("access", "key")}
)
"""... or with one of these pairs of words (``aws_secret_key``, ``apiKey``)."""

_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_TEMPLATE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:'\"]*:)(?!\$\{)([^\s@/?#'\"]+)@")


def is_secret_env_name(name: str) -> bool:
    """Whether an environment variable is secret by its name (``DB_PASSWORD``, ``API_KEY``)."""
    upper = name.upper()
    return any(word in upper for word in SECRET_ENV_WORDS)


@functools.lru_cache(maxsize=4096)
def is_secret_field_name(name: str) -> bool:
    """Whether a parameter is secret by its name: its last word (or two) says so.

    Words are snake_case or camelCase parts: ``api_token``, ``dbPassword`` and
    ``aws_secret_key`` are secret; ``max_tokens``, ``token_count`` and
    ``password_hint`` are not.
    """
    words = [word.lower() for word in _WORDS.findall(name)]
    if not words:
        return False
    return words[-1] in SECRET_FIELD_WORDS or tuple(words[-2:]) in SECRET_FIELD_PAIRS


def url_passwords(text: str) -> list[str]:
    """The passwords of the ``scheme://user:PASSWORD@host`` URLs in ``text``."""
    return [match.group(2) for match in _URL_PASSWORD.finditer(text)]


def is_secret_env(name: str, value: str | None, declared: Iterable[str] = ()) -> bool:
    """Whether a variable is secret: declared, named like one, or holding a URL password."""
    return (
        name in declared
        or is_secret_env_name(name)
        or (value is not None and bool(url_passwords(value)))
    )


# References ---------------------------------------------------------------------------


class SecretRef(dict[str, Any]):
    """A parameter value that stands for secrets: ``{"$secret": TEMPLATE}``.

    The template is text with ``${NAME}`` / ``${NAME:-default}`` for the secret parts
    and ``$$`` for a literal ``$``. With ``plain``, the resolved text is typed like
    an unquoted YAML scalar (``8`` is an int), as a whole unquoted reference is.
    Shown, it is its template: it never holds a value.
    """

    def __init__(self, template: str, *, plain: bool = False) -> None:
        super().__init__({SECRET_KEY: template, **({PLAIN_KEY: True} if plain else {})})

    @property
    def template(self) -> str:
        """The template, secret parts as ``${NAME}``."""
        template: str = self[SECRET_KEY]
        return template

    def __repr__(self) -> str:
        return f"SecretRef({self.template!r})"

    __str__ = __repr__


def secret_env(name: str) -> SecretRef:
    """A reference to the environment variable ``name``, for a job parameter in Python.

    The value is read where the job runs, from that process's environment, and is
    never stored: ``JobRef("myapp.jobs:Call", {"api_token": secret_env("API_TOKEN")})``.
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"not an environment variable name: {name!r}")
    return SecretRef(f"${{{name}}}")


def escape_template(text: str) -> str:
    """Literal text as a template part: ``$`` doubled."""
    return text.replace("$", "$$")


def is_secret_marker(value: Any) -> bool:
    """Whether ``value`` is a reference (a `SecretRef`, or one read back from JSON)."""
    return (
        isinstance(value, dict)
        and isinstance(value.get(SECRET_KEY), str)
        and set(value) <= {SECRET_KEY, PLAIN_KEY}
    )


def holds_reference(value: Any) -> bool:
    """Whether ``value`` is, or holds at any depth, a reference."""
    if is_secret_marker(value):
        return True
    if isinstance(value, Mapping):
        return any(holds_reference(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(holds_reference(item) for item in value)
    return False


def is_redacted_marker(value: Any) -> bool:
    """Whether ``value`` is ``{"$redacted": FIELD}``: a secret given in Python, not stored."""
    return isinstance(value, dict) and len(value) == 1 and REDACTED_KEY in value


def redacted(field: str) -> dict[str, str]:
    """The marker stored in place of a secret given in Python."""
    return {REDACTED_KEY: field}


def template_names(template: str) -> list[str]:
    """The environment variables a template refers to."""
    return [match.group(1) for match in _TEMPLATE.finditer(template) if match.group(1)]


def redacted_fields(value: Any, field: str = "") -> list[str]:
    """The parameters in ``value`` (nested too) that hold a redacted marker.

    A field named like a secret holding ``***`` counts too: that is how records
    written before markers existed masked them.
    """
    if is_redacted_marker(value):
        return [str(value[REDACTED_KEY])]
    if value == MASK and is_secret_field_name(field):
        return [field]
    if isinstance(value, Mapping):
        return [name for key, item in value.items() for name in redacted_fields(item, str(key))]
    if isinstance(value, list | tuple):
        return [name for item in value for name in redacted_fields(item, field)]
    return []


def resolve_secrets(
    params: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``params`` with every reference replaced by its value from ``env`` (``os.environ``).

    Each value read is registered with the scrubber.

    Raises:
        SecretError: A variable is not set (and has no default), or a parameter holds a
            redacted marker: a secret given in Python, which was never stored.
    """
    if not any(isinstance(value, dict | list) for value in params.values()):
        return dict(params)  # the common case: nothing to resolve
    source = os.environ if env is None else env
    return {key: _resolve(value, str(key), source) for key, value in params.items()}


def _resolve(value: Any, field: str, env: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        if is_secret_marker(value):
            return _resolve_template(value[SECRET_KEY], bool(value.get(PLAIN_KEY)), field, env)
        if is_redacted_marker(value):
            raise python_secret_error(str(value[REDACTED_KEY]))
        return {key: _resolve(item, field, env) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolve(item, field, env) for item in value]
    return value


def _resolve_template(template: str, plain: bool, field: str, env: Mapping[str, str]) -> Any:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name is None:
            return "$"
        value = env.get(name)
        if value is None or (value == "" and default is not None):
            if default is None:
                raise SecretError(
                    name,
                    f"environment variable {name!r} is not set in this process, and job "
                    f"parameter {field!r} refers to it: set it in the environment of every "
                    "process that runs this job (workers included)",
                )
            return default
        register_secret(value)
        return value

    text = _TEMPLATE.sub(substitute, template)
    return resolve_plain(text) if plain and text else text


def resolve_for_check(value: Any, env: Mapping[str, str] | None = None) -> tuple[Any, bool]:
    """``value`` resolved in memory, for validation only, and whether that was possible.

    Validation checks a referenced value's type with the value itself; one that cannot
    be resolved here (unset: the process running the job may have it) is not checked.
    """
    try:
        return _resolve(value, "", os.environ if env is None else env), True
    except SecretError:
        return value, False


def python_secret_error(field: str) -> SecretError:
    """Why a job holding a redacted marker cannot be built."""
    return SecretError(
        field,
        f"parameter {field!r} held a secret given in Python, which arvel-flow does not "
        "store; pass it as an environment reference instead "
        f"(arvel_flow.secret_env('NAME'), or ${{NAME}} in a pipeline file) "
        "so that the job can be run again",
    )


# Scrubbing ----------------------------------------------------------------------------


def encodings(value: str) -> set[str]:
    """``value`` as it may appear in text: raw, URL-quoted, escaped, base64."""
    raw = value.encode()
    forms = {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
        value.encode("unicode_escape").decode("ascii"),
    }
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        text = encode(raw).decode("ascii")
        forms |= {text, text.rstrip("=")}
    return {form for form in forms if len(form) >= MIN_SCRUBBED_LENGTH}


class Scrubber:
    """Masks known secret values, their encodings and URL passwords in text."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        """Mask ``value`` from now on.

        Too short a value is ignored, and so is a number or a word such as ``true``: a
        variable named like a secret (``AUTH_ENABLED=true``, ``MONKEY_COUNT=1000``) must
        not turn every ``true`` and ``1000`` of the output, JSON events included, into
        ``***``; such a value protects nothing.
        """
        if len(value) < MIN_SCRUBBED_LENGTH or value in self._values or _is_literal(value):
            return
        with self._lock:
            self._values.add(value)
            self._forms |= encodings(value)
            unquoted = unquote(value)
            if unquoted != value and len(unquoted) >= MIN_SCRUBBED_LENGTH:
                self._forms |= encodings(unquoted)
            self._pattern = None  # compiled again when next needed

    def scrub(self, text: str) -> str:
        """``text`` with every known secret and URL password shown as ``***``."""
        pattern = self._pattern or self._compile()
        if pattern is not None:
            text = pattern.sub(MASK, text)
        if "://" in text:
            text = _URL_PASSWORD.sub(rf"\1{MASK}@", text)
        return text

    def _compile(self) -> re.Pattern[str] | None:
        """One pattern of every form, longest first (a form may contain a shorter one)."""
        with self._lock:
            if self._pattern is None and self._forms:
                alternatives = sorted(self._forms, key=len, reverse=True)
                self._pattern = re.compile("|".join(map(re.escape, alternatives)))
            return self._pattern


_LITERALS = frozenset({"true", "false", "null", "none", "yes", "no", "on", "off"})


def _is_literal(value: str) -> bool:
    """A boolean-like word or a number, which no one keeps secret."""
    if value.strip().lower() in _LITERALS:
        return True
    try:
        float(value)
    except ValueError:
        return False
    return True


SCRUBBER = Scrubber()
"""The process's scrubber: what it resolved or found secret in its environment."""


def register_secret(value: str) -> None:
    """Scrub ``value`` (and its URL password, if it is a URL) from all this process shows."""
    SCRUBBER.add(value)
    for password in url_passwords(value):
        SCRUBBER.add(password)
        SCRUBBER.add(unquote(password))


def register_environment(env: Mapping[str, str], declared: Iterable[str] = ()) -> None:
    """Register the values of the secret variables of ``env`` (see `is_secret_env`)."""
    names = frozenset(declared)
    for name, value in env.items():
        if is_secret_env_name(name) or name in names:
            register_secret(value)
        else:
            for password in url_passwords(value):
                SCRUBBER.add(password)
                SCRUBBER.add(unquote(password))


def scrub_text(text: str) -> str:
    """``text`` with everything secret this process knows of masked."""
    return SCRUBBER.scrub(text)


class ScrubbingStream:
    """A text stream that scrubs what is written to it: one per output channel.

    Everything else (``isatty``, ``fileno``, ``encoding``, ``flush``) is the wrapped
    stream's, so that click and rich treat it as the stream itself.
    """

    def __init__(self, stream: Any) -> None:
        self.wrapped = stream

    def write(self, text: str) -> int:
        """Write ``text`` scrubbed; reports the length given, as callers expect."""
        self.wrapped.write(scrub_text(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        """Write each line scrubbed."""
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)
