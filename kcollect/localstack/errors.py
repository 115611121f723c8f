"""The one error type the local stack raises for anything a user can fix."""

from __future__ import annotations


class StackError(RuntimeError):
    """Starting, checking or stopping the local stack failed; the message says why and what to do."""
