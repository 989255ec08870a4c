"""`blockwatch health` tells measuring from merely running: a vantage whose every result is
inconclusive, one without a usable measurement for two intervals, a job that keeps failing and a
stuck outbox are each unhealthy and named (exit 1, and in --json). Rows are stored through the
real state machine on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from blockwatch.cli import main
from blockwatch.daemon import record_job
from blockwatch.health import check_health
from blockwatch.storage import Database, open_database, repo
from blockwatch.storage.models import Outbox
from blockwatch.targets import Target

URLS = ("https://ratel.kz/", "https://vlast.kz/")


@pytest.fixture
def setup(any_db_url: str, write_config):  # type: ignore[no-untyped-def]
    cfg = write_config(f'[storage]\nurl = "{any_db_url}"\n[probe]\ninterval = "15m"\n'
                       '[[vantage]]\nname = "vps"\nkind = "local"\n')
    db = open_database(cfg.database_url)
    yield cfg, db
    db.close()


def store(db: Database, verdicts: list[tuple[datetime, str]]) -> None:
    with db.write() as s:
        ids = repo.sync_targets(s, [Target(name="Ratel.kz", urls=URLS[:1], country="KZ"),
                                    Target(name="Vlast.kz", urls=URLS[1:], country="KZ")])
        vid = repo.ensure_vantage(s, "vps", "local")
        for at, verdict in verdicts:
            for name, url in zip(("Ratel.kz", "Vlast.kz"), URLS, strict=True):
                m = repo.add_measurement(s, uid=f"{url}{at.isoformat()}", target_id=ids[name],
                                         vantage_id=vid, url=url, role="vantage",
                                         measured_at=at, evidence={})
                repo.record_verdict(s, measurement=m, control_id=None, verdict=verdict,
                                    confirmed=False, reason="", confirm_after=2)


def probe_ran(db: Database, now: datetime) -> None:
    record_job(db, "probe", started=now - timedelta(minutes=3), ok=True, error=None,
               interval=timedelta(minutes=15))


def test_a_vantage_measuring_freshly_is_healthy(setup) -> None:  # type: ignore[no-untyped-def]
    cfg, db = setup
    now = datetime.now(UTC)
    store(db, [(now - timedelta(minutes=20), "ok"), (now - timedelta(minutes=5), "ok")])
    probe_ran(db, now)
    h = check_health(cfg, db, now)
    assert h.healthy, h.problems
    (v,) = h.vantages
    assert v["display"] == "measured" and v["not_measuring"] is False and v["urls"] == 2


def test_every_result_inconclusive_since_it_began_is_unhealthy(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    """The host reaches nothing: the daemon runs, rounds finish, nothing is measured."""
    cfg, db = setup
    now = datetime.now(UTC)
    store(db, [(now - timedelta(minutes=16), "inconclusive"),
               (now - timedelta(minutes=1), "inconclusive")])
    probe_ran(db, now)
    h = check_health(cfg, db, now)
    assert not h.healthy
    assert h.problems == ["vantage vps (local) has no usable measurement since it began "
                          "measuring: every result is inconclusive (its network or the control "
                          "cannot reach anything)"]
    assert main(["--config", str(cfg.path), "health", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["healthy"] is False and "vantage vps (local)" in out["problems"][0]
    (v,) = out["vantages"]
    assert v["not_measuring"] is True and v["last_usable"] is None
    assert v["display"] == "not_measured" and v["unmeasured"] == 2
    assert main(["--config", str(cfg.path), "health"]) == 1
    text = capsys.readouterr().out
    assert "last usable never NOT MEASURING" in text and "UNHEALTHY: vantage vps" in text


def test_no_usable_measurement_for_two_intervals_is_unhealthy(setup) -> None:  # type: ignore[no-untyped-def]
    cfg, db = setup
    now = datetime.now(UTC).replace(microsecond=0)
    good = now - timedelta(hours=2)
    store(db, [(good - timedelta(minutes=15), "ok"), (good, "ok")])
    # one inconclusive round after a fresh usable one is not yet a problem
    store(db, [(good + timedelta(minutes=15), "inconclusive")])
    h = check_health(cfg, db, good + timedelta(minutes=16))
    assert not any("usable" in p for p in h.problems), h.problems
    assert h.vantages[0]["not_measuring"] is False
    store(db, [(now - timedelta(minutes=20), "inconclusive"),
               (now - timedelta(minutes=5), "inconclusive")])
    h = check_health(cfg, db, now)
    (p,) = [p for p in h.problems if p.startswith("vantage vps")]
    assert p == (f"vantage vps (local) has had no usable measurement since {repo.iso(good)} "
                 "(more than two intervals): its results are inconclusive")
    assert h.vantages[0]["last_usable"] == repo.iso(good)


def test_a_stopped_vantage_is_silent(setup) -> None:  # type: ignore[no-untyped-def]
    cfg, db = setup
    now = datetime.now(UTC)
    store(db, [(now - timedelta(hours=2), "ok"), (now - timedelta(hours=1, minutes=45), "ok")])
    probe_ran(db, now)
    h = check_health(cfg, db, now)
    assert [p for p in h.problems if "vps" in p] == [
        f"vantage vps (local) silent since {h.vantages[0]['last_seen']}"]
    assert h.vantages[0]["display"] == "stale"


def test_a_job_that_keeps_failing_and_a_stuck_outbox(setup) -> None:  # type: ignore[no-untyped-def]
    cfg, db = setup
    now = datetime.now(UTC)
    store(db, [(now - timedelta(minutes=20), "ok"), (now - timedelta(minutes=5), "ok")])
    probe_ran(db, now)
    record_job(db, "feeds", started=now, ok=False, error="HTTP 503 from every feed",
               interval=timedelta(minutes=30))
    h = check_health(cfg, db, datetime.now(UTC))
    assert h.healthy, h.problems  # one failure is not yet "keeps failing"
    record_job(db, "feeds", started=now, ok=False, error="HTTP 503 from every feed",
               interval=timedelta(minutes=30))
    h = check_health(cfg, db, datetime.now(UTC))
    assert h.problems == ["job feeds keeps failing: last success never, last error: HTTP 503 "
                          "from every feed"]
    assert next(j for j in h.jobs if j["job"] == "feeds")["failing"] is True
    # it worked once, long ago, and has failed since
    record_job(db, "alerts", started=now, ok=True, error=None, interval=timedelta(minutes=1))
    record_job(db, "alerts", started=now, ok=False, error="SMTP down",
               interval=timedelta(minutes=1))
    h = check_health(cfg, db, datetime.now(UTC) + timedelta(minutes=2, seconds=30))
    assert any(p.startswith("job alerts keeps failing: last success 20") for p in h.problems)
    with db.write() as s:
        s.add(Outbox(key="k", channel="email", destination="d@example.org", kind="digest",
                     payload={}, status="failed", attempts=9,
                     created_at=now - timedelta(hours=3), next_attempt_at=now))
    h = check_health(cfg, db, datetime.now(UTC))
    assert "1 alert(s) undeliverable for over an hour" in h.problems


def test_a_stored_job_error_is_scrubbed_when_shown(setup) -> None:  # type: ignore[no-untyped-def]
    """An error recorded before a secret was known (another config, an older version) still
    never reaches health's text or JSON."""
    from blockwatch import redact

    cfg, db = setup
    now = datetime.now(UTC)
    secret = "s3cret-token-value-123"
    for n in range(3):
        record_job(db, "alerts", started=now - timedelta(hours=n + 1), ok=False,
                   error=f"POST https://hooks.example/{secret} failed",
                   interval=timedelta(minutes=5))
    try:
        redact.register(secret)
        h = check_health(cfg, db, now=now)
    finally:
        redact.forget_all()
    shown = json.dumps(h.jobs) + "\n".join(h.problems)
    assert "alerts keeps failing" in shown
    assert secret not in shown
    assert "https://hooks.example/" in shown  # the rest of the error is still there


def test_before_any_job_ran_it_says_so_instead_of_an_empty_table(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg, _ = setup
    assert main(["--config", str(cfg.path), "health"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert not any(line.startswith("JOB") for line in lines)
    assert lines[0] == "jobs: none has run yet (`blockwatch run` records each job's runs)"
    assert "feeds: none configured" in lines and "feeds: 0 of 0 working" not in lines
    assert lines[-1] == "UNHEALTHY: no job has run yet: is `blockwatch run` running?"
    assert main(["--config", str(cfg.path), "health", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["jobs"] == [] and out["feeds"] == []
    assert out["problems"] == ["no job has run yet: is `blockwatch run` running?"]


def test_once_a_job_ran_the_job_table_is_shown(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    cfg, db = setup
    probe_ran(db, datetime.now(UTC))
    main(["--config", str(cfg.path), "health"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["JOB", "LAST", "RUN", "LAST", "OK", "LAG", "STATUS"]
    assert lines[1].startswith("probe ") and lines[1].endswith(" ok")
