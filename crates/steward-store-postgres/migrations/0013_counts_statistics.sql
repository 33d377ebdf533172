-- Counts per queue and per kind (issue 14): `grouped_counts` reads
-- `GROUP BY queue, kind, state` over the whole table. Without statistics on
-- the three columns together the planner multiplies their separate estimates,
-- expects tens of thousands of groups, and sorts every row (at 1,000,000 jobs
-- the sort spilled to disk: 2.0 s); knowing the real number (hundreds) it
-- hashes them in a few kB (1.0-1.3 s on the same machine). Extended
-- statistics are built by ANALYZE (autovacuum's, or an operator's) and are
-- never touched by an INSERT or UPDATE, so enqueue, claim and finish cost
-- exactly what they did. Nothing to grant: statistics are not read through
-- privileges.
CREATE STATISTICS {schema}.jobs_queue_kind_state (ndistinct) ON queue, kind, state
    FROM {schema}.jobs;
