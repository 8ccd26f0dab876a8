-- Keep-alive (see migrations/mysql for what each holds).

ALTER TABLE `ca_app_settings` ADD COLUMN `keep_warm` INTEGER NOT NULL DEFAULT 0;

CREATE TABLE IF NOT EXISTS `ca_job_lease` (
  `job` TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
  `owner` TEXT NOT NULL,
  `lease_until` TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS `ca_refresh_health` (
  `token_cache` TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
  `last_error` TEXT NOT NULL,
  `failing_since` TEXT NOT NULL,
  `last_failure_at` TEXT NOT NULL,
  `failures` INTEGER NOT NULL DEFAULT 1
);
