"""The verdict vocabulary is neutral and a Judgement carries its explanation as keys."""

from __future__ import annotations

import json
import subprocess
import sys

from blockwatch import vocabulary
from blockwatch.analysis import verdict
from blockwatch.probe import failures, records
from blockwatch.vocabulary import BLOCKING, SEVERITY, VERDICTS, Verdict

HEAVY = ("httpx", "h11", "sqlalchemy", "fastapi", "blockwatch.probe.netsteps",
         "blockwatch.probe.httpprobe", "blockwatch.probe.dnsprobe")


def test_importing_the_verdict_logic_pulls_in_no_network_or_database_code() -> None:
    code = ("import json, sys; import blockwatch.analysis.verdict; "
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert "blockwatch.analysis.verdict" in loaded  # the probe itself measured something
    heavy = sorted(m for m in loaded if m in HEAVY or m.split(".")[0] in HEAVY)
    assert heavy == []


def test_the_verdict_enum_is_the_stored_strings() -> None:
    assert Verdict.OK == "ok" and Verdict.TCP_IP == "tcp_ip"
    assert json.dumps([Verdict.HTTP_BLOCKPAGE]) == '["http_blockpage"]'
    assert set(VERDICTS) == set(SEVERITY) == {str(v) for v in Verdict}
    assert BLOCKING < set(VERDICTS)
    assert not BLOCKING & {Verdict.OK, Verdict.DOWN, Verdict.INCONCLUSIVE}
    assert verdict.VERDICTS is VERDICTS and verdict.BLOCKING is BLOCKING


def test_old_import_paths_are_the_same_objects() -> None:
    assert failures.CONNECTION_RESET is vocabulary.CONNECTION_RESET
    from blockwatch import records as neutral
    assert records.WebMeasurement is neutral.WebMeasurement
    assert records.HttpHop is neutral.HttpHop
