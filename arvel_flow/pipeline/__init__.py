"""YAML → validated models: the only package that knows the pipeline file format.

``source`` / ``compose`` read YAML safely and keep positions; ``interpolate`` replaces
``${...}``; ``models`` / ``policies`` / ``fields`` define the file and ``names`` the
shape of module prefixes and key templates; ``diagnostics``, ``references`` and
``secret_checks`` find problems; ``loader`` runs it all (`load_spec`); ``schema``
generates the JSON Schema.

It imports nothing of the runtime (only `arvel_flow.errors`, `arvel_flow.secrets`,
`arvel_flow.scalars` and `arvel_flow.job_settings`), so nothing it does imports what a
file names. The checks that do, strict mode, live in `arvel_flow.compiler`, whose
`load_pipeline` is the public entry point.
"""
