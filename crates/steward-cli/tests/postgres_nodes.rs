//! `steward nodes` on PostgreSQL with real `steward worker` processes (issue
//! 14, "Nodes"): both are listed with their services; a SIGKILLed one stays
//! until its ttl passes, then vanishes; one stopped cleanly (SIGTERM)
//! vanishes at once. No skip: without the server this test fails.

mod common;
mod pg_processes;

use std::time::{Duration, Instant};

use pg_processes::*;
use serde_json::Value;

/// Short, so the test is quick: refreshed every 200 ms, gone 2 s after.
const NODE_FLAGS: [&str; 4] = ["--node-refresh", "200ms", "--node-ttl", "2s"];
const TTL: Duration = Duration::from_secs(2);

/// `steward nodes --json`, parsed: one JSON array.
fn nodes(env: &Env) -> Vec<Value> {
    let out = run_ok(&["nodes", "--json", "--store", &env.store]);
    assert!(
        out.ends_with("}\n]\n") || out == "[]\n",
        "one JSON value and one newline: {out:?}"
    );
    match serde_json::from_str(&out) {
        Ok(Value::Array(nodes)) => nodes,
        other => panic!("not a JSON array: {other:?} from {out}"),
    }
}

/// The listed node whose host is `host` (the worker's `HOSTNAME`).
fn on_host<'a>(nodes: &'a [Value], host: &str) -> Option<&'a Value> {
    nodes.iter().find(|n| n["host"] == host)
}

fn service_names(node: &Value) -> Vec<String> {
    node["services"]
        .as_array()
        .map(|s| {
            s.iter()
                .filter_map(|s| s["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn nodes_lists_workers_with_services_and_drops_killed_and_stopped_ones() {
    let env = Env::new();
    run_ok(&["migrate", "--store", &env.store]);
    let mut killed = env.worker("node-k", &NODE_FLAGS);
    let mut stopped = env.worker("node-s", &NODE_FLAGS);
    wait_until("both workers listed", Duration::from_secs(30), || {
        let all = nodes(&env);
        on_host(&all, "node-k").is_some() && on_host(&all, "node-s").is_some()
    });

    let all = nodes(&env);
    assert_eq!(all.len(), 2, "{all:#?}");
    let k = on_host(&all, "node-k").expect("node-k").clone();
    assert_eq!(k["pid"], killed.child.id());
    assert_eq!(k["queues"][0]["name"], "default");
    let names = service_names(&k);
    for wanted in ["http", "maintenance", "scheduler", "worker"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing from {names:?}"
        );
    }
    assert!(k["services"][0]["state"].is_string(), "{k:#}");
    let id = k["id"].as_str().expect("an id").to_string();
    assert!(id.starts_with("node-k:"), "the id names the host: {id}");

    // One node, as `show` prints it, and the table for people.
    let shown: Value = serde_json::from_str(&run_ok(&[
        "nodes", "show", &id, "--json", "--store", &env.store,
    ]))
    .expect("show prints JSON");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(service_names(&shown), names);
    let table = run_ok(&["nodes", "--store", &env.store]);
    assert!(table.contains(&id) && table.contains("node-s"), "{table}");
    assert!(
        table.contains("maintenance"),
        "services in the table: {table}"
    );

    // An unknown id: one line, exit 3.
    let out = common::steward()
        .args(["nodes", "show", "no-such-node", "--store", &env.store])
        .output()
        .expect("run steward");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("no-such-node"), "{err}");

    // SIGKILL: no goodbye, so the node stays until its ttl passes.
    killed.signal("-KILL");
    let _ = killed.child.wait();
    let gone_at = Instant::now();
    assert!(
        on_host(&nodes(&env), "node-k").is_some(),
        "a killed node stays listed until its ttl passes"
    );
    wait_until("the killed node expires", TTL * 5, || {
        on_host(&nodes(&env), "node-k").is_none()
    });
    assert!(
        gone_at.elapsed() >= TTL - Duration::from_millis(500),
        "the killed node vanished after {:?}, before its ttl",
        gone_at.elapsed()
    );

    // The live node's next refresh deletes the dead node's row.
    wait_until("the expired row swept", Duration::from_secs(5), || {
        env.query("SELECT count(*) FROM {s}.nodes") == "1"
    });

    // SIGTERM: a clean stop removes the row before the process exits.
    stopped.stop();
    assert_eq!(
        nodes(&env),
        Vec::<Value>::new(),
        "a cleanly stopped node is gone at once"
    );
    assert_eq!(env.query("SELECT count(*) FROM {s}.nodes"), "0");
}
