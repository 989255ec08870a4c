"""The verdict vocabulary is neutral and a Judgement carries its explanation as keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from blockwatch import vocabulary
from blockwatch.analysis import reasons, verdict
from blockwatch.analysis.fingerprints import default_interception
from blockwatch.probe import failures, records
from blockwatch.records import WebMeasurement
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


# --- the keys of a judgement ---------------------------------------------------------------------

CASES = Path(__file__).parent / "cases"


def _judge_case(name: str) -> verdict.Judgement:
    folder = CASES / name
    ctx = json.loads((folder / "expected.json").read_text(encoding="utf-8")).get("context", {})
    asn: dict[str, str] = ctx.get("asn", {})

    def m(file: str) -> WebMeasurement | None:
        data = json.loads((folder / file).read_text(encoding="utf-8"))
        return None if data is None else WebMeasurement.from_json(data)

    return verdict.judge(
        m("vantage.json"), m("control.json"),  # type: ignore[arg-type]
        vantage_ok=ctx.get("vantage_ok", True), control_ok=ctx.get("control_ok", True),
        asn=asn.get if asn else None,
        interception=default_interception().with_block_addresses(ctx.get("block_addresses", [])))


def test_a_lying_resolver_names_both_sides_addresses_and_their_networks() -> None:
    j = _judge_case("dns_address_that_is_not_the_site")
    assert j.verdict is Verdict.DNS and j.step == "dns" and j.host == "ratel.kz"
    assert j.vantage_addresses == ("212.154.192.7",)
    assert j.control_addresses == ("185.98.5.149",)
    assert dict(j.networks) == {"212.154.192.7": "AS9198 Kazakhtelecom",
                                "185.98.5.149": "AS48716 PS Internet"}
    assert j.keys()["networks"]["212.154.192.7"] == "AS9198 Kazakhtelecom"


def test_a_failed_redirect_hop_names_its_index_host_and_step() -> None:
    j = _judge_case("redirect_http_to_https_then_sni_reset")
    assert (j.verdict, j.step, j.hop_index, j.hop_host) == (Verdict.TLS, "tls", 1, "ratel.kz")
    assert j.vantage_failure == failures.CONNECTION_RESET


def test_throttling_carries_both_goodputs() -> None:
    j = _judge_case("throttled_until_timeout_https")
    assert j.verdict is Verdict.THROTTLED
    assert j.vantage_rate == 2048.0 and j.vantage_bytes == 61440 and j.vantage_ms == 30000.0
    assert j.control_rate == 1_000_000.0 and j.control_bytes == 400_000
    assert "2.0 KB/s" in j.reason and "977 KB/s" in j.reason


def test_a_blockpage_names_its_fingerprint() -> None:
    j = _judge_case("http_blockpage_behind_redirect")
    assert (j.verdict, j.confirmed, j.fingerprints) == ("http_blockpage", True, ("d_corp_kz_ps",))


def test_the_keys_are_json_and_render_back_to_the_same_english() -> None:
    names = sorted(p.name for p in CASES.iterdir() if p.is_dir())
    for name in names:
        j = _judge_case(name)
        keys = json.loads(json.dumps(j.keys()))
        assert keys["why"] in reasons.TEMPLATES["en"], name
        assert "verdict" not in keys and "reason" not in keys
        assert reasons.render(keys, "en") == j.reason, name


def test_a_judgement_made_from_text_alone_keeps_its_text_in_every_language() -> None:
    j = verdict.Judgement("http_blockpage", True, "OONI: confirmed blocking")
    assert j.keys() == {} and j.reason == "OONI: confirmed blocking"
    assert j.reason_in("ru") == "OONI: confirmed blocking"
    assert reasons.render({"why": "no such explanation"}, "kk") is None
