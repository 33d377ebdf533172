"""Writer cost of SQLite claim variants, per job, outside Steward.

Why it exists: `steward bench jobs` on SQLite varies by about 10 % from run
to run on a 2-core machine, too much to see a change of 1-2 % in one
statement. This loop runs only the statements, on one connection, in one
thread: enqueue 100,000 jobs in batches of 1,000, then claim 64 at a time and
complete each claim with one statement, until the queue is empty; it prints
microseconds per job for the inserts and for claim + completion.

The statements are copies, reduced to what costs (no clock CTE, no unique
keys), of `crates/steward-store-sqlite/src/ops/claim.rs` and `lease.rs` at
the commit that added this file; the indexes those of migrations 0003-0005.
It compares variants of the claim with each other, so it is kept apart from
the store's code: when the store's statements change, change these too.

Run: python3 bench/sqlite-claim/claim_cost.py [ROUNDS]
"""

import json
import os
import sqlite3
import sys
import tempfile
import time

STATES = "(state = 'scheduled' OR state = 'available' OR state = 'retryable')"
TABLE = """CREATE TABLE steward_jobs (id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, queue TEXT NOT NULL, payload TEXT NOT NULL, priority INTEGER NOT NULL,
    state TEXT NOT NULL, attempt INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,
    run_at INTEGER NOT NULL, created_at INTEGER NOT NULL, attempted_at INTEGER,
    finished_at INTEGER, lease_token INTEGER, lease_expires_at INTEGER, worker TEXT,
    rescues INTEGER NOT NULL DEFAULT 0, interrupted INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0, checkpoint TEXT, timeout_ms INTEGER,
    unique_key TEXT, unique_scope TEXT, unique_held TEXT,
    errors TEXT NOT NULL DEFAULT '[]') STRICT"""

# Before issue 11: one claim index over every queued job.
INDEXES_BEFORE = [
    f"CREATE INDEX steward_jobs_claim ON steward_jobs (queue, priority, run_at) WHERE {STATES}",
]
# Migration 0005: the claim index and the suspects index split the queued jobs.
INDEXES_NOW = [
    f"CREATE INDEX steward_jobs_claim ON steward_jobs (queue, priority, run_at) "
    f"WHERE rescues < 2 AND {STATES}",
    f"CREATE INDEX steward_jobs_suspects ON steward_jobs (queue, priority, run_at) "
    f"WHERE rescues >= 2 AND {STATES}",
]

SET = """SET state = 'running', attempt = attempt + 1, attempted_at = :now, worker = 'w',
    lease_token = random(), lease_expires_at = :now + 30000,
    unique_held = CASE WHEN unique_scope = 'queued' THEN NULL ELSE unique_held END"""
KINDS = "(:kinds IS NULL OR kind IN (SELECT value FROM json_each(:kinds)))"

# Before issue 11: one walk, no kinds, no suspects.
CLAIM_BEFORE = f"""UPDATE steward_jobs {SET} WHERE id IN (
    SELECT id FROM steward_jobs WHERE {STATES} AND queue = 'default' AND run_at <= :now
    ORDER BY priority, run_at, id LIMIT :limit) RETURNING id, lease_token"""

# One walk of the claim index of migration 0005 (suspects never taken).
CLAIM_ONE_WALK = f"""UPDATE steward_jobs {SET} WHERE id IN (
    SELECT id FROM steward_jobs WHERE rescues < 2 AND {STATES} AND queue = 'default'
        AND run_at <= :now AND {KINDS}
    ORDER BY priority, run_at, id LIMIT :limit) RETURNING id, lease_token, rescues"""

# The claim as it is: a walk of the suspects index, then of the claim index.
CLAIM_NOW = f"""WITH suspect(id) AS (
    SELECT id FROM steward_jobs WHERE rescues >= 2 AND {STATES} AND queue = 'default'
        AND run_at <= :now AND {KINDS}
    ORDER BY priority, run_at, id LIMIT min(:suspects, :limit))
UPDATE steward_jobs {SET} WHERE id IN (
    SELECT id FROM suspect UNION ALL SELECT id FROM (
        SELECT id FROM steward_jobs WHERE rescues < 2 AND {STATES} AND queue = 'default'
            AND run_at <= :now AND {KINDS}
        ORDER BY priority, run_at, id LIMIT :limit - (SELECT count(*) FROM suspect)))
RETURNING id, lease_token, rescues"""

COMPLETE = """UPDATE steward_jobs SET state = 'completed', finished_at = :now,
    lease_token = NULL, lease_expires_at = NULL, worker = NULL, rescues = 0
    WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'running'"""

JOBS = 100_000
CLAIM_SIZE = 64
WORKER_KINDS = json.dumps(["noop", "sleep", "fail"])

VARIANTS = [
    ("before issue 11 (one walk, one index)", INDEXES_BEFORE, CLAIM_BEFORE, None),
    ("one walk, both indexes, no kinds", INDEXES_NOW, CLAIM_ONE_WALK, None),
    ("one walk, both indexes, kinds", INDEXES_NOW, CLAIM_ONE_WALK, WORKER_KINDS),
    ("now: two walks, no kinds", INDEXES_NOW, CLAIM_NOW, None),
    ("now: two walks, kinds", INDEXES_NOW, CLAIM_NOW, WORKER_KINDS),
]


def run(indexes, claim, kinds):
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(os.path.join(tmp, "jobs.db"), isolation_level=None)
        for pragma in ("journal_mode=wal", "synchronous=normal",
                       "mmap_size=268435456", "cache_size=-16384"):
            db.execute(f"PRAGMA {pragma}")
        db.execute(TABLE)
        for index in indexes:
            db.execute(index)
        rows = [(i, i) for i in range(JOBS)]
        started = time.perf_counter()
        for i in range(0, JOBS, 1000):
            db.execute("BEGIN")
            db.executemany(
                "INSERT INTO steward_jobs (kind, queue, payload, priority, state, max_attempts,"
                " run_at, created_at) VALUES ('noop', 'default', '{\"n\":1}', 0, 'available',"
                " 25, ?, ?)", rows[i:i + 1000])
            db.execute("COMMIT")
        enqueued = time.perf_counter()
        done = 0
        params = {"now": 200_000, "limit": CLAIM_SIZE, "suspects": 1, "kinds": kinds}
        while True:
            leases = db.execute(claim, params).fetchall()
            if not leases:
                break
            done += len(leases)
            db.execute(COMPLETE, {"now": 200_000, "ids": json.dumps([l[0] for l in leases])})
        finished = time.perf_counter()
        db.close()
        assert done == JOBS, done
        return ((enqueued - started) * 1e6 / JOBS, (finished - enqueued) * 1e6 / JOBS)


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    results = {name: [] for name, *_ in VARIANTS}
    # Variants alternate within each round, so a busy moment hits them alike.
    for _ in range(rounds):
        for name, indexes, claim, kinds in VARIANTS:
            results[name].append(run(indexes, claim, kinds))
    print(f"SQLite {sqlite3.sqlite_version}, {JOBS} jobs, claims of {CLAIM_SIZE}, "
          f"median of {rounds} rounds, microseconds per job:")
    for name, runs in results.items():
        insert = sorted(r[0] for r in runs)[len(runs) // 2]
        cycle = sorted(r[1] for r in runs)[len(runs) // 2]
        print(f"  {name:40} insert {insert:5.2f}  claim+complete {cycle:5.2f}")


if __name__ == "__main__":
    main()
