//! The Frappe reference recordings replayed by `scripts/compat` on each backend: the only
//! failure allowed is `console-effects-interlude`, a consequence of the declared deviation 313.

use std::collections::BTreeSet;
use std::process::Command;

use crate::helpers::*;

/// Runs `scripts/compat <backend>` on its own ports and returns its output lines.
fn run_compat(backend: &str, port: u16, provider_port: u16) -> Vec<String> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = Command::new(format!("{root}/scripts/compat"));
    cmd.arg(backend)
        .current_dir(root)
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

fn assert_only_the_declared_consequence_fails(lines: &[String]) {
    let all = lines.join("\n");
    let fails: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("FAIL "))
        .map(|l| l.split(':').next().unwrap_or(l))
        .collect();
    assert_eq!(
        fails,
        BTreeSet::from(["console-effects-interlude"]),
        "compat output:\n{all}"
    );
    let last = lines.last().map(String::as_str).unwrap_or("");
    let (passed, failed) = last
        .split_once(" passed, ")
        .unwrap_or_else(|| panic!("last line is not a summary: {last:?}\n{all}"));
    assert_eq!(failed, "1 failed", "{all}");
    assert!(passed.parse::<u32>().unwrap_or(0) > 100, "{all}");
}

#[test]
fn the_frappe_recordings_replay_on_sqlite_with_only_the_declared_failure() {
    assert_only_the_declared_consequence_fails(&run_compat("sqlite", 18811, 19211));
}

#[test]
fn the_frappe_recordings_replay_on_mariadb_with_only_the_declared_failure() {
    assert_only_the_declared_consequence_fails(&run_compat("mysql", 18812, 19212));
}
