-- Keep-alive: a per-app "keep warm" flag, the lease that lets one instance run the
-- background job at a time, and the last failed refresh of each connection (for health).

ALTER TABLE `ca_app_settings` ADD COLUMN `keep_warm` int(1) NOT NULL DEFAULT 0;

-- One row per background job; an instance runs the job only while it holds the row
-- (`owner`, until `lease_until`), taken by a conditional UPDATE or a first INSERT.
CREATE TABLE IF NOT EXISTS `ca_job_lease` (
  `job` varchar(64) NOT NULL,
  `owner` varchar(64) NOT NULL,
  `lease_until` datetime(6) NOT NULL,
  PRIMARY KEY (`job`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A connection whose refresh is failing: the last error (a summary without secrets), since
-- when it has failed, and how often. A successful refresh deletes the row.
CREATE TABLE IF NOT EXISTS `ca_refresh_health` (
  `token_cache` varchar(140) NOT NULL,
  `last_error` varchar(255) NOT NULL,
  `failing_since` datetime(6) NOT NULL,
  `last_failure_at` datetime(6) NOT NULL,
  `failures` int(11) NOT NULL DEFAULT 1,
  PRIMARY KEY (`token_cache`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
