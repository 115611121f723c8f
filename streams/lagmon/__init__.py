"""Consumer-lag monitoring: group discovery and owners (``discovery``), time lag (``timelag``),
collections and Burrow-style statuses (``collector``), metric names (``metrics``). See docs/lag.md."""
