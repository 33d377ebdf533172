//! The endpoints' status codes and bodies, against a real host over TCP.

mod common;

use std::time::Duration;

use common::{FailOnSignal, Idle, Running, SlowInit, SlowStop, builder, get, request};
use steward_core::{ExitStatus, FailurePolicy, RestartPolicy};
use steward_http::HttpServer;
use tokio::sync::oneshot;

#[tokio::test]
async fn healthy_host_is_live_and_ready() {
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr();
    let mut b = builder();
    b.service("http", server).expect("register http");
    b.service("worker", Idle).expect("register worker");
    let host = Running::start(b.build().expect("build"));

    let ready = common::wait_for_status(addr, "/readyz", 200).await;
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["shutting_down"], false);
    assert_eq!(ready.body["not_ready"], serde_json::json!([]));
    assert!(
        ready
            .headers
            .to_ascii_lowercase()
            .contains("application/json"),
        "{}",
        ready.headers
    );

    let health = get(addr, "/healthz").await;
    assert_eq!(health.status, 200, "{:?}", health.body);
    assert_eq!(health.body["status"], "ok");
    assert_eq!(health.body["faulted"], serde_json::json!([]));

    assert_eq!(host.stop().await, ExitStatus::Clean);
}

#[tokio::test]
async fn faulted_service_makes_healthz_unavailable_and_names_it() {
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr();
    let (fail, fail_rx) = oneshot::channel();
    let mut b = builder();
    b.service("http", server).expect("register http");
    b.service(
        "flaky",
        FailOnSignal {
            fail: Some(fail_rx),
            error: "database unreachable",
        },
    )
    .expect("register flaky")
    .policy(FailurePolicy::Ignore);
    let host = Running::start(b.build().expect("build"));

    // Live before the failure...
    common::wait_for_status(addr, "/readyz", 200).await;
    let before = get(addr, "/healthz").await;
    assert_eq!(before.status, 200, "{:?}", before.body);

    // ...and not after, with the culprit and its error in the body.
    fail.send(()).expect("flaky is waiting");
    let after = common::wait_for_status(addr, "/healthz", 503).await;
    assert_eq!(after.body["status"], "faulted");
    let faulted = after.body["faulted"].as_array().expect("faulted is a list");
    assert_eq!(faulted.len(), 1, "{:?}", after.body);
    assert_eq!(faulted[0]["name"], "flaky");
    assert_eq!(faulted[0]["state"], "faulted");
    let error = faulted[0]["error"].as_str().expect("error is a string");
    assert!(error.contains("database unreachable"), "{error}");

    // The host stops, and its exit status names the service left faulted.
    let exit = host.stop().await;
    assert_eq!(exit.code(), 4, "{exit:?}");
    assert_eq!(exit.failures()[0].name, "flaky");
}

#[tokio::test]
async fn readyz_is_unavailable_until_every_init_finished() {
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr();
    let (release, release_rx) = oneshot::channel();
    let mut b = builder();
    b.service("http", server).expect("register http");
    b.service(
        "warming",
        SlowInit {
            release: Some(release_rx),
        },
    )
    .expect("register warming");
    let host = Running::start(b.build().expect("build"));

    // The server answers while another service is still in its init.
    let waiting = get(addr, "/readyz").await;
    assert_eq!(waiting.status, 503, "{:?}", waiting.body);
    assert_eq!(waiting.body["status"], "not_ready");
    assert_eq!(waiting.body["shutting_down"], false);
    let names: Vec<&str> = waiting.body["not_ready"]
        .as_array()
        .expect("not_ready is a list")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"warming"), "{:?}", waiting.body);
    // Starting is not a failure: the host is live meanwhile.
    assert_eq!(get(addr, "/healthz").await.status, 200);

    release.send(()).expect("warming is waiting");
    let ready = common::wait_for_status(addr, "/readyz", 200).await;
    assert_eq!(ready.body["status"], "ready");

    assert_eq!(host.stop().await, ExitStatus::Clean);
}

#[tokio::test]
async fn readyz_says_shutting_down_while_the_host_stops() {
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr();
    let (release, release_rx) = oneshot::channel();
    let mut b = builder();
    // Registered last, and stopped last all the same (HttpServer::STOPS_LAST):
    // it still answers while `draining` stops.
    b.service(
        "draining",
        SlowStop {
            release: Some(release_rx),
        },
    )
    .expect("register draining");
    b.service("http", server).expect("register http");
    let host = Running::start(b.build().expect("build"));
    common::wait_for_status(addr, "/readyz", 200).await;

    host.handle.shutdown();
    let stopping = common::wait_for_status(addr, "/readyz", 503).await;
    assert_eq!(stopping.body["status"], "shutting_down");
    assert_eq!(stopping.body["shutting_down"], true);

    release.send(()).expect("draining is waiting");
    assert_eq!(host.wait().await, ExitStatus::Clean);
}

#[tokio::test]
async fn status_shows_services_and_channels() {
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr();
    let (fail, fail_rx) = oneshot::channel();
    let mut b = builder();
    b.service("http", server).expect("register http");
    let (tx, _rx) = b.channel::<u32>("work", 8).expect("channel");
    // Fails once, is restarted quickly, then keeps running.
    b.service(
        "bouncy",
        FailOnSignal {
            fail: Some(fail_rx),
            error: "lost the lease",
        },
    )
    .expect("register bouncy")
    .policy(FailurePolicy::Restart(RestartPolicy {
        initial_backoff: Duration::from_millis(10),
        ..RestartPolicy::default()
    }));
    let host = Running::start(b.build().expect("build"));
    for n in 0..3 {
        tx.try_send(n).expect("room in the channel");
    }
    common::wait_for_status(addr, "/readyz", 200).await;
    fail.send(()).expect("bouncy is waiting");

    let status = common::eventually("bouncy to be restarted and running", || async {
        let response = get(addr, "/status").await;
        assert_eq!(response.status, 200, "{:?}", response.body);
        let services = response.body["services"].as_array()?;
        let bouncy = services.iter().find(|s| s["name"] == "bouncy")?;
        (bouncy["restarts"] == 1 && bouncy["state"] == "running").then_some(response.body)
    })
    .await;

    assert_eq!(status["live"], true);
    // Restarted and not yet stable: still live, but the body says degraded.
    let health = get(addr, "/healthz").await;
    assert_eq!(health.status, 200, "{:?}", health.body);
    assert_eq!(health.body["status"], "degraded", "{:?}", health.body);
    assert_eq!(health.body["degraded"][0]["name"], "bouncy");
    let problem = health.body["degraded"][0]["problem"]
        .as_str()
        .expect("problem");
    assert!(problem.contains("crash-looping"), "{problem}");
    assert_eq!(status["health"], "degraded");
    let services = status["services"].as_array().expect("services");
    let names: Vec<&str> = services.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["http", "bouncy"]);
    let bouncy = &services[1];
    let last_error = bouncy["last_error"]["message"]
        .as_str()
        .expect("last error");
    assert!(last_error.contains("lost the lease"), "{last_error}");
    assert!(bouncy.get("last_tick").is_some(), "{bouncy}");
    assert_eq!(
        status["channels"],
        serde_json::json!([{ "name": "work", "capacity": 8, "depth": 3 }])
    );

    // Nobody received the three items: the exit status says so.
    let exit = host.stop().await;
    assert_eq!(exit.code(), 5, "{exit:?}");
    assert_eq!(exit.failures()[0].name, "work");
}

#[tokio::test]
async fn unknown_paths_and_methods_get_json_errors() {
    let server = HttpServer::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr();
    let mut b = builder();
    b.service("http", server).expect("register http");
    let host = Running::start(b.build().expect("build"));

    let missing = get(addr, "/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        serde_json::json!({ "error": "not found", "method": "GET", "path": "/nope" })
    );

    let wrong_method = request(addr, "POST", "/healthz").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.body["error"], "method not allowed");
    assert_eq!(wrong_method.body["path"], "/healthz");

    assert_eq!(host.stop().await, ExitStatus::Clean);
}
