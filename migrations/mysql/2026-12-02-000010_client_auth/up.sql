-- Client authentication at the token endpoint, per Connected App (NULL: as Frappe does it;
-- `client_secret_post`, `client_secret_basic`, `none` or `auto`), and what a token response
-- held beyond Frappe's columns: its other members (Fernet-encrypted JSON, such as Salesforce's
-- `instance_url` or an `id_token`) and whether it came without `expires_in` (never expires).

ALTER TABLE `ca_app_settings` ADD COLUMN `client_auth` varchar(32) DEFAULT NULL;

CREATE TABLE IF NOT EXISTS `ca_token_extra` (
  `token_cache` varchar(140) NOT NULL,
  `extra` longtext DEFAULT NULL,
  `never_expires` int(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`token_cache`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
