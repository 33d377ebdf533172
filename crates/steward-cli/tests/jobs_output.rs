//! What `steward jobs ...` prints on SQLite, checked as a newcomer meets it
//! (issue 12, item 6): no surprise file, every field in text, one time format,
//! JSON that ends with one newline.

use std::path::Path;
use std::process::{Command, Output};

fn steward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn read_only_commands_on_a_missing_database_say_so_and_create_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.db");
    let store = format!("sqlite://{}", path.display());
    for args in [
        vec!["jobs", "counts"],
        vec!["jobs", "counts", "--json"],
        vec!["jobs", "show", "1"],
        vec!["jobs", "show", "1", "--json"],
        vec!["jobs", "retry", "1"],
        vec!["jobs", "cancel", "1"],
    ] {
        let out = steward(&[&args[..], &["--store", &store]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("no database at {}", path.display())),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("steward migrate --store {store}")),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: printed something");
        assert_eq!(files_in(dir.path()), Vec::<String>::new(), "{args:?}");
    }
}
