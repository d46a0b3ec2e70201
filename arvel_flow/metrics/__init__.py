"""Prometheus metrics: a listener on the event bus and the ``/metrics`` endpoint.

Needs the ``metrics`` extra (``pip install 'arvel-flow[metrics]'``); nothing here is
imported unless a command is given ``--metrics-port``.
"""
