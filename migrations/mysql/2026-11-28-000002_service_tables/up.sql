-- The service's own tables. Frappe never reads them; Frappe's tables stay untouched.

-- Per-app settings Frappe has no field for.
CREATE TABLE IF NOT EXISTS `ca_app_settings` (
  `connected_app` varchar(140) NOT NULL,
  `pkce` int(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (`connected_app`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Per-connection flow data: the PKCE verifier (Fernet-encrypted), when the pending state
-- expires, when the current tokens were received, whether the user must reconnect, and the
-- lease that lets exactly one process refresh an expired token.
CREATE TABLE IF NOT EXISTS `ca_token_state` (
  `token_cache` varchar(140) NOT NULL,
  `code_verifier` text DEFAULT NULL,
  `state_expires_at` datetime(6) DEFAULT NULL,
  `received_at` datetime(6) DEFAULT NULL,
  `needs_reconnect` int(1) NOT NULL DEFAULT 0,
  `refresh_lease_until` datetime(6) DEFAULT NULL,
  `refresh_lease_owner` varchar(64) DEFAULT NULL,
  PRIMARY KEY (`token_cache`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Failed logins per user or address, for throttling.
CREATE TABLE IF NOT EXISTS `ca_login_attempts` (
  `attempt_key` varchar(255) NOT NULL,
  `failures` int(11) NOT NULL DEFAULT 0,
  `first_failure` datetime(6) DEFAULT NULL,
  `locked_until` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`attempt_key`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
