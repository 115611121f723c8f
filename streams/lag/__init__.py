"""Consumer lag: probes, the lag gate, Burrow-style statuses, group discovery, time lag. See docs/lag.md."""
