//! The command line: `serve`, `migrate`, `user add`, `user api-key`, `user set-password`,
//! `rotate-key`, `import`. Each command's help lists its own options first, then the options
//! every command takes; the server options are listed under `serve` only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::configuration::Settings;
pub use crate::configuration::{GlobalSettings, ServeOptions, ServerOptions};

#[derive(Debug, Parser)]
#[command(
    name = "connected-apps",
    version,
    about = "Frappe-compatible Connected App and Token Cache service"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    /// The server options given before the subcommand (`connected-apps --bind … serve`, as
    /// earlier versions took them); hidden from the help, which lists them under `serve`.
    #[command(flatten)]
    pub server: ServerOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (where the service's data is, logging); each also has an
/// environment variable.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Service data and logging (every command)")]
pub struct GlobalOptions {
    /// A JSON file with settings (applied before environment variables and flags).
    #[arg(long, global = true, env = "CONNECTED_APPS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: GlobalSettings,
}

// Parsed once per process: `serve`'s options inline are simpler than a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrations are applied first).
    Serve {
        #[command(flatten)]
        server: ServerOptions,
        #[command(flatten)]
        serve: ServeOptions,
    },
    /// Apply database migrations and exit (creates the database when it does not exist).
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Re-encrypt every secret under a new key (the old key stays a fallback until it finishes).
    RotateKey,
    /// Copy Connected Apps, Token Caches and their users from a Frappe site's database.
    ///
    /// Users that already exist in the service's database (Administrator included) are left
    /// as they are unless --overwrite-users is given.
    Import {
        /// The Frappe site's database (mysql://user:pass@host/site_db).
        #[arg(long = "from")]
        from: String,
        /// The Frappe site's site_config.json (for its encryption_key). Without it, the
        /// --site-config given to `import` is taken as the Frappe site's (earlier spelling).
        #[arg(long, alias = "from-site-config")]
        frappe_site_config: Option<PathBuf>,
        /// Report what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Replace users that already exist here (password hash, roles, API key) with the site's.
        #[arg(long)]
        overwrite_users: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (every user also has the role All).
    Add {
        email: String,
        #[arg(long)]
        first_name: Option<String>,
        /// A role such as "System Manager"; repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// The login password [default: none: the user signs in with API keys only]
        #[arg(long, env = "CONNECTED_APPS_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Set a user's login password (Administrator included).
    SetPassword {
        email: String,
        /// The new password [default: read from standard input when it is not a terminal,
        /// else generated and printed]
        #[arg(long, env = "CONNECTED_APPS_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Generate a new API key and secret; prints `api_key:api_secret`.
    ApiKey { email: String },
}

/// Parses the command line. The server options are accepted before the subcommand too (as
/// earlier versions did) but listed only in `serve --help`.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    let ids: Vec<clap::Id> = <ServerOptions as Args>::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect();
    for id in ids {
        cmd = cmd.mut_arg(id, |a| a.hide(true));
    }
    let matches = cmd.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

impl GlobalOptions {
    /// Defaults, then the config file, then environment and flags.
    pub fn settings(&self, server: &ServerOptions) -> anyhow::Result<Settings> {
        let mut s = Settings::default();
        if let Some(path) = &self.config {
            s.apply_file(path)?;
        }
        self.settings.clone().apply_to(&mut s);
        server.clone().apply_to(&mut s);
        Ok(s)
    }
}
