//! Cross-check with the external `compat-check` tool, when it sits beside the repository
//! (`../shared/compat-check`, or `$COMPAT_CHECK`): `scripts/compat` replays the Frappe recordings with it on each
//! backend, and every exchange must pass or be declared in `tests/compat/deviations.json`
//! (`N passed, 0 failed`). Without the tool these tests say so and pass; the same recordings are
//! replayed by the project's own code in `replay.rs` either way.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::*;

/// The external checker, if it is there: `$COMPAT_CHECK`, else `../shared/compat-check`.
fn checker() -> Option<PathBuf> {
    let path = match std::env::var_os("COMPAT_CHECK") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/compat-check"),
    };
    path.is_file().then_some(path)
}

/// Runs `scripts/compat <backend>` with the external checker on its own ports and returns its
/// output lines.
fn run_compat(
    checker: &std::path::Path,
    backend: &str,
    port: u16,
    provider_port: u16,
) -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new(format!("{root}/scripts/compat"));
    cmd.arg(backend)
        .current_dir(root)
        .env("COMPAT_CHECK", checker)
        .env("COMPAT_PORT", port.to_string())
        .env("COMPAT_PROVIDER_PORT", provider_port.to_string());
    if backend == "mysql" {
        // The script talks to MariaDB through the mysql client on 127.0.0.1 as root.
        let url = mysql_server_url();
        assert!(
            url.starts_with("mysql://root@127.0.0.1"),
            "scripts/compat mysql needs root@127.0.0.1, not {url}"
        );
    }
    let out = cmd.output().expect("run scripts/compat");
    // The report is on stdout; the set-up chatter (users created, build output) on stderr.
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    if lines.is_empty() {
        lines.push(format!(
            "no report; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    lines
}

fn assert_nothing_undeclared_fails(lines: &[String]) {
    let all = lines.join("\n");
    let fails: Vec<&String> = lines.iter().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(fails.is_empty(), "compat output:\n{all}");
    // the interlude, impossible because of the declared deviation 313, is declared too
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("DECLARED console-effects-interlude")),
        "compat output:\n{all}"
    );
    let last = lines.last().map(String::as_str).unwrap_or("");
    let (passed, failed) = last
        .split_once(" passed, ")
        .unwrap_or_else(|| panic!("last line is not a summary: {last:?}\n{all}"));
    assert_eq!(failed, "0 failed", "{all}");
    assert!(passed.parse::<u32>().unwrap_or(0) > 100, "{all}");
}

fn cross_check(backend: &str, port: u16, provider_port: u16) {
    let Some(checker) = checker() else {
        println!(
            "skipped: the external checker (../shared/compat-check, or $COMPAT_CHECK) is not there; \
             the recordings are replayed by tests/api/replay.rs instead"
        );
        return;
    };
    assert_nothing_undeclared_fails(&run_compat(&checker, backend, port, provider_port));
}

#[test]
fn the_external_checker_passes_on_sqlite_when_present() {
    cross_check("sqlite", 18811, 19211);
}

#[test]
fn the_external_checker_passes_on_mariadb_when_present() {
    cross_check("mysql", 18812, 19212);
}
