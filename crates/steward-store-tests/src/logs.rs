//! Log lines captured in memory, for tests that check what a worker or a
//! store tells its operator. Set for the current thread: use it from a
//! single-threaded runtime, where every task of the host logs through it.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::subscriber::DefaultGuard;

/// What was logged while the guard returned with it lived.
///
/// ```
/// let (logs, guard) = steward_store_tests::logs::capture(tracing::Level::INFO);
/// tracing::info!("hello");
/// drop(guard);
/// assert!(logs.line_with("hello").is_some());
/// ```
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

/// Captures every event at `level` and above logged on this thread until
/// the guard is dropped. Drop it before asserting: Steward's panic hook
/// logs through `tracing`, and a failed assertion would land in the buffer.
pub fn capture(level: tracing::Level) -> (Logs, DefaultGuard) {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(level)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

impl Logs {
    /// Everything captured so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The first line containing `text`.
    pub fn line_with(&self, text: &str) -> Option<String> {
        self.text()
            .lines()
            .find(|l| l.contains(text))
            .map(str::to_string)
    }
}

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Shown too, so a failing test's output has the logs.
        eprint!("{}", String::from_utf8_lossy(buf));
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
