"""The OONI vantage: public OONI web_connectivity measurements imported as `<name>:<probe_asn>`."""

from blockwatch.ooni.importer import ImportReport, check_results, import_all, import_ooni
from blockwatch.ooni.mapping import map_verdict, parse_item

__all__ = ["ImportReport", "check_results", "import_all", "import_ooni", "map_verdict",
           "parse_item"]
