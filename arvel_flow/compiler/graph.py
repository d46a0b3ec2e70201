"""`compile_plan` / `compile_pipeline`: a validated `PipelineSpec` → the `Plan` to run,
or the `Chain` / `Batch` graph it is drawn from (the Python API).

Each job's settings merge, weakest first: the job class's own defaults, the
pipeline's ``defaults``, the job template, the step. At each level a named or inline
``retry`` policy applies first and the level's direct settings (``timeout_seconds``,
...) over it; unset keys keep what the level below said. Middleware stacks are
concatenated, outermost first: defaults, template, step (the class's own
``middleware()`` runs innermost, at run time).

Fan-outs stay lazy: ``each`` is passed on as columns of values (`ItemColumns`, when
its items share their keys), ``matrix`` as a `Matrix` that computes combinations on
demand. Compiling imports each job class
once, to read its defaults, and does no other I/O.
"""

from __future__ import annotations

from typing import Any

from arvel_flow.errors import ConfigError, ConfigIssue
from arvel_flow.job_settings import STEP_KEYS
from arvel_flow.pipeline.models import (
    BatchStepSpec,
    ChainStepSpec,
    JobSettingsSpec,
    JobStepSpec,
    PipelineSpec,
    RateLimitedSpec,
    RetryPolicySpec,
    UseMiddlewareSpec,
    WithoutOverlappingSpec,
)
from arvel_flow.pipeline.problems import is_dotted_path
from arvel_flow.pipeline.references import ROOT_KEY
from arvel_flow.queue.batch import Batch
from arvel_flow.queue.chain import Chain
from arvel_flow.queue.flow import FanOut, JobStep
from arvel_flow.queue.job import JobSettings, MiddlewareRef
from arvel_flow.queue.plan import ItemColumns, Matrix, Plan
from arvel_flow.queue.targets import JobRef, JobTarget, resolve_target

Step = Chain | Batch | JobStep | FanOut


def compile_plan(spec: PipelineSpec, *, import_classes: bool = True) -> Plan:
    """The plan of a pipeline, named after it: what ``arvel-flow run`` starts.

    Args and raises as `compile_pipeline`, whose graph it flattens.
    """
    return compile_pipeline(spec, import_classes=import_classes).to_plan(spec.name)


def compile_pipeline(spec: PipelineSpec, *, import_classes: bool = True) -> Chain | Batch:
    """The runnable graph of a pipeline; a root job step becomes a one-step `Chain`.

    Args:
        spec: A pipeline validated by `load_pipeline`.
        import_classes: Import each job class to start from its own setting defaults
            (under the allowlist's rule when the file sets ``queue.allowed_modules``).
            Without it, `Job`'s defaults stand in: enough to draw the graph of a
            pipeline whose jobs are not importable here, not to run it.

    Raises:
        ImportTargetError: A job class cannot be imported (only if the spec was
            loaded without strict checks).
        ConfigError: A name is undefined or a step id repeated (only in a spec built
            without `load_pipeline`, which reports those with their positions).
    """
    compiled = _Compiler(spec, import_classes=import_classes).step(spec.pipeline)
    if isinstance(compiled, Chain | Batch):
        return compiled
    return Chain(compiled)


def compute_job_ref(spec: PipelineSpec, step: JobStepSpec) -> JobRef:
    """What one job step runs: its target, parameters and effective settings."""
    return _Compiler(spec).job_ref(step)


class _Compiler:
    def __init__(self, spec: PipelineSpec, *, import_classes: bool = True) -> None:
        self.spec = spec
        self.import_classes = import_classes
        allowed = spec.queue.allowed_modules
        self.allowed = tuple(allowed) if allowed is not None else None
        self._class_settings: dict[str, JobSettings] = {}
        self._ids: set[str] = set()

    def step(self, step: JobStepSpec | ChainStepSpec | BatchStepSpec) -> Step:
        """Any step, with its callbacks."""
        self._claim_id(step)
        if isinstance(step, JobStepSpec):
            return self.job_step(step)
        if isinstance(step, ChainStepSpec):
            chain = Chain(*(self.step(child) for child in step.chain), id=step.id)
            if step.catch is not None:
                chain.catch(self.step(step.catch))
            if step.finally_ is not None:
                chain.finally_(self.step(step.finally_))
            return chain
        batch = Batch(
            [self.step(member) for member in step.batch],
            id=step.id,
            name=step.name,
            concurrency=step.concurrency,
            allow_failures=step.allow_failures,
        )
        for callback, method in (
            (step.then, batch.then),
            (step.catch, batch.catch),
            (step.finally_, batch.finally_),
        ):
            if callback is not None:
                method(self.step(callback))
        return batch

    def job_step(self, step: JobStepSpec) -> JobStep | FanOut:
        """One job, or a lazy fan-out of it."""
        ref = self.job_ref(step)
        if step.each is not None:
            # Columns, not the validated dicts: the spec (and they) can go once compiled.
            return FanOut(ref, ItemColumns.of(step.each), id=step.id)
        if step.matrix is not None:
            return FanOut(ref, Matrix(step.matrix), id=step.id)
        return JobStep(ref, id=step.id)

    def job_ref(self, step: JobStepSpec) -> JobRef:
        """Target, parameters (template's under the step's) and merged settings."""
        template = self.spec.jobs.get(step.job)
        if template is None and not is_dotted_path(step.job):
            raise _undefined("job template", step.job)
        target = template.class_ if template is not None else step.job
        params = {**(template.with_ if template is not None else {}), **step.with_}
        layers: list[JobSettingsSpec | None] = [self.spec.defaults, template, step]
        return JobRef(target, params, self.merge(self.class_settings(target), layers))

    def class_settings(self, target: str) -> JobSettings:
        """The target class's own defaults, imported once per compilation."""
        if not self.import_classes:
            return JobSettings()
        if target not in self._class_settings:
            target_class = resolve_target(target, allowed=self.allowed)
            self._class_settings[target] = class_settings(target_class)
        return self._class_settings[target]

    def merge(self, base: JobSettings, layers: list[JobSettingsSpec | None]) -> JobSettings:
        """Apply each level over ``base``: its policy, then its direct settings."""
        values = base.to_dict()
        middleware: list[MiddlewareRef] = []
        for layer in layers:
            if layer is None:
                continue
            policy = self.policy(layer.retry)
            if policy is not None:
                values.update(policy.model_dump(exclude_none=True))
            values.update(_direct_settings(layer))
            middleware += self.middleware(layer.middleware or [])
        values["middleware"] = middleware
        return JobSettings.from_values(values)

    def policy(self, retry: str | RetryPolicySpec | None) -> RetryPolicySpec | None:
        """A named policy looked up, or the inline one."""
        if isinstance(retry, str):
            if retry not in self.spec.retry_policies:
                raise _undefined("retry policy", retry)
            return self.spec.retry_policies[retry]
        return retry

    def middleware(self, entries: list[Any]) -> list[MiddlewareRef]:
        """Stacks expanded in place, in order."""
        refs: list[MiddlewareRef] = []
        for entry in entries:
            if isinstance(entry, str):
                if entry not in self.spec.middleware_stacks:
                    raise _undefined("middleware stack", entry)
                refs += self.middleware(self.spec.middleware_stacks[entry])
            else:
                refs.append(middleware_ref(entry))
        return refs

    def _claim_id(self, step: JobStepSpec | ChainStepSpec | BatchStepSpec) -> None:
        # `load_pipeline` reports these with positions; a spec built by hand gets here.
        if step.id is None:
            return
        if step.id in self._ids or (step.id == ROOT_KEY and step is not self.spec.pipeline):
            raise ConfigError([ConfigIssue(f"duplicate or reserved step id {step.id!r}")])
        self._ids.add(step.id)


def _undefined(what: str, name: str) -> ConfigError:
    return ConfigError([ConfigIssue(f"undefined {what} {name!r}")])


def class_settings(target: JobTarget) -> JobSettings:
    """A job class's own setting defaults (`Job` defaults for anything it lacks)."""
    if target.kind == "function":
        return JobSettings()
    return JobSettings.of(target.obj)


def middleware_ref(
    entry: UseMiddlewareSpec | RateLimitedSpec | WithoutOverlappingSpec,
) -> MiddlewareRef:
    """The runtime reference of one middleware defined in the file."""
    if isinstance(entry, UseMiddlewareSpec):
        return MiddlewareRef(entry.use, dict(entry.with_))
    if isinstance(entry, RateLimitedSpec):
        return MiddlewareRef("rate_limited", entry.rate_limited.model_dump())
    return MiddlewareRef(
        "without_overlapping", entry.without_overlapping.model_dump(exclude_none=True)
    )


def _direct_settings(layer: JobSettingsSpec) -> dict[str, Any]:
    """The settings a level sets itself (not through ``retry`` or ``middleware``)."""
    return layer.model_dump(include=set(STEP_KEYS), exclude_none=True)
