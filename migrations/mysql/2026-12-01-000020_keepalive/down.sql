DROP TABLE IF EXISTS `ca_refresh_health`;
DROP TABLE IF EXISTS `ca_job_lease`;
ALTER TABLE `ca_app_settings` DROP COLUMN `keep_warm`;
