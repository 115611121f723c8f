"""The embedded local stack: a Tansu broker and a clickhouse-server run as plain local processes.

``kcollect.localstack.stack`` is the public facade (``up``, ``down``, ``status`` and the lower-level helpers);
the modules here hold the parts: ``ports`` (free ports, TCP waits), ``process`` (detached start,
PID-safe stop), ``tansu``, ``clickhouse`` and ``chconfig`` (the rendered server config).
"""
