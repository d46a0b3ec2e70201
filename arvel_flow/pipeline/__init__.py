"""YAML → validated models: the only package that knows the pipeline file format.

``source`` / ``compose`` read YAML safely and keep positions; ``interpolate`` replaces
``${...}``; ``models`` / ``policies`` / ``fields`` define the file; ``diagnostics``,
``references``, ``resolve``, ``params`` and ``signatures`` find problems; ``loader``
runs it all (`load_pipeline`); ``schema`` generates the JSON Schema.
"""
