//! What the black-box tests of the `steward` binary share: how to run it,
//! and the time format it prints.

#![allow(dead_code)] // each test crate uses its own part of this module

use std::process::Command;

pub mod act;

/// The binary with no `STEWARD_*` variable or `RUST_LOG` from whoever runs
/// the tests (each test sees only what it sets), and no colours.
pub fn steward() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_steward"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STEWARD_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

/// Runs `steward ARGS`, fails the test unless it succeeds, returns stdout.
pub fn run_ok(args: &[&str]) -> String {
    let out = steward().args(args).output().expect("run steward");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "steward {args:?} failed ({:?}): {stdout}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, exactly: the one time format the CLI prints.
pub fn is_utc_millis(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// The PostgreSQL database the tests use (127.0.0.1:5432); each test makes
/// its own schema in it. No skip: without the server these tests fail.
pub const PG_DATABASE: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A PostgreSQL schema with a random name, dropped (with everything in it)
/// when the test ends, passed or failed.
pub struct PgSchema {
    /// The schema's name.
    pub name: String,
    /// The `--store` URL naming it.
    pub store: String,
}

impl PgSchema {
    /// A schema name no other test uses; nothing is created until a command
    /// (`steward migrate`) does.
    pub fn fresh() -> PgSchema {
        let name = format!("cli_test_{:016x}", rand::random::<u64>());
        let store = format!("{PG_DATABASE}?schema={name}");
        PgSchema { name, store }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let dropped = Command::new("psql")
            .args([
                PG_DATABASE,
                "--quiet",
                "--no-psqlrc",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.name),
            ])
            .output();
        match dropped {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "could not drop schema {}: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(err) => eprintln!("could not run psql to drop schema {}: {err}", self.name),
        }
    }
}
