"""Test tools, not services: the HTTP subsystem simulator and the TCP fault proxy."""
