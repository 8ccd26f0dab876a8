-- The service's own tables (see migrations/mysql for what each holds).

CREATE TABLE IF NOT EXISTS `ca_app_settings` (
  `connected_app` TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
  `pkce` INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS `ca_token_state` (
  `token_cache` TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
  `code_verifier` TEXT,
  `state_expires_at` TEXT,
  `received_at` TEXT,
  `needs_reconnect` INTEGER NOT NULL DEFAULT 0,
  `refresh_lease_until` TEXT,
  `refresh_lease_owner` TEXT
);

CREATE TABLE IF NOT EXISTS `ca_login_attempts` (
  `attempt_key` TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
  `failures` INTEGER NOT NULL DEFAULT 0,
  `first_failure` TEXT,
  `locked_until` TEXT
);
