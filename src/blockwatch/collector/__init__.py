"""The collector: the HTTP side of `blockwatch serve` / `run`. In-country agents post their
measurements; the collector takes (or reuses) its own control measurement, judges and stores."""
