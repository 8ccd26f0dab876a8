//! Black-box tests of the real service: each test builds the application on a random port
//! against its own fresh database (SQLite file or MariaDB database) and talks HTTP to it.

#[path = "../common/provider.rs"]
#[allow(dead_code)]
mod provider;

mod helpers;

mod foundation;
