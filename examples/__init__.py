"""Worked examples of kcollect plugins (see examples/plugin.py and docs/processor.md)."""
