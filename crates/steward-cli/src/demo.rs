//! `steward demo`: a small host that shows every part working: a periodic
//! service, a producer/consumer pipeline with back-pressure, a flaky service
//! that faults and is restarted, the health endpoints, and durable jobs on
//! an embedded SQLite file (`./steward-demo.db`): a worker, maintenance, and
//! a stream of demo jobs, some slow, some flaky, some checkpointing, and a
//! durable recurring schedule (every 10 seconds) run by the scheduler.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use rand::Rng;
use steward::http::HttpServer;
use steward::jobs::{Client, EnqueueOptions, Job, JobContext, Maintenance, Scheduler, Worker};
use steward::sqlite::SqliteStore;
use steward::store::ScheduleDef;
use steward::store::Store as _;

use crate::kinds;
use steward::{
    BoxError, Context, ExitStatus, FailurePolicy, Host, HostHandle, Receiver, RestartPolicy,
    Sender, Service, ServiceState,
};

/// Options of `steward demo`.
#[derive(Args)]
pub struct DemoArgs {
    /// Where to serve /healthz, /readyz and /status.
    #[arg(long, default_value = "127.0.0.1:8080", env = "STEWARD_HTTP")]
    http: String,
    /// Stop by itself after this long (default: run until Ctrl-C).
    #[arg(long = "for", value_parser = crate::parse_duration, env = "STEWARD_FOR")]
    run_for: Option<Duration>,
    /// The shutdown timeout.
    #[arg(long, default_value = "10s", value_parser = crate::parse_duration, env = "STEWARD_SHUTDOWN_TIMEOUT")]
    shutdown_timeout: Duration,
    /// The job store the demo's jobs go to.
    #[arg(long, default_value = crate::store_url::DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

/// One order flowing through the pipeline.
struct Order {
    id: u64,
}

/// Takes orders off the channel and handles up to four at once.
struct OrderConsumer {
    orders: Receiver<Order>,
    handled: Arc<AtomicU64>,
}

impl Service for OrderConsumer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut workers = ctx.task_group(4)?;
        // recv drains what is queued after shutdown starts, so no order is lost.
        while let Some(order) = self.orders.recv(ctx).await {
            let handled = self.handled.clone();
            let work = Duration::from_millis(rand::rng().random_range(50..250));
            workers
                .spawn(move |_token| async move {
                    // A unit of work finishes even during shutdown: it is short.
                    tokio::time::sleep(work).await;
                    handled.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(order = order.id, "order handled");
                    Ok(())
                })
                .await?;
        }
        workers.join().await?;
        Ok(())
    }
}

/// Puts a burst of up to four orders on the channel every 100 ms, a little
/// faster on average than the consumer handles them at times, so the channel
/// fills and the producer waits: back-pressure, visible as the channel's depth.
struct OrderProducer {
    orders: Sender<Order>,
    next: u64,
}

impl Service for OrderProducer {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let mut ticker = ctx.every(Duration::from_millis(100))?;
        while ticker.tick().await.is_some() {
            self.next += 1;
            if self
                .orders
                .send(Order { id: self.next }, ctx)
                .await
                .is_err()
            {
                break; // asked to stop while the channel was full
            }
        }
        Ok(())
    }
}

/// The demo's recurring job: the scheduler enqueues one every 10 seconds,
/// once however many demos share the store, and not lost across restarts.
#[derive(serde::Serialize, serde::Deserialize)]
struct DemoReport {
    title: String,
}

impl Job for DemoReport {
    const KIND: &'static str = "demo_report";
    async fn run(self, ctx: JobContext) -> Result<(), BoxError> {
        tracing::info!(job = %ctx.id(), title = %self.title, "recurring report ran");
        Ok(())
    }
}

/// Fails now and then, by error or by panic, to show supervision at work.
struct Flaky;

/// The demo's error with a cause, to show the full chain in logs and status.
#[derive(Debug, thiserror::Error)]
#[error("syncing with upstream failed")]
struct UpstreamError(#[source] std::io::Error);

impl Service for Flaky {
    async fn run(&mut self, ctx: &Context) -> Result<(), BoxError> {
        let lifetime = Duration::from_millis(rand::rng().random_range(2_000..6_000));
        ctx.sleep(lifetime).await?;
        if rand::rng().random_bool(0.3) {
            panic!("flaky: simulated bug");
        }
        let cause = std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        );
        Err(Box::new(UpstreamError(cause)))
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let handled = Arc::new(AtomicU64::new(0));
    let mut builder = Host::builder();
    builder.shutdown_timeout(args.shutdown_timeout);
    let http = HttpServer::bind(&args.http)?;
    let addr = http.local_addr();
    builder.service("http", http)?;

    let (tx, rx) = builder.channel::<Order>("orders", 16)?;
    // The consumer is registered before its producer so that it stops after
    // it, draining the channel.
    builder.service(
        "order-consumer",
        OrderConsumer {
            orders: rx,
            handled: handled.clone(),
        },
    )?;
    builder.service(
        "order-producer",
        OrderProducer {
            orders: tx,
            next: 0,
        },
    )?;

    let counted = handled.clone();
    builder.periodic("heartbeat", Duration::from_secs(2), move |ctx| {
        let counted = counted.clone();
        async move {
            let status = ctx.host().status();
            let depth = status.channels.first().map_or(0, |c| c.depth);
            tracing::info!(
                orders_handled = counted.load(Ordering::Relaxed),
                queue_depth = depth,
                live = status.live,
                ready = status.ready,
                "heartbeat"
            );
            Ok(())
        }
    })?;

    builder
        .service("flaky", Flaky)?
        .policy(FailurePolicy::Restart(RestartPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            max_restarts: 1_000,
            ..RestartPolicy::default()
        }));

    // Durable jobs: a worker for the built-in kinds, maintenance, and a
    // stream of demo jobs (some slow, some flaky, some checkpointing).
    let store =
        crate::store_url::open_sqlite(&args.store, true, steward::sqlite::Synchronous::Normal)
            .await?;
    let worker = crate::kinds::register(Worker::new(store.clone()));
    // The demo enqueues `panic` jobs itself, to show a panic caught and retried.
    let worker = worker
        .register::<crate::kinds::Panic>()
        .register::<DemoReport>()
        .queue("default", 8)
        .state(crate::kinds::Journal(None));
    builder.service("maintenance", Maintenance::new(store.clone()))?;
    builder.service("worker", worker)?;
    // A recurring job, declared in code and kept in the store: see it with
    // `steward schedules show demo-report`.
    let report = DemoReport {
        title: "demo report".to_string(),
    };
    builder.service(
        "scheduler",
        Scheduler::new(store.clone())
            .job(ScheduleDef::at("demo-report", "*/10 * * * * *"), &report),
    )?;
    let client = Client::new(store.clone());
    builder.periodic("job-producer", Duration::from_millis(300), move |_ctx| {
        let client = client.clone();
        async move {
            enqueue_demo_job(&client).await?;
            Ok(())
        }
    })?;

    let host = builder.build()?;
    let handle = host.handle();
    tracing::info!(
        "demo running; health at http://{addr}/healthz, status at http://{addr}/status; Ctrl-C to stop"
    );
    let stopper = args.run_for.map(|after| {
        let handle = handle.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            handle.shutdown();
        })
    });
    let status = host.run().await;
    if let Some(stopper) = stopper {
        stopper.abort();
    }
    print_summary(&handle, &status, handled.load(Ordering::Relaxed));
    let counts = store.counts().await?;
    println!(
        "jobs in {}: {} completed, {} retryable, {} dead, {} available, {} scheduled",
        args.store,
        counts.completed,
        counts.retryable,
        counts.dead,
        counts.available,
        counts.scheduled
    );
    store.close().await;
    Ok(status.into())
}

/// One random demo job: mostly quick, some slow, some flaky, some
/// checkpointing, now and then one that panics.
async fn enqueue_demo_job(client: &Client<SqliteStore>) -> Result<(), BoxError> {
    let roll = rand::rng().random_range(0..100);
    let opts = EnqueueOptions::default();
    match roll {
        0..40 => client.enqueue(kinds::Noop {}).await.map(drop)?,
        40..65 => {
            let ms = rand::rng().random_range(50..800);
            client.enqueue(kinds::Sleep { ms }).await.map(drop)?
        }
        65..85 => {
            let times = rand::rng().random_range(1..=2);
            client.enqueue(kinds::Fail { times }).await.map(drop)?
        }
        85..97 => client
            .enqueue(kinds::Checkpoint { steps: 5, ms: 200 })
            .await
            .map(drop)?,
        _ => client.enqueue_with(kinds::Panic {}, opts).await.map(drop)?,
    }
    Ok(())
}

/// One line per service, then the host's exit status.
fn print_summary(handle: &HostHandle, status: &ExitStatus, handled: u64) {
    println!("summary:");
    for s in handle.status().services {
        let state = match &s.state {
            ServiceState::Faulted { error, .. } => format!("faulted ({error})"),
            other => format!("{other:?}").to_lowercase(),
        };
        let last_error = s
            .last_error
            .as_ref()
            .map_or(String::new(), |e| format!(", last error: {}", e.message));
        println!("  {}: {state}, restarts {}{last_error}", s.name, s.restarts);
    }
    println!("orders handled: {handled}");
    println!("exit: {status}");
}
