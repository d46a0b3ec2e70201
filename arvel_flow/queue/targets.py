"""Dotted paths to runnable things: `Job` classes, foreign job classes, functions.

A foreign job class is a Pydantic model with ``async def handle`` or a plain class
with one (as Arvel's ``arvel.queue.Job``); its settings are read by `JobSettings.of`.

A `JobRef` is what travels in plans and messages: the target's path, its parameters
and its effective settings. `resolve_target` turns the path back into something that
can run; with allowed module prefixes, only what the allowlist's rule allows.
Parameters travel with secret references as references and secrets given in Python
redacted (`to_dict`); `JobRef.build` resolves the references, in the process that
runs the job.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import itertools
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, SecretBytes, SecretStr
from pydantic_core import to_jsonable_python

from arvel_flow.errors import ImportTargetError, SecretError
from arvel_flow.job_settings import SETTINGS
from arvel_flow.queue.allowlist import Role, import_allowed
from arvel_flow.queue.imports import find_module, import_module, missing_module_reason
from arvel_flow.queue.job import JOB_SETTING_FIELDS, JobSettings, is_job_class
from arvel_flow.queue.redaction import may_hold_secret, stored_params
from arvel_flow.secrets import redacted_fields, resolve_secrets

TargetKind = Literal["job", "model", "plain", "function"]


def import_object(path: str, *, allowed: Sequence[str] | None = None, role: Role = "job") -> Any:
    """Import ``pkg.module:Name`` or ``pkg.module.Name`` (a bare name means a builtin).

    With ``allowed``, the allowlist's rule decides (`arvel_flow.queue.allowlist`): the
    path must name, directly, a class or function defined under those prefixes, and
    nothing outside them is imported.
    """
    if allowed is not None:
        return import_allowed(path, allowed, role)
    if not path or any(not part.isidentifier() for part in path.replace(":", ".").split(".")):
        raise ImportTargetError(path, "not a dotted path such as 'pkg.module:Name'")
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
        return _getattr_path(import_module(path, module_name), attr_path, path)
    if "." not in path:
        if hasattr(builtins, path):
            return getattr(builtins, path)
        raise ImportTargetError(path, "no such builtin; use a dotted path 'pkg.module.Name'")
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        module = find_module(path, module_name)
        if module is not None:
            return _getattr_path(module, ".".join(parts[split:]), path)
    raise ImportTargetError(path, missing_module_reason(parts[0]))


def _getattr_path(module: Any, attr_path: str, path: str) -> Any:
    obj = module
    for name in attr_path.split("."):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise ImportTargetError(path, f"{module.__name__} has no attribute {name!r}") from None
    return obj


def object_path(obj: Any) -> str:
    """The ``module:QualName`` path under which ``obj`` can be imported again."""
    return f"{obj.__module__}:{obj.__qualname__}"


@dataclass(frozen=True, slots=True)
class JobTarget:
    """A resolved job: what it is, and how to build a runnable instance of it."""

    path: str
    obj: Any
    kind: TargetKind

    @property
    def params_model(self) -> type[BaseModel]:
        """The Pydantic model that the job's parameters must satisfy."""
        if self.kind in ("function", "plain"):
            return _function_model(self.obj)
        model: type[BaseModel] = self.obj
        return model

    def parameter_names(self) -> set[str]:
        """Names the job accepts as parameters (field names and aliases)."""
        return set(_parameter_names(self.params_model))

    def build(self, params: Mapping[str, Any], settings: JobSettings | None = None) -> Any:
        """A fresh instance with ``handle()``, from JSON-ready parameters."""
        if self.kind == "function":
            return FunctionCall(self.path, self.obj, dict(params))
        if self.kind == "plain":
            # Validated against the constructor's signature, as a function's are.
            checked = _function_model(self.obj).model_validate(params)
            return self.obj(**{name: getattr(checked, name) for name in params})
        job = self.obj.model_validate(params)
        if self.kind == "job" and settings is not None:
            # Settings are validated already: set those that differ from the class's
            # defaults, which keeps building a job as cheap as validating its params.
            for name, value in _settings_overrides(self.obj, _Identity(settings)):
                if name not in params:
                    object.__setattr__(job, name, value)
        return job


class _Identity:
    """Hashes an object by identity, so unhashable settings can key a cache."""

    __slots__ = ("value",)

    def __init__(self, value: JobSettings) -> None:
        self.value = value

    def __hash__(self) -> int:
        return id(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value


@functools.lru_cache(maxsize=1024)
def _settings_overrides(cls: type[BaseModel], settings: _Identity) -> tuple[tuple[str, Any], ...]:
    """The settings that differ from ``cls``'s field defaults, as field values."""
    defaults = _class_default_settings(cls)
    return tuple(
        (name, SETTINGS[name].to_job(getattr(settings.value, name)))
        for name in JOB_SETTING_FIELDS
        if getattr(settings.value, name) != getattr(defaults, name)
    )


class FunctionCall:
    """Runs a plain function (sync in a worker thread, or async) as a job."""

    def __init__(self, path: str, function: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        self.path = path
        self.function = function
        self.kwargs = kwargs

    async def handle(self) -> Any:
        """Call the function with the step's ``with:`` parameters."""
        if inspect.iscoroutinefunction(self.function):
            return await self.function(**self.kwargs)
        # Imported here, not at the top: `validate` resolves targets without an event loop.
        import asyncio

        return await asyncio.to_thread(self.function, **self.kwargs)

    def model_dump(self, **_: Any) -> dict[str, Any]:
        """The parameters, so that failure records and keys read them as for models."""
        return dict(self.kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["kwargs"][name]
        except KeyError:
            raise AttributeError(name) from None


@functools.lru_cache(maxsize=1024)
def _parameter_names(model: type[BaseModel]) -> frozenset[str]:
    """Field names and aliases of a model: read once per class, not once per step."""
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        if info.alias:
            names.add(info.alias)
    return frozenset(names)


@functools.lru_cache(maxsize=1024)
def _function_model(function: Callable[..., Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, param in inspect.signature(function).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = Any if param.annotation is param.empty else param.annotation
        default = ... if param.default is param.empty else param.default
        fields[name] = (annotation, default)
    with warnings.catch_warnings():
        # A parameter may be named like a BaseModel attribute (``schema``); Pydantic
        # warns that it shadows it, which is harmless for a parameters-only model.
        warnings.simplefilter("ignore")
        model: type[BaseModel] = pydantic.create_model(
            f"{function.__qualname__}Params",
            __config__=ConfigDict(arbitrary_types_allowed=True),
            **fields,
        )
    return model


@functools.lru_cache(maxsize=4096)
def _resolve_cached(path: str, allowed: tuple[str, ...] | None) -> JobTarget:
    obj = import_object(path, allowed=allowed)
    return JobTarget(path, obj, classify_target(path, obj))


def resolve_target(path: str, *, allowed: Sequence[str] | None = None) -> JobTarget:
    """Import and classify a job path; with ``allowed``, under the allowlist's rule."""
    return _resolve_cached(path, None if allowed is None else tuple(allowed))


def classify_target(path: str, obj: Any) -> TargetKind:
    """Say whether ``obj`` is a `Job`, a duck-typed Pydantic job or a function."""
    if is_job_class(obj):
        if not inspect.iscoroutinefunction(getattr(obj, "handle", None)):
            raise ImportTargetError(path, "a Job's handle() must be 'async def handle(self)'")
        return "job"
    if inspect.isclass(obj):
        if inspect.iscoroutinefunction(getattr(obj, "handle", None)):
            return "model" if issubclass(obj, BaseModel) else "plain"
        raise ImportTargetError(
            path,
            "a class must be a Job, or a Pydantic model or plain class with "
            "'async def handle(self)'",
        )
    if inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        return "function"
    raise ImportTargetError(path, f"not a job class or function but {type(obj).__name__}")


def dump_params(job: Any) -> dict[str, Any]:
    """A job instance's parameters as JSON-ready values, secrets included.

    They stay in this process (fan-out members are built from them); what leaves it,
    to a store or a broker, goes through `stored_params`, which redacts the secrets.
    """
    if isinstance(job, FunctionCall):
        return dict(job.kwargs)
    if not isinstance(job, BaseModel):
        return _plain_params(job)
    job_class: object = type(job)
    exclude = set(JOB_SETTING_FIELDS) if is_job_class(job_class) else None
    if not _holds_secrets(job_class):
        params: dict[str, Any] = job.model_dump(mode="json", exclude=exclude)
        return params
    raw = job.model_dump(mode="python", exclude=exclude)
    return {k: to_jsonable_python(_reveal(v)) for k, v in raw.items()}


@functools.lru_cache(maxsize=1024)
def _holds_secrets(cls: Any) -> bool:
    """Whether any field, at any depth, may hold a `SecretStr` / `SecretBytes`."""
    for info in cls.model_fields.values():
        annotation = info.annotation
        if "Secret" in repr(annotation):
            return True
        nested = inspect.isclass(annotation) and issubclass(annotation, BaseModel)
        if nested and annotation is not cls and _holds_secrets(annotation):
            return True
    return False


def _plain_params(job: Any) -> dict[str, Any]:
    """A plain job's constructor arguments, read back from its attributes of those names.

    A `SecretStr` stays wrapped, so that `stored_params` redacts it: a plain class has
    no model to say which of its values were secrets once revealed.
    """
    names = inspect.signature(type(job)).parameters
    params = {name: getattr(job, name) for name in names if hasattr(job, name)}
    return {
        k: v if isinstance(v, SecretStr | SecretBytes) else to_jsonable_python(v)
        for k, v in params.items()
    }


def failure_hook(job: Any) -> Callable[[BaseException], Any] | None:
    """The method a job has for its permanent failure: ``on_failure``, or Arvel's and
    Laravel's ``failed``; sync or async. None when it has neither."""
    for name in ("on_failure", "failed"):
        hook = getattr(job, name, None)
        if inspect.ismethod(hook):
            return hook
    return None


def _reveal(value: Any) -> Any:
    """``value`` with secrets replaced by their plain values (JSON would mask them)."""
    if isinstance(value, SecretStr | SecretBytes):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_reveal(v) for v in value]
    return value


@functools.lru_cache(maxsize=1024)
def _instance_class_path(cls: Any) -> str:
    """The path of a job class, checked once to be runnable."""
    path = object_path(cls)
    classify_target(path, cls)
    return path


@functools.lru_cache(maxsize=1024)
def _class_default_settings(cls: Any) -> JobSettings:
    """The settings of a job class's instances that override none (shared, immutable)."""
    return JobSettings.of(cls)


@dataclass(frozen=True, slots=True)
class JobRef:
    """What to run: a target path, its parameters and its effective settings.

    ``instance`` keeps the live object when a job was handed over from Python, so an
    in-process driver runs that very object; it never travels.
    """

    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    settings: JobSettings = field(default_factory=JobSettings)
    instance: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, job: Any, **overrides: Any) -> JobRef:
        """A ref for a job instance, a job class (no parameters), a function or a path.

        A dotted path starts from the class's own settings, as a class does; a bare
        ``JobRef(path)`` takes `JobSettings` as given (the `Job` defaults).
        """
        if isinstance(job, JobRef):
            return job.with_settings(**overrides) if overrides else job
        if isinstance(job, str):
            target = resolve_target(job)
            base = JobSettings.of(target.obj) if target.kind != "function" else JobSettings()
            return cls(job, {}, base.replace(**overrides) if overrides else base)
        if inspect.isclass(job) and hasattr(job, "handle"):
            job = job()
        if inspect.isfunction(job) or inspect.iscoroutinefunction(job):
            classify_target(object_path(job), job)
            return cls(object_path(job), {}, JobSettings.from_values(overrides))
        job_class: object = type(job)
        path = _instance_class_path(job_class)
        if overrides or (
            is_job_class(job_class) and not job.model_fields_set.isdisjoint(JOB_SETTING_FIELDS)
        ):
            settings = JobSettings.of(job, **overrides)
        else:
            settings = _class_default_settings(job_class)
        return cls(path, dump_params(job), settings, instance=job)

    def with_settings(self, **changes: Any) -> JobRef:
        """A copy with some settings changed."""
        return JobRef(self.target, self.params, self.settings.replace(**changes), self.instance)

    def with_params(self, params: Mapping[str, Any]) -> JobRef:
        """A copy with other parameters (a fan-out item)."""
        return JobRef(self.target, {**self.params, **params}, self.settings)

    def build(self, *, allowed: Sequence[str] | None = None) -> Any:
        """The instance to run: the live one if present, else a fresh one.

        A fresh one gets its secret references resolved from this process's
        environment, here and nowhere else.

        Raises:
            SecretError: A referenced variable is not set here, or a parameter held a
                secret given in Python (stored redacted: the job cannot be rebuilt).
        """
        if self.instance is not None:
            return self.instance
        target = resolve_target(self.target, allowed=allowed)
        return target.build(resolve_secrets(self.params), self.settings)

    def build_unresolved(self, *, allowed: Sequence[str] | None = None) -> Any:
        """An instance with its parameters as they are: references unresolved, unvalidated.

        Enough to compute a unique id (which may not read a secret) in a process that
        lacks the job's secrets, such as a dispatcher whose workers have them; never run.
        """
        if self.instance is not None:
            return self.instance
        target = resolve_target(self.target, allowed=allowed)
        if target.kind == "function":
            return FunctionCall(self.target, target.obj, dict(self.params))
        if target.kind == "plain":
            job = target.obj.__new__(target.obj)
            vars(job).update(self.params)
            return job
        return target.obj.model_construct(**self.params)

    def redacted_fields(self) -> list[str]:
        """Parameters that held a secret given in Python and were stored without it.

        A ref read back from a store or a message with any cannot be built; a live
        one (``instance``) still runs.
        """
        return [] if self.instance is not None else redacted_fields(self.params)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for plans and messages: never a secret value (see `stored_params`)."""
        return {
            "target": self.target,
            "params": stored_params(self.params, self.instance),
            "settings": self.settings.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobRef:
        """Read back what `to_dict` wrote."""
        return cls(data["target"], dict(data["params"]), JobSettings.from_values(data["settings"]))


def check_sendable(refs: Iterable[JobRef], items: Iterable[Mapping[str, Any]] = ()) -> None:
    """Refuse jobs given secrets in Python before they are sent to a broker or stored.

    Such a secret is sent as a redacted marker, which no worker can turn back into the
    value: refusing at dispatch says so at once, naming the parameter, instead of a
    failure later in a worker. ``items`` are fan-out items added to the parameters.

    Raises:
        SecretError: A parameter holds a `SecretStr`, a value of a field named like a
            secret, or a URL with a password.
    """
    given = (stored_params(ref.params, ref.instance) for ref in refs)
    added = (stored_params(item) for item in items if may_hold_secret(item))
    for params in itertools.chain(given, added):
        fields = redacted_fields(params)
        if fields:
            raise SecretError(
                fields[0],
                f"parameter {fields[0]!r} holds a secret given in Python, which arvel-flow "
                "never sends to a broker or stores: pass it as an environment reference "
                "(arvel_flow.secret_env('NAME')), which each worker resolves from "
                "its own environment",
            )
