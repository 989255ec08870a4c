"""Compatibility: the lab lives in `blockwatch.lab`; tests keep `from lab import ...` and
`from lab.config import ...` (each submodule is the package's own, not a copy, so classes match)."""

import importlib
import sys

import blockwatch.lab as _lab
from blockwatch.lab import *  # noqa: F403
from blockwatch.lab import __all__ as __all__

for _name in ("behaviour", "certs", "config", "core", "dnsserver", "doh", "net", "sites", "tlsinfo", "web"):
    _module = importlib.import_module(f"{_lab.__name__}.{_name}")
    sys.modules[f"{__name__}.{_name}"] = _module
    globals()[_name] = _module
