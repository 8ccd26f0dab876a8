DROP TABLE IF EXISTS `ca_login_attempts`;
DROP TABLE IF EXISTS `ca_token_state`;
DROP TABLE IF EXISTS `ca_app_settings`;
