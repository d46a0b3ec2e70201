"""OpenTelemetry traces: one trace per pipeline run, across processes and brokers.

Needs the ``otel`` extra (``pip install 'arvel-flow[otel]'``). Nothing imports
OpenTelemetry unless tracing is on: `switch` decides that from the flag and the
environment without it; `setup` builds the tracer provider and installs `tracer` at the
seam the runner and the orchestrator call (`arvel_flow.queue.spans`); `ids` derives the
ids that let any process end a span another process began.
"""
