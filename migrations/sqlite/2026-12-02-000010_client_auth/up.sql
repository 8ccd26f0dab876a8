-- Client authentication and token extras (see migrations/mysql for what each holds).

ALTER TABLE `ca_app_settings` ADD COLUMN `client_auth` TEXT DEFAULT NULL;

CREATE TABLE IF NOT EXISTS `ca_token_extra` (
  `token_cache` TEXT NOT NULL COLLATE NOCASE PRIMARY KEY,
  `extra` TEXT,
  `never_expires` INTEGER NOT NULL DEFAULT 0
);
