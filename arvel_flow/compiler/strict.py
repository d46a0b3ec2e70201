"""Strict mode: import every dotted path and check what the file says about it.

* each job class or function is importable and runnable (a `Job`, a Pydantic model
  or plain class with ``async def handle``, or a function), and its parameters fit its
  own model (a plain class's: its constructor's);
* each middleware named by ``use`` is a `JobMiddleware` whose constructor takes the
  ``with`` arguments given;
* each setting a job class declares (its own, ``ClassVar`` or an Arvel / Laravel name
  such as ``tries``) has a value arvel-flow can honour (`setting_problems`);
* each name in ``retry_on`` / ``dont_retry_on`` is an exception class;
* each ``{field}`` in a lock, rate-limit or unique key is a field of every job that
  uses it;
* each path in ``observers`` is a function, or a class with ``on_event`` or
  ``__call__`` (`arvel_flow.queue.observers`).

With ``queue.allowed_modules`` in the file, every path goes through the allowlist's
rule (`arvel_flow.queue.allowlist`) as in a worker: nothing outside those prefixes is
imported, and a path the rule refuses is reported where it is written. Nothing found
is called or instantiated: classes are only imported and inspected.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from arvel_flow.compiler.params import Params, check_params
from arvel_flow.compiler.signatures import check_call
from arvel_flow.errors import ImportTargetError
from arvel_flow.job_settings import declares_retries, setting_problems
from arvel_flow.pipeline.names import parse_prefixes
from arvel_flow.pipeline.problems import Path, Problem, did_you_mean, is_dotted_path
from arvel_flow.pipeline.references import is_well_formed, placeholder_names
from arvel_flow.pipeline.walk import (
    BUILTIN_FORMS,
    PipelineWalk,
    StepAt,
    iter_exception_names,
    mapping,
    middleware_form,
    walk_pipeline,
)
from arvel_flow.queue.job import JOB_SETTING_FIELDS, JobSettings
from arvel_flow.queue.redaction import declared_secret_fields
from arvel_flow.queue.targets import JobTarget, import_object, resolve_target
from arvel_flow.secrets import is_secret_field_name


def check_strict(
    data: dict[str, Any],
    walk: PipelineWalk | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> list[Problem]:
    """Every problem found by importing what the file names; see the module docstring.

    ``walk`` is `walk_pipeline` of ``data``, when the caller has it already. ``env``
    (default: ``os.environ``) resolves secret references in memory, to check the types
    of their values.
    """
    walk = walk or walk_pipeline(data)
    allowed = _allowed_modules(data)
    targets = _Targets(allowed)
    problems: list[Problem] = []
    for name, template in mapping(data.get("jobs")).items():
        target_path = mapping(template).get("class")
        if (
            isinstance(target_path, str)
            and is_dotted_path(target_path)
            and is_well_formed(target_path)
        ):
            problems += targets.problems(target_path, ("jobs", name, "class"))
    for at in walk.job_steps:
        problems += _check_job_step(data, at, targets, env)
    problems += _check_middleware(walk, allowed, env)
    problems += _check_exceptions(walk, allowed)
    problems += _check_observers(data, allowed)
    return _unique(problems)


def _check_observers(data: dict[str, Any], allowed: tuple[str, ...] | None) -> list[Problem]:
    observers = data.get("observers")
    if not isinstance(observers, list) or not observers:
        return []
    # Imported only for a file with observers: it loads asyncio, logging and threading.
    from arvel_flow.queue.observers import import_observer

    problems: list[Problem] = []
    for index, path in enumerate(observers):
        if not (isinstance(path, str) and is_dotted_path(path) and is_well_formed(path)):
            continue
        try:
            import_observer(path, allowed=allowed)
        except ImportTargetError as error:
            problems.append(Problem(("observers", index), _unusable(path, error)))
    return problems


def _allowed_modules(data: dict[str, Any]) -> tuple[str, ...] | None:
    """The file's ``queue.allowed_modules``, normalised; None when absent or malformed.

    A malformed list is reported by the schema; the file is then checked as without one.
    """
    prefixes = mapping(data.get("queue")).get("allowed_modules")
    if not isinstance(prefixes, list) or not all(isinstance(p, str) for p in prefixes):
        return None
    try:
        return parse_prefixes(prefixes)
    except ValueError:
        return None


class _Targets:
    """Resolved job targets by path; a failed import is reported where it is written."""

    def __init__(self, allowed: tuple[str, ...] | None) -> None:
        self.allowed = allowed
        self.found: dict[str, JobTarget | str] = {}
        self._setting_problems: dict[str, list[str]] = {}
        self._default_retries: dict[str, str | None] = {}
        self.key_problems: dict[tuple[str, Path, str], list[Problem]] = {}
        """`_key_problems` by job path, key path and key template."""
        self.shared_keys: dict[str | None, tuple[list[_Key], _Key | None]] = {}
        """`_level_keys` of the defaults and a template, by template name."""

    def get(self, path: str, where: Path) -> JobTarget | Problem:
        """The target, or a problem at ``where`` if it cannot be used."""
        if path not in self.found:
            try:
                self.found[path] = resolve_target(path, allowed=self.allowed)
            except ImportTargetError as error:
                self.found[path] = _unusable(path, error)
        found = self.found[path]
        return Problem(where, found) if isinstance(found, str) else found

    def problems(self, path: str, where: Path) -> list[Problem]:
        """The problem with the target, if any, as a list."""
        found = self.get(path, where)
        return [found] if isinstance(found, Problem) else []

    def setting_problems(self, target: JobTarget) -> list[str]:
        """`setting_problems` of the target's class, read once per path (not per step)."""
        if target.path not in self._setting_problems:
            problems = [] if target.kind == "function" else setting_problems(target.obj)
            self._setting_problems[target.path] = problems
        return self._setting_problems[target.path]

    def default_retries(self, target: JobTarget) -> str | None:
        """`describe_default_retries` of a class that chooses no retries, once per path."""
        if target.path not in self._default_retries:
            # Imported on first use: a file that chooses its retries never needs it.
            from arvel_flow.explain import describe_default_retries

            chooses = target.kind == "function" or declares_retries(target.obj)
            message = None if chooses else describe_default_retries(JobSettings.of(target.obj))
            self._default_retries[target.path] = message
        return self._default_retries[target.path]


def _check_job_step(
    data: dict[str, Any], at: StepAt, targets: _Targets, env: Mapping[str, str] | None
) -> list[Problem]:
    reference = at.step.get("job")
    if not isinstance(reference, str) or not reference:
        return []
    template_name = None if is_dotted_path(reference) else reference
    template = mapping(mapping(data.get("jobs")).get(template_name)) if template_name else {}
    target_path = reference if template_name is None else template.get("class")
    if (
        not isinstance(target_path, str)
        or not is_dotted_path(target_path)
        or not is_well_formed(target_path)
    ):
        return []  # an undefined template or a malformed path: reported elsewhere
    where = (*at.path, "job") if template_name is None else ("jobs", template_name, "class")
    target = targets.get(target_path, where)
    if isinstance(target, Problem):
        return [target] if template_name is None else []  # a template's is reported once
    params = _params(at, template_name, template)
    problems = [Problem(where, f"{target.path}: {p}") for p in targets.setting_problems(target)]
    problems += check_params(target, params, at.step, env=env)
    problems += _default_retries(data, at, template, target, targets)
    return problems + list(_check_keys(data, at, template_name, target, targets))


def _default_retries(
    data: dict[str, Any],
    at: StepAt,
    template: dict[str, Any],
    target: JobTarget,
    targets: _Targets,
) -> list[Problem]:
    """A warning for a step whose retries nobody chose, if they wait long (see
    `describe_default_retries`): no ``retry:`` on the step, its template or the
    ``defaults``, and a job class that declares none of its own."""
    chosen_in_file = any(
        "retry" in where for where in (at.step, template, mapping(data.get("defaults")))
    )
    if chosen_in_file:
        return []
    message = targets.default_retries(target)
    if message is None:
        return []
    step = at.step.get("id")
    named = f"step {step!r}: " if isinstance(step, str) else ""
    return [Problem((*at.path, "job"), named + message, severity="warning")]


def _params(at: StepAt, template_name: str | None, template: dict[str, Any]) -> Params:
    values: dict[str, Any] = {}
    origins: dict[str, Path] = {}
    sources = [(("jobs", template_name, "with"), template.get("with"))] if template_name else []
    for path, given in [*sources, ((*at.path, "with"), at.step.get("with"))]:
        for name, value in mapping(given).items():
            values[name] = value
            origins[name] = (*path, name)
    return Params(values, origins, at.path)


def _check_keys(
    data: dict[str, Any],
    at: StepAt,
    template_name: str | None,
    target: JobTarget,
    targets: _Targets,
) -> Iterator[Problem]:
    """Placeholders in the keys this step's middleware and uniqueness use."""
    for path, template in _keys_used(data, at, template_name, targets):
        # The keys of the defaults and of stacks are the same for thousands of steps.
        found = targets.key_problems.get((target.path, path, template))
        if found is None:
            found = list(_key_problems(path, template, target))
            targets.key_problems[(target.path, path, template)] = found
        yield from found


@functools.lru_cache(maxsize=1024)
def _key_fields(target: JobTarget) -> tuple[frozenset[str], frozenset[str]]:
    """The fields a key may read, and the secret ones among them, of a job."""
    settings = frozenset(JOB_SETTING_FIELDS) if target.kind != "function" else frozenset()
    fields = frozenset(target.parameter_names()) | settings
    return fields, declared_secret_fields(target.params_model)


def _key_problems(path: Path, template: str, target: JobTarget) -> Iterator[Problem]:
    fields, secret = _key_fields(target)
    try:
        names = placeholder_names(template)
    except ValueError:
        return  # malformed: reported by the reference checks
    for name in names:
        if name in secret or is_secret_field_name(name):
            yield Problem(
                path,
                f"key {template!r} reads '{{{name}}}', a secret: keys are stored (locks, "
                "rate limits) and shown, so they may not hold secrets",
            )
        elif name not in fields:
            hint = did_you_mean(name, fields)
            yield Problem(
                path,
                f"key {template!r} reads '{{{name}}}', which {target.path} does not have{hint}",
            )


_Key = tuple[Path, str]
"""A key template (a lock's, a rate limit's, a unique id) and where it is written."""


def _keys_used(
    data: dict[str, Any], at: StepAt, template_name: str | None, targets: _Targets
) -> Iterator[_Key]:
    """The keys a step uses: those of the defaults and its template (the same for every
    step of that template, so found once), then its own; the unique id that applies last."""
    shared = targets.shared_keys.get(template_name)
    if shared is None:
        levels: list[tuple[Path, dict[str, Any]]] = [(("defaults",), mapping(data.get("defaults")))]
        if template_name:
            template = mapping(mapping(data.get("jobs")).get(template_name))
            levels.append((("jobs", template_name), template))
        shared = targets.shared_keys[template_name] = _level_keys(data, levels)
    keys, unique = shared
    yield from keys
    own, own_unique = _level_keys(data, [(at.path, at.step)])
    yield from own
    unique = own_unique or unique
    if unique is not None:
        yield unique


def _level_keys(
    data: dict[str, Any], levels: list[tuple[Path, dict[str, Any]]]
) -> tuple[list[_Key], _Key | None]:
    """The middleware keys of these levels of settings, and the unique id the last sets."""
    stacks = mapping(data.get("middleware_stacks"))
    keys: list[_Key] = []
    unique: _Key | None = None
    for path, settings in levels:
        if isinstance(settings.get("unique_id"), str):
            unique = ((*path, "unique_id"), settings["unique_id"])
        entries = settings.get("middleware")
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            if isinstance(entry, str):
                stack = stacks.get(entry)
                for position, item in enumerate(stack if isinstance(stack, list) else []):
                    keys += _builtin_key(("middleware_stacks", entry, position), item)
            else:
                keys += _builtin_key((*path, "middleware", index), entry)
    return keys, unique


def _builtin_key(path: Path, entry: Any) -> Iterator[tuple[Path, str]]:
    for form in BUILTIN_FORMS:
        key = mapping(mapping(entry).get(form)).get("key")
        if isinstance(key, str):
            yield (*path, form, "key"), key


def _check_middleware(
    walk: PipelineWalk, allowed: tuple[str, ...] | None, env: Mapping[str, str] | None
) -> list[Problem]:
    problems: list[Problem] = []
    for path, entry in walk.inline_middleware:
        form = middleware_form(entry)
        if form is None or "use" not in entry:
            continue  # builtin forms are typed by the schema
        # Imported here, for a `use` entry only: the middleware module brings asyncio
        # (about 25 ms), which validate needs for nothing else.
        from arvel_flow.queue.middleware import BUILTIN_MIDDLEWARE, JobMiddleware

        use, kwargs, kwargs_path = form
        if use not in BUILTIN_MIDDLEWARE and not (is_dotted_path(use) and is_well_formed(use)):
            continue  # malformed: reported by the reference checks
        cls = BUILTIN_MIDDLEWARE.get(use)
        if cls is None:
            try:
                cls = import_object(use, allowed=allowed, role="middleware")
            except ImportTargetError as error:
                problems.append(Problem((*path, "use"), _unusable(use, error)))
                continue
            if not (inspect.isclass(cls) and issubclass(cls, JobMiddleware)):
                problems.append(Problem((*path, "use"), f"{use!r} is not a JobMiddleware subclass"))
                continue
        problems += check_call(cls, kwargs, (*path, *kwargs_path), f"{use}()", env=env)
    return problems


def _check_exceptions(walk: PipelineWalk, allowed: tuple[str, ...] | None) -> list[Problem]:
    problems: list[Problem] = []
    for path, name in iter_exception_names(walk.retry_policies):
        if is_well_formed(name):
            problem = _exception_problem(name, path, allowed)
            problems += [problem] if problem else []
    return problems


@functools.lru_cache(maxsize=1024)
def _exception_message(name: str, allowed: tuple[str, ...] | None) -> str | None:
    if not is_dotted_path(name) and hasattr(builtins, name) and name not in _builtin_exceptions():
        return f"{name!r} is not an exception class"
    if not is_dotted_path(name) and name not in _builtin_exceptions():
        hint = did_you_mean(name, _builtin_exceptions()) or (
            "; name other exceptions by dotted path, such as 'pkg.module:MyError'"
        )
        return f"{name!r} is not a builtin exception{hint}"
    try:
        found = import_object(name, allowed=allowed, role="exception")
    except ImportTargetError as error:
        return _unusable(name, error)
    if not (inspect.isclass(found) and issubclass(found, BaseException)):
        return f"{name!r} is not an exception class"
    return None


def _exception_problem(name: str, path: Path, allowed: tuple[str, ...] | None) -> Problem | None:
    message = _exception_message(name, allowed)
    return None if message is None else Problem(path, message)


@functools.cache
def _builtin_exceptions() -> frozenset[str]:
    return frozenset(
        name
        for name, value in vars(builtins).items()
        if inspect.isclass(value) and issubclass(value, BaseException)
    )


def _unusable(path: str, error: ImportTargetError) -> str:
    hint = _attribute_hint(path) if "has no attribute" in error.reason else ""
    return f"cannot use {path!r}: {error.reason}{hint}"


def _attribute_hint(path: str) -> str:
    """A "did you mean" for the last name of a path whose module imported fine."""
    module_name, _, attribute = path.partition(":") if ":" in path else path.rpartition(".")
    attribute = attribute.split(".")[0]
    module = sys.modules.get(module_name)
    if module is None or not attribute:
        return ""
    return did_you_mean(attribute, [name for name in dir(module) if not name.startswith("_")])


def _unique(problems: list[Problem]) -> list[Problem]:
    return list({(problem.path, problem.message): problem for problem in problems}.values())
