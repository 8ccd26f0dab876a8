DROP TABLE IF EXISTS `ca_token_extra`;
ALTER TABLE `ca_app_settings` DROP COLUMN `client_auth`;
