"""a change counter per target over its daily rollups (rollup_marks), kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 17:10:00

The daemon's site build keeps every outlet's rollup rows in memory between builds and reads again
only the rows of targets whose counter moved, instead of all 180k rows of 500 outlets x 4
vantages x 90 days on every build. Triggers, not the writer, keep the counter, so every change is
seen whoever makes it (a rollup rewritten by late data, `blockwatch db` tools, a restore, a hand
fix in psql or sqlite3): any row inserted or deleted, or updated in what the pages show (target,
vantage, day, worst state, minutes affected). An update of the measurement count alone (every
round's today row) does not count: no page shows it. Only a table and triggers: nothing is
copied, and rows stored before simply have no counter yet (the first build reads them all).
On PostgreSQL the functions keep the search_path they were created with (one install per
schema: a hand fix run with another search_path still moves this install's counters), and a
TRUNCATE, which fires no row trigger, moves every counter.
"""

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

# what the pages show of a row: a change in anything else does not move the counter
SHOWN = ("target_id", "vantage_id", "day", "worst", "minutes_affected")

SQLITE_BUMP = ("INSERT INTO rollup_marks (target_id, gen) VALUES ({}.target_id, 1) "
               "ON CONFLICT (target_id) DO UPDATE SET gen = gen + 1;")

PG_FUNCTION = """
CREATE FUNCTION blockwatch_rollup_mark() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        INSERT INTO rollup_marks AS m (target_id, gen) VALUES (OLD.target_id, 1)
        ON CONFLICT (target_id) DO UPDATE SET gen = m.gen + 1;
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.target_id IS DISTINCT FROM OLD.target_id)
    THEN
        INSERT INTO rollup_marks AS m (target_id, gen) VALUES (NEW.target_id, 1)
        ON CONFLICT (target_id) DO UPDATE SET gen = m.gen + 1;
    END IF;
    RETURN NULL;
END $$
"""

# TRUNCATE fires no row trigger: every counter moves (and one more for targets never marked)
PG_TRUNCATE_FUNCTION = """
CREATE FUNCTION blockwatch_rollup_mark_all() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE rollup_marks SET gen = gen + 1;
    INSERT INTO rollup_marks (target_id, gen) SELECT id, 1 FROM targets
    ON CONFLICT (target_id) DO NOTHING;
    RETURN NULL;
END $$
"""


def upgrade() -> None:
    op.execute("CREATE TABLE rollup_marks (target_id INTEGER NOT NULL, gen BIGINT NOT NULL, "
               "CONSTRAINT pk_rollup_marks PRIMARY KEY (target_id))")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute("CREATE TRIGGER daily_rollups_mark AFTER INSERT OR DELETE ON daily_rollups "
                   "FOR EACH ROW EXECUTE FUNCTION blockwatch_rollup_mark()")
        old = ", ".join(f"OLD.{c}" for c in SHOWN)
        new = ", ".join(f"NEW.{c}" for c in SHOWN)
        op.execute("CREATE TRIGGER daily_rollups_mark_update AFTER UPDATE ON daily_rollups "
                   f"FOR EACH ROW WHEN (({old}) IS DISTINCT FROM ({new})) "
                   "EXECUTE FUNCTION blockwatch_rollup_mark()")
        op.execute(PG_TRUNCATE_FUNCTION)
        op.execute("CREATE TRIGGER daily_rollups_mark_truncate AFTER TRUNCATE ON daily_rollups "
                   "FOR EACH STATEMENT EXECUTE FUNCTION blockwatch_rollup_mark_all()")
        return
    op.execute("CREATE TRIGGER daily_rollups_mark_insert AFTER INSERT ON daily_rollups "
               f"BEGIN {SQLITE_BUMP.format('NEW')} END")
    op.execute("CREATE TRIGGER daily_rollups_mark_delete AFTER DELETE ON daily_rollups "
               f"BEGIN {SQLITE_BUMP.format('OLD')} END")
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in SHOWN)
    op.execute("CREATE TRIGGER daily_rollups_mark_update AFTER UPDATE ON daily_rollups "
               f"WHEN {changed} BEGIN {SQLITE_BUMP.format('OLD')} "
               f"{SQLITE_BUMP.format('NEW')} END")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS daily_rollups_mark_update" +
               (" ON daily_rollups" if op.get_bind().dialect.name == "postgresql" else ""))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS daily_rollups_mark ON daily_rollups")
        op.execute("DROP TRIGGER IF EXISTS daily_rollups_mark_truncate ON daily_rollups")
        op.execute("DROP FUNCTION IF EXISTS blockwatch_rollup_mark()")
        op.execute("DROP FUNCTION IF EXISTS blockwatch_rollup_mark_all()")
    else:
        op.execute("DROP TRIGGER IF EXISTS daily_rollups_mark_insert")
        op.execute("DROP TRIGGER IF EXISTS daily_rollups_mark_delete")
    op.execute("DROP TABLE rollup_marks")
