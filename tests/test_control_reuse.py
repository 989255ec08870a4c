"""The control fetches a URL only where its result can change the verdict: a second round over an
unchanged site is judged against the stored control (the control resolvers still asked), a
changed or failing vantage result and a control older than `control_reuse` are measured afresh,
and a verdict names the control it was judged against, never one it did not have."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from blockwatch.analysis.fingerprints import default_interception
from blockwatch.analysis.reuse import plainly_fine
from blockwatch.analysis.verdict import judge
from blockwatch.config import Config, load
from blockwatch.context import build_context
from blockwatch.probe.records import WebMeasurement
from blockwatch.resolver_round import run_resolver_round
from blockwatch.round import RoundReport, run_round
from blockwatch.storage import open_database
from blockwatch.storage.models import Measurement, Run, Vantage, Verdict
from blockwatch.targets import load_targets
from lab import CONTROL, VANTAGE, VANTAGE2, Behaviour, Lab, Page
from test_check_lab import ARTICLE, scenario

CASES = Path(__file__).parent / "cases"
OTHER = ARTICLE.replace(b"Ratel: independent journalism", b"Ratel: a new front page today")
REDESIGNED = (b"<html><head><title>Completely redesigned portal homepage</title></head><body>"
              + b"<p>x</p>" * 20 + b"</body></html>")


async def one_round(cfg: Config, *, resolver_round: bool = False) -> RoundReport:
    db = open_database(cfg.database_url)
    try:
        ctx = build_context(cfg, asn=None)
        targets = load_targets(cfg.target_files)
        report = await run_round(cfg, targets, db, context=ctx)
        if resolver_round:
            await run_resolver_round(cfg, targets, db, context=ctx)
    finally:
        db.close()
    return report


def controls_stored(cfg: Config) -> list[Measurement]:
    db = open_database(cfg.database_url)
    try:
        with db.read() as s:
            return list(s.scalars(select(Measurement).where(Measurement.role == "control")
                                  .order_by(Measurement.id)))
    finally:
        db.close()


async def test_an_unchanged_site_is_judged_against_the_stored_control(
        lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path, canary=False)
    first = await one_round(cfg)
    assert (first.controls_fetched, first.controls_reused) == (1, 0)
    [r1] = first.results
    assert r1.verdict == "ok" and not r1.control_reused
    fetched = len(site.connections_from(CONTROL))
    vantage = len(site.connections_from(VANTAGE))
    asked = len(lab.control_dns.queried("ratel.test"))
    assert fetched and vantage and asked

    second = await one_round(cfg)
    assert (second.controls_fetched, second.controls_reused) == (0, 1)
    [r2] = second.results
    assert (r2.verdict, r2.event) == ("ok", "new -> ok")  # the same verdict a fresh control gives
    # it says which control it had: the first round's, measured then
    assert r2.control_reused and r2.control_measured_at == r1.control_measured_at
    assert r2.to_json()["control_reused"] is True
    assert len(site.connections_from(CONTROL)) == fetched  # no control fetch
    assert len(site.connections_from(VANTAGE)) > vantage  # the vantage measured again
    assert len(lab.control_dns.queried("ratel.test")) > asked  # and the control's DNS asked

    [control] = controls_stored(cfg)  # no control row was made up for the second round
    assert control.evidence["measured_at"] == r1.control_measured_at
    db = open_database(cfg.database_url)
    try:
        with db.read() as s:
            # the verdict that made the event is stored whole and names that control, which is
            # kept with it (retention keeps the evidence of a change)
            named = s.scalars(select(Verdict.control_id).join(
                Measurement, Measurement.id == Verdict.measurement_id)
                .where(Measurement.role == "vantage").order_by(Verdict.id)).all()
            assert named and set(named) == {control.id}
            assert s.get(Measurement, control.id).keep
    finally:
        db.close()


async def test_a_changed_or_failing_vantage_result_fetches_the_control(
        lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path, canary=False)
    await one_round(cfg)
    fetched = len(site.connections_from(CONTROL))

    site.page = Page(body=OTHER)  # the page changed (for everyone): its title differs
    changed = await one_round(cfg)
    assert (changed.controls_fetched, changed.controls_reused) == (1, 0)
    [r] = changed.results
    assert r.verdict == "ok" and not r.control_reused and "a new front page" in r.reason
    assert len(site.connections_from(CONTROL)) > fetched
    fetched = len(site.connections_from(CONTROL))

    await site.set_behaviour(vantage=Behaviour.tls_reset_after_hello)
    blocked = await one_round(cfg)
    assert (blocked.controls_fetched, blocked.controls_reused) == (1, 0)
    assert [(x.verdict, x.control_reused) for x in blocked.results] == [("tls", False)]
    assert len(site.connections_from(CONTROL)) > fetched
    assert len(controls_stored(cfg)) >= 2


def _age_control(cfg: Config, by: timedelta) -> None:
    """The control's last measurement made `by` earlier than it was."""
    db = open_database(cfg.database_url)
    try:
        with db.write() as s:
            cid = s.scalar(select(Vantage.id).where(Vantage.name == "control"))
            [last] = s.scalars(select(Run.last_at).where(Run.vantage_id == cid)).all()
            s.execute(update(Run).where(Run.vantage_id == cid).values(last_at=last - by))
    finally:
        db.close()


async def test_a_control_older_than_control_reuse_is_measured_again(
        lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path, canary=False, extra_probe='control_reuse = "1h"')
    [first] = (await one_round(cfg)).results
    assert first.control_last_seen_at == first.control_measured_at  # measured now
    fetched = len(site.connections_from(CONTROL))
    _age_control(cfg, timedelta(minutes=61))
    stale = await one_round(cfg)
    assert (stale.controls_fetched, stale.controls_reused) == (1, 0)
    assert len(site.connections_from(CONTROL)) > fetched
    # that fresh control found the same outcome: its run goes on, and is young again
    again = await one_round(cfg)
    assert (again.controls_fetched, again.controls_reused) == (0, 1)


async def test_a_reused_control_says_when_it_was_measured_and_last_seen(
        lab: Lab, tmp_path: Path) -> None:
    """check --json: `control_measured_at` is when the control row judged against was measured
    (its run's full row), `control_last_seen_at` the run's last same-outcome fetch, which its
    age under control_reuse counts from."""
    await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path, canary=False, extra_probe='control_reuse = "1h"')
    await one_round(cfg)
    _age_control(cfg, timedelta(minutes=61))
    [named] = (await one_round(cfg)).results  # the event's round: its control is stored whole
    assert named.event == "new -> ok" and not named.control_reused
    _age_control(cfg, timedelta(minutes=61))
    [repeat] = (await one_round(cfg)).results  # the same outcome: the control's run goes on
    assert repeat.event is None and not repeat.control_reused
    assert repeat.control_measured_at > named.control_measured_at
    [r] = (await one_round(cfg)).results
    assert r.control_reused
    assert r.control_measured_at == named.control_measured_at
    assert r.control_last_seen_at == repeat.control_measured_at
    line = r.to_json()
    assert (line["control_measured_at"], line["control_last_seen_at"]) == (
        named.control_measured_at, repeat.control_measured_at)


async def test_zero_turns_reuse_off(lab: Lab, tmp_path: Path) -> None:
    site = await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path, canary=False, extra_probe='control_reuse = "0"')
    assert cfg.settings.probe.control_reuse == timedelta(0)
    fetched = 0
    for _ in range(2):
        report = await one_round(cfg)
        assert (report.controls_fetched, report.controls_reused) == (1, 0)
        assert len(site.connections_from(CONTROL)) > fetched  # fetched again
        fetched = len(site.connections_from(CONTROL))


async def test_a_resolver_round_between_leaves_the_control_reusable(
        lab: Lab, tmp_path: Path) -> None:
    """The resolver round's DNS-only controls must not take the place of the probe round's
    whole control in the control's runs."""
    site = await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path, canary=False)
    assert cfg.path is not None
    cfg.path.write_text(cfg.path.read_text(encoding="utf-8") + (
        f'\n[[vantage]]\nname = "kz-dns"\nkind = "resolver"\naddress = "{lab.vantage_resolver}"\n'
        'control_name = "ratel.test"\n'), encoding="utf-8")
    cfg = load(cfg.path)
    await one_round(cfg, resolver_round=True)
    fetched = len(site.connections_from(CONTROL))
    second = await one_round(cfg, resolver_round=True)
    assert (second.controls_fetched, second.controls_reused) == (0, 1)
    assert len(site.connections_from(CONTROL)) == fetched


def _case(name: str) -> tuple[WebMeasurement, WebMeasurement, dict]:  # type: ignore[type-arg]
    folder = CASES / name
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    v = WebMeasurement.from_json(json.loads((folder / "vantage.json").read_text(encoding="utf-8")))
    c = WebMeasurement.from_json(json.loads((folder / "control.json").read_text(encoding="utf-8")))
    return v, c, expected


def _names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if p.is_dir()
                  and json.loads((p / "control.json").read_text(encoding="utf-8")) is not None)


@pytest.mark.parametrize("name", _names())
def test_no_golden_case_of_a_block_passes_as_plainly_fine(name: str) -> None:
    """Against its own control as the stored one: every case whose verdict is not "ok" fails the
    round's test for reuse (plainly fine, then "ok" against that control). Plainly fine alone
    lets through only interception by an authority the device trusts, which judge() names."""
    v, c, expected = _case(name)
    ctx = expected.get("context", {})
    asn_table = ctx.get("asn", {})
    asn = asn_table.get if asn_table else None
    fine = plainly_fine(v, c, c.dns, asn=asn)
    j = judge(v, c, vantage_ok=ctx.get("vantage_ok", True), control_ok=ctx.get("control_ok", True),
              asn=asn, interception=default_interception().with_block_addresses(
                  ctx.get("block_addresses", [])))
    if expected["verdict"] != "ok":
        assert not (fine and j.verdict == "ok")
        assert not fine or name == "tls_interception_trusted_on_the_device"
    if name in ("ok_https", "ok_redirect_to_www"):
        assert fine and j.verdict == "ok"  # the common fine page is reused
    if name == "ok_http_only_site":  # fine, but over plain HTTP: only a fresh control tells
        assert not fine and j.verdict == "ok"


def test_the_last_control_is_read_from_its_run(any_db) -> None:  # type: ignore[no-untyped-def]
    """storage/controls.py on SQLite and PostgreSQL: a URL's control run, its full row and the
    time of its last repetition; none older than asked for."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from blockwatch.storage import bulk, repo
    from blockwatch.storage.controls import recent_controls

    _v, template, _e = _case("ok_https")
    t0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

    def control(url: str, at: datetime, uid: str) -> bulk.Row:
        m = replace(template, url=url, uid=uid,
                    measured_at=at.isoformat().replace("+00:00", "Z"))
        return bulk.Row(uid, None, url, at, m.to_json(), failure=m.failure())

    a, b = "https://a.example/", "https://b.example/"
    with any_db.write() as s:
        cid = repo.ensure_vantage(s, "control", "control")
        first = bulk.store_controls(any_db, s, cid, [control(a, t0, "a0"), control(b, t0, "b0")],
                                    [False, False])
    with any_db.write() as s:  # a's control again, the same outcome: its run goes on
        again = bulk.store_controls(any_db, s, cid, [control(a, t0 + timedelta(minutes=15), "a1")],
                                    [False])
    assert again["a1"] == first["a0"]  # no row of its own: the run's full row stands for it
    got = recent_controls(any_db, cid, [a, b, "https://c.example/"], t0 + timedelta(minutes=10))
    assert set(got) == {a}
    assert got[a].id == first["a0"] and got[a].measured_at == t0
    assert got[a].last_at == t0 + timedelta(minutes=15)
    assert got[a].m.url == a and got[a].m.http is not None
    assert set(recent_controls(any_db, cid, [a, b], t0)) == {a, b}
    assert recent_controls(any_db, cid, [a, b], t0 + timedelta(minutes=16)) == {}


async def test_an_http_only_site_always_fetches_the_control(lab: Lab, tmp_path: Path) -> None:
    """Over plain HTTP the vantage's network can serve a stale or substituted copy under the
    site's own address (here a transparent proxy keeps the old page after the site changed for
    everyone): only a control fetched now shows it, so such URLs are never judged against an
    earlier one."""
    site = await lab.add_site("ratel.test", body=ARTICLE,
                              vantage=Behaviour.blockpage(html=ARTICLE, port="http"))
    cfg = await scenario(lab, tmp_path, canary=False, scheme="http")
    first = await one_round(cfg)
    assert [r.verdict for r in first.results] == ["ok"]
    fetched = len(site.connections_from(CONTROL))
    site.page = Page(body=REDESIGNED)  # the site's new page: another title, another length
    second = await one_round(cfg)
    assert (second.controls_fetched, second.controls_reused) == (1, 0)
    [r] = second.results
    assert (r.verdict, r.control_reused) == ("http_diff", False), r.reason
    assert len(site.connections_from(CONTROL)) > fetched


def test_reuse_needs_every_hop_over_tls() -> None:
    """A redirect chain with one plain-HTTP hop, or a page ending on http, is not reused."""
    from dataclasses import replace

    v, c, _ = _case("ok_redirect_to_www")
    assert v.http is not None and len(v.http.hops) > 1 and plainly_fine(v, c, c.dns)
    first, *rest = v.http.hops
    plain_hop = replace(v.http, hops=[replace(first, url=first.url.replace("https:", "http:")),
                                      *rest])
    assert not plainly_fine(replace(v, http=plain_hop), c, c.dns)
    # the final URL on http at both sides (so they still match)
    assert v.http.final_url is not None and c.http is not None
    final = v.http.final_url.replace("https:", "http:")
    assert not plainly_fine(replace(v, http=replace(v.http, final_url=final)),
                            replace(c, http=replace(c.http, final_url=final)), c.dns)


def _add_kz2(cfg: Config, lab: Lab) -> Config:
    assert cfg.path is not None
    cfg.path.write_text(cfg.path.read_text(encoding="utf-8") + (
        f'\n[[vantage]]\nname = "kz2"\nkind = "local"\ncountry = "KZ"\n'
        f'resolver = "{lab.vantage2_resolver}"\nsource_address = "{VANTAGE2}"\n'),
        encoding="utf-8")
    return load(cfg.path)


async def test_several_vantages_one_differs(lab: Lab, tmp_path: Path) -> None:
    """Reuse needs every vantage plainly fine: with two both fine the control is not fetched;
    when one fails, the URL gets one control fetched now, and both are judged against it."""
    site = await lab.add_site("ratel.test", body=ARTICLE)
    cfg = _add_kz2(await scenario(lab, tmp_path, canary=False), lab)
    first = await one_round(cfg)
    assert (first.controls_fetched, first.controls_reused) == (1, 0)
    fetched = len(site.connections_from(CONTROL))
    both = await one_round(cfg)
    assert (both.controls_fetched, both.controls_reused) == (0, 1)
    assert {(r.vantage, r.verdict, r.control_reused) for r in both.results} == {
        ("kz", "ok", True), ("kz2", "ok", True)}
    assert len(site.connections_from(CONTROL)) == fetched
    await site.set_behaviour(vantage2=Behaviour.tls_reset_after_hello)
    one = await one_round(cfg)
    assert (one.controls_fetched, one.controls_reused) == (1, 0)
    assert {(r.vantage, r.verdict, r.control_reused) for r in one.results} == {
        ("kz", "ok", False), ("kz2", "tls", False)}
    assert len({r.control_measured_at for r in one.results}) == 1  # the same control
    assert len(site.connections_from(CONTROL)) > fetched


async def test_a_context_with_more_vantages_than_the_configuration(
        lab: Lab, tmp_path: Path) -> None:
    """The round's vantages are its context's: stored under their ids even when the
    configuration handed beside it (an older one) does not list them."""
    await lab.add_site("ratel.test", body=ARTICLE)
    old = await scenario(lab, tmp_path, canary=False)
    new = _add_kz2(old, lab)  # the file now lists kz2; `old` is what was loaded before
    db = open_database(old.database_url)
    try:
        report = await run_round(old, load_targets(old.target_files), db,
                                 context=build_context(new, asn=None))
        with db.read() as s:
            names = set(s.scalars(select(Vantage.name).join(
                Measurement, Measurement.vantage_id == Vantage.id)))
    finally:
        db.close()
    assert {r.vantage for r in report.results} == {"kz", "kz2"}
    assert names == {"control", "kz", "kz2"}


async def test_a_reload_during_a_probe_round_keeps_its_configuration(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGHUP landing while the daemon's round syncs its targets (an await): the round goes
    on with the configuration and context it started with, the next round takes the new."""
    import asyncio

    import blockwatch.daemon as daemon_mod
    from blockwatch.daemon import Daemon

    await lab.add_site("ratel.test", body=ARTICLE)
    cfg = await scenario(lab, tmp_path, canary=False)
    db = open_database(cfg.database_url)
    d = Daemon(cfg, db)
    d.context = build_context(cfg, asn=None)
    loop = asyncio.get_running_loop()
    real_sync = daemon_mod._sync_all_targets
    reloaded: list[bool] = []

    def sync_then_reload(db_: object, targets: object) -> None:
        real_sync(db_, targets)  # type: ignore[arg-type]
        if not reloaded:  # the round is in its await: the reload runs on the loop meanwhile
            _add_kz2(cfg, lab)
            reloaded.append(asyncio.run_coroutine_threadsafe(d.reload(), loop).result())

    async def nothing() -> None:
        return None

    monkeypatch.setattr(daemon_mod, "_sync_all_targets", sync_then_reload)
    d.alerts = nothing  # type: ignore[method-assign]
    d.site = nothing  # type: ignore[method-assign]
    try:
        await d.probe_round()
        assert reloaded == [True]
        assert [v.name for v, _ in d.context.locals] == ["kz", "kz2"]  # the new one is running

        def stored() -> set[str]:
            with db.read() as s:
                return set(s.scalars(select(Vantage.name).join(
                    Measurement, Measurement.vantage_id == Vantage.id)))
        assert stored() == {"control", "kz"}  # the round measured what it started with
        await d.probe_round()
        assert stored() == {"control", "kz", "kz2"}
    finally:
        db.close()
