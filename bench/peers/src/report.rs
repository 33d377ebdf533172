//! The comparison table.

use crate::harness::Outcome;

pub fn print(results: &[(String, Outcome)]) {
    let num =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    println!();
    println!(
        "{:<16} {:>11} {:>12} {:>8} {:>8} {:>10} {:>9} {:>7} {:>9}",
        "system",
        "enqueue/s",
        "processed/s",
        "p50 ms",
        "p99 ms",
        "worst p99",
        "max ms",
        "rounds",
        "peak MiB"
    );
    for (name, o) in results {
        println!(
            "{:<16} {:>11} {:>12} {:>8} {:>8} {:>10} {:>9} {:>7} {:>9}",
            name,
            num(o.enqueue_per_s, 0),
            num(o.processed_per_s, 0),
            num(o.p50_ms, 1),
            num(o.p99_ms, 1),
            num(o.worst_p99_ms, 1),
            num(o.max_ms, 1),
            o.rounds_done,
            o.peak_mib.map_or("-".to_string(), |m| m.to_string()),
        );
    }
    for (name, o) in results {
        if let Some(failure) = &o.failure {
            println!("{name}: {failure}");
        }
    }
    let Some((_, steward)) = results.iter().find(|(n, _)| n == "steward") else {
        return;
    };
    let ratio = |s: Option<f64>, p: Option<f64>| match (s, p) {
        (Some(s), Some(p)) if p > 0.0 => format!("{:.2}", s / p),
        _ => "-".to_string(),
    };
    println!();
    println!(
        "Steward / peer (throughput: above 1 is Steward faster; latency: below 1 is Steward faster)"
    );
    println!(
        "{:<16} {:>9} {:>11} {:>7} {:>7} {:>7}",
        "peer", "enqueue", "processed", "p50", "p99", "max"
    );
    for (name, o) in results.iter().filter(|(n, _)| n != "steward") {
        println!(
            "{:<16} {:>9} {:>11} {:>7} {:>7} {:>7}",
            name,
            ratio(steward.enqueue_per_s, o.enqueue_per_s),
            ratio(steward.processed_per_s, o.processed_per_s),
            ratio(steward.p50_ms, o.p50_ms),
            ratio(steward.p99_ms, o.p99_ms),
            ratio(steward.max_ms, o.max_ms),
        );
    }
}
