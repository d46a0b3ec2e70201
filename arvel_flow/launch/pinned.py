"""Settings a run keeps: stored with its plan when it starts, reused when it resumes.

A resume reads no pipeline file, so the file's ``queue:`` section (and the flags the run
was started with) would otherwise be lost: a run declared with ``concurrency: 4`` would
resume with the default 16. `pin` stores the settings in force when the run started
inside its plan; `resume_settings` puts them where the file's section stands in
`QueueSettings.resolve` (flags and ``ARVEL_FLOW_*`` still beat them) and names what
changed.

Pinned: ``driver``, ``broker`` and ``url`` (where the jobs run: in this process or in
workers, and which server), ``concurrency``, ``commit_interval``, ``owner_lease`` and
``allowed_modules``. Not pinned: ``store`` and ``prefix`` (they say where the run is: a
resume must be given them to find it at all) and the settings of one process rather than
of the run (``outage_grace``, heartbeats, a worker's ``queues``). A broker URL holding a
password is never stored: only its masked form is, and a resume must be given the URL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.queue.plan import Plan
from arvel_flow.secrets import scrub_text
from arvel_flow.settings import QueueSettings
from arvel_flow.store.urls import mask_url

PINNED = (
    "driver",
    "broker",
    "url",
    "concurrency",
    "commit_interval",
    "owner_lease",
    "allowed_modules",
)
"""The `QueueSettings` fields a run keeps across a resume."""

MASKED_URL = "url_masked"
"""The key under which a URL with a password is stored, masked, instead of ``url``."""


def pin(plan: Plan, settings: QueueSettings) -> Plan:
    """``plan`` carrying the `PINNED` values of ``settings``, secrets left out."""
    return dataclasses.replace(plan, settings=pinned_values(settings))


def pinned_values(settings: QueueSettings) -> dict[str, Any]:
    """The `PINNED` values of ``settings`` as JSON-ready data, no secret among them.

    Example:
        >>> pinned_values(QueueSettings(broker="redis", url="redis://u:pw@h/0"))["url_masked"]
        'redis://u:***@h/0'
    """
    values = {name: _jsonable(getattr(settings, name)) for name in PINNED}
    url = settings.url
    if url is not None and (mask_url(url) != url or scrub_text(url) != url):
        del values["url"]
        values[MASKED_URL] = mask_url(scrub_text(url))
    return values


def resume_settings(
    plan: Plan, chosen: Mapping[str, Any], run_id: str
) -> tuple[QueueSettings, list[str]]:
    """The settings to resume ``run_id`` with, and what differs from its pinned ones.

    Args:
        plan: The run's stored plan; without pinned settings (a run stored before
            they were) the settings resolve as for a run with no file.
        chosen: What the caller chose (flags; ``None`` is unset); beats the pinned values.
        run_id: The run, for messages.

    Returns:
        The settings, and one ``"concurrency 8 (was 4)"`` per pinned setting overridden.

    Raises:
        ConfigError: A setting is invalid, or the run's broker URL held a password
            (not stored) and none is given now.
    """
    pinned = dict(plan.settings or {})
    masked = pinned.pop(MASKED_URL, None)
    settings = QueueSettings.resolve(pinned, chosen)
    if masked is not None and settings.url is None and settings.broker != "memory":
        issue = ConfigIssue(
            f"run {run_id} was started with the broker URL {masked}, whose password is "
            "not stored: give it again with --url (or ARVEL_FLOW_URL)",
            path="url",
        )
        raise ConfigError([issue])
    changes = [
        f"{name} {_shown(getattr(settings, name))} (was {_shown(pinned[name])})"
        for name in PINNED
        if name in pinned and _jsonable(getattr(settings, name)) != pinned[name]
    ]
    return settings, changes


def describe_changes(changes: list[str]) -> str | None:
    """``"resuming with concurrency 8 (was 4)"``; None when nothing changed."""
    return f"resuming with {', '.join(changes)}" if changes else None


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _shown(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value) or "(none)"
    return "(none)" if value is None else mask_url(str(value))
