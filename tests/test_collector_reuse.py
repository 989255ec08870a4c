"""The collector judges an agent's upload against the control's last measurement of the URL
(younger than `[probe] control_reuse`) without fetching the site, when the agent's result is
plainly fine and matches it (the control resolvers still asked); a blocked or different result
and an older control get a control fetched now, and the verdict names the control row it was
judged against. A real collector over HTTP, the lab as the network."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from blockwatch.config import Config, load
from blockwatch.storage import Database
from blockwatch.storage.models import Event, Measurement, Run, Vantage, Verdict
from lab import Behaviour, Lab, Page
from test_check_lab import ARTICLE
from test_collector import auth, vantage_measurement
from test_collector_support import running_collector, tokens, write_collector_config

OTHER = ARTICLE.replace(b"Ratel: independent journalism", b"Ratel: a new front page today")


def config(tmp_path: Path, lab: Lab, db_url: str, tok: dict[str, str], url: str,
           reuse: str = "1h") -> Config:
    cfg = write_collector_config(tmp_path, lab, db_url, agents=tok, urls=[url])
    assert cfg.path is not None
    text = cfg.path.read_text(encoding="utf-8")
    cfg.path.write_text(text.replace('timeout = "2s"\n',
                                     f'timeout = "2s"\ncontrol_reuse = "{reuse}"\n', 1),
                        encoding="utf-8")
    return load(cfg.path)


async def upload(cfg: Config, tok: dict[str, str], m: dict[str, Any]) -> Verdict:
    """`m` posted to a collector started now (nothing of an earlier one in memory); the
    verdict stored for it (whole: the uploads here open or confirm a state)."""
    async with running_collector(cfg) as c, httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok["a1"]),
                            json={"measurements": [m]})
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1, r.text
        with c.db.read() as s:
            v = s.scalar(select(Verdict).join(Measurement, Measurement.id == Verdict.measurement_id)
                         .where(Measurement.uid == f"a1/{m['uid']}"))
            assert v is not None
            s.expunge(v)
            return v


async def upload_repeat(cfg: Config, tok: dict[str, str], m: dict[str, Any]) -> None:
    """`m` posted to a collector started now: the same outcome as the agent's last verdict, so
    it extends that verdict's run (an "ok" judged against any control; inconclusive without)."""
    async with running_collector(cfg) as c, httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok["a1"]),
                            json={"measurements": [m]})
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        with c.db.read() as s:
            assert s.scalar(select(Measurement.id).where(Measurement.uid == f"a1/{m['uid']}")) \
                is None
            [v] = s.scalars(select(Verdict).join(Vantage, Vantage.id == Verdict.vantage_id)
                            .where(Vantage.name == "a1").order_by(Verdict.id.desc()).limit(1))
            assert v.verdict == "ok" and v.repeats >= 1


def age_control(db: Database, *, last_by: timedelta, head_by: timedelta) -> None:
    """The control's open run made older: its last measurement by `last_by`, its full row
    (the run's start) by `head_by`: past the collector's window of a control near the agent's
    time, so only control_reuse can spare a fetch."""
    with db.write() as s:
        cid = s.scalar(select(Vantage.id).where(Vantage.name == "control"))
        for run in s.scalars(select(Run).where(Run.vantage_id == cid)):
            run.last_at = run.last_at - last_by
            run.started_at = run.started_at - head_by
            head = s.get(Measurement, run.measurement_id)
            assert head is not None
            head.measured_at = head.measured_at - head_by


def controls(db: Database) -> list[int]:
    with db.read() as s:
        return list(s.scalars(select(Measurement.id).where(Measurement.role == "control")
                              .order_by(Measurement.id)))


def open_db(cfg: Config) -> Database:
    from blockwatch.storage import open_database

    return open_database(cfg.database_url)


async def test_an_unchanged_fine_site_is_judged_against_the_stored_control(
        lab: Lab, tmp_path: Path, pg_url: str) -> None:
    """The control's run began hours ago (its full row is old) and was last extended 20 minutes
    ago: the upload is judged against that full row, the site is not fetched from the control,
    and its resolvers are asked."""
    site = await lab.add_site("ratel.test", body=ARTICLE)
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = config(tmp_path, lab, pg_url, tok, url)
    first = await upload(cfg, tok, await vantage_measurement(lab, url))
    assert first.verdict == "ok" and first.control_id is not None
    fetched = len(site.connections_from(lab.CONTROL))
    assert fetched
    db = open_db(cfg)
    try:
        age_control(db, last_by=timedelta(minutes=20), head_by=timedelta(hours=3))
        asked = len(lab.control_dns.queried("ratel.test"))
        second = await upload(cfg, tok, await vantage_measurement(lab, url))
        assert second.verdict == "ok"
        assert second.control_id == first.control_id  # named: the stored row, measured then
        assert len(site.connections_from(lab.CONTROL)) == fetched  # no control fetch
        assert len(lab.control_dns.queried("ratel.test")) > asked  # its DNS asked now
        assert controls(db) == [first.control_id]  # no control row made up
        with db.read() as s:  # its verdict opened the event: the control it names is kept
            assert s.scalars(select(Event.verdict_id)).all() == [second.id]
            assert s.get(Measurement, first.control_id).keep  # type: ignore[union-attr]
    finally:
        db.close()


async def test_a_blocked_or_different_result_fetches_the_control(
        lab: Lab, tmp_path: Path, pg_url: str) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = config(tmp_path, lab, pg_url, tok, url)
    first = await upload(cfg, tok, await vantage_measurement(lab, url))
    db = open_db(cfg)
    try:
        age_control(db, last_by=timedelta(minutes=20), head_by=timedelta(minutes=20))
        fetched = len(site.connections_from(lab.CONTROL))
        await site.set_behaviour(vantage=Behaviour.tls_reset_after_hello)
        blocked = await upload(cfg, tok, await vantage_measurement(lab, url))
        assert blocked.verdict == "tls"
        assert len(site.connections_from(lab.CONTROL)) > fetched
        assert blocked.control_id not in (None, first.control_id)  # the control fetched now
        assert controls(db) == [first.control_id, blocked.control_id]

        # the page changed for everyone: the agent's title differs from the stored control's
        await site.set_behaviour(vantage=None)
        age_control(db, last_by=timedelta(minutes=20), head_by=timedelta(minutes=20))
        site.page = Page(body=OTHER)
        fetched = len(site.connections_from(lab.CONTROL))
        changed = await upload(cfg, tok, await vantage_measurement(lab, url))
        assert changed.verdict == "ok"
        assert len(site.connections_from(lab.CONTROL)) > fetched
        assert changed.control_id not in (None, first.control_id, blocked.control_id)
    finally:
        db.close()


async def test_a_control_older_than_control_reuse_is_measured_again(
        lab: Lab, tmp_path: Path, pg_url: str) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = config(tmp_path, lab, pg_url, tok, url)
    first = await upload(cfg, tok, await vantage_measurement(lab, url))
    db = open_db(cfg)
    try:
        age_control(db, last_by=timedelta(minutes=61), head_by=timedelta(minutes=61))
        fetched = len(site.connections_from(lab.CONTROL))
        again = await upload(cfg, tok, await vantage_measurement(lab, url))
        assert again.verdict == "ok"
        assert len(site.connections_from(lab.CONTROL)) > fetched
        assert again.control_id not in (None, first.control_id)
        # that control is now the control's last measurement: the next upload reuses it
        age_control(db, last_by=timedelta(minutes=20), head_by=timedelta(minutes=20))
        fetched = len(site.connections_from(lab.CONTROL))
        await upload_repeat(cfg, tok, await vantage_measurement(lab, url))
        assert len(site.connections_from(lab.CONTROL)) == fetched
        assert controls(db) == [first.control_id, again.control_id]
    finally:
        db.close()


async def _sequence(lab: Lab, site: Any, tmp_path: Path, reuse: str
                    ) -> tuple[list[tuple[str, bool, str]], int]:
    """fine, fine and blocked, each 20 minutes after the control's last measurement (a new
    database each time): the verdicts, and the connections the control made."""
    await site.set_behaviour(vantage=None)
    url = lab.url("ratel.test")
    tok = tokens("a1")
    tmp_path.mkdir()
    cfg = config(tmp_path, lab, f"sqlite:///{tmp_path / 'blockwatch.db'}", tok, url, reuse=reuse)
    before = len(site.connections_from(lab.CONTROL))
    got = [await upload(cfg, tok, await vantage_measurement(lab, url))]
    db = open_db(cfg)
    try:
        age_control(db, last_by=timedelta(minutes=20), head_by=timedelta(minutes=20))
        got.append(await upload(cfg, tok, await vantage_measurement(lab, url)))
        age_control(db, last_by=timedelta(minutes=20), head_by=timedelta(minutes=20))
        await site.set_behaviour(vantage=Behaviour.tls_reset_after_hello)
        got.append(await upload(cfg, tok, await vantage_measurement(lab, url)))
    finally:
        db.close()
    return ([(v.verdict, v.confirmed, v.reason) for v in got],
            len(site.connections_from(lab.CONTROL)) - before)


async def test_verdicts_are_the_same_with_reuse_off(lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    on, on_fetched = await _sequence(lab, site, tmp_path / "on", "1h")
    off, off_fetched = await _sequence(lab, site, tmp_path / "off", "0")
    assert [v for v, _, _ in on] == ["ok", "ok", "tls"]
    assert on == off
    assert 0 < on_fetched < off_fetched  # the second upload's control was not fetched


async def test_agents_uploading_together_ask_the_control_resolvers_once(
        lab: Lab, tmp_path: Path, pg_url: str) -> None:
    """Two agents' fine results for the same URL, one after the other on one collector: both
    judged against the stored control, the control resolvers asked for the first only (their
    answer stands for "now" for DNS_FRESH seconds), the site not fetched."""
    site = await lab.add_site("ratel.test", body=ARTICLE)
    url = lab.url("ratel.test")
    tok = tokens("a1", "a2")
    cfg = config(tmp_path, lab, pg_url, tok, url)
    first = await upload(cfg, tok, await vantage_measurement(lab, url))
    db = open_db(cfg)
    try:
        age_control(db, last_by=timedelta(minutes=20), head_by=timedelta(minutes=20))
    finally:
        db.close()
    fetched = len(site.connections_from(lab.CONTROL))
    asked = len(lab.control_dns.queried("ratel.test"))
    ms = {a: await vantage_measurement(lab, url) for a in tok}
    async with running_collector(cfg) as c, httpx.AsyncClient(timeout=30) as http:
        for a in tok:
            r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok[a]),
                                json={"measurements": [ms[a]]})
            assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
            if a == "a1":
                after_first = len(lab.control_dns.queried("ratel.test"))
                assert after_first > asked
        assert len(lab.control_dns.queried("ratel.test")) == after_first
        with c.db.read() as s:
            named = s.execute(select(Verdict.verdict, Verdict.control_id)
                              .join(Measurement, Measurement.id == Verdict.measurement_id)
                              .where(Measurement.uid.in_([f"{a}/{m['uid']}"
                                                          for a, m in ms.items()]))).all()
        assert sorted(named) == [("ok", first.control_id)] * 2
        assert controls(c.db) == [first.control_id]
    assert len(site.connections_from(lab.CONTROL)) == fetched


async def test_no_reuse_while_the_collectors_canaries_fail(
        lab: Lab, tmp_path: Path, pg_url: str) -> None:
    """With its own network in doubt the collector judges as before (a control fetched now,
    verdicts inconclusive where it cannot tell) rather than lean on a stored control."""
    await lab.add_site("canary.test", control=Behaviour.refuse)
    site = await lab.add_site("ratel.test", body=ARTICLE)
    url = lab.url("ratel.test")
    tok = tokens("a1")
    cfg = write_collector_config(tmp_path, lab, pg_url, agents=tok, urls=[url],
                                 canaries=[lab.url("canary.test")])
    assert cfg.settings.probe.control_reuse == timedelta(hours=1)  # the default
    first = await upload(cfg, tok, await vantage_measurement(lab, url))
    db = open_db(cfg)
    try:
        age_control(db, last_by=timedelta(minutes=20), head_by=timedelta(minutes=20))
        fetched = len(site.connections_from(lab.CONTROL))
        await upload_any(cfg, tok, await vantage_measurement(lab, url))
        assert len(site.connections_from(lab.CONTROL)) > fetched
        assert len(controls(db)) == 2 and first.control_id in controls(db)
    finally:
        db.close()


async def upload_any(cfg: Config, tok: dict[str, str], m: dict[str, Any]) -> None:
    async with running_collector(cfg) as c, httpx.AsyncClient(timeout=30) as http:
        r = await http.post(f"{c.url}/api/v1/measurements", headers=auth(tok["a1"]),
                            json={"measurements": [m]})
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
