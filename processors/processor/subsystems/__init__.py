"""Subsystems the processor fetches metrics from: the protocol, simulated, HTTP and SQL ones."""
