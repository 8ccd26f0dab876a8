-- Frappe's tables for the embedded SQLite store: same names, columns and keys as on MariaDB.
-- Names compare case-insensitively (COLLATE NOCASE), as MariaDB's utf8mb4_unicode_ci does.

CREATE TABLE IF NOT EXISTS `tabConnected App` (
  `name` TEXT NOT NULL COLLATE NOCASE,
  `creation` TEXT,
  `modified` TEXT,
  `modified_by` TEXT COLLATE NOCASE,
  `owner` TEXT COLLATE NOCASE,
  `docstatus` INTEGER NOT NULL DEFAULT 0,
  `idx` INTEGER NOT NULL DEFAULT 0,
  `provider_name` TEXT,
  `openid_configuration` TEXT,
  `client_id` TEXT,
  `redirect_uri` TEXT,
  `client_secret` TEXT,
  `authorization_uri` TEXT,
  `token_uri` TEXT,
  `revocation_uri` TEXT,
  `userinfo_uri` TEXT,
  `introspection_uri` TEXT,
  `_user_tags` TEXT,
  `_comments` TEXT,
  `_assign` TEXT,
  `_liked_by` TEXT,
  PRIMARY KEY (`name`)
);
CREATE INDEX IF NOT EXISTS `tabConnected App_modified` ON `tabConnected App` (`modified`);

CREATE TABLE IF NOT EXISTS `tabToken Cache` (
  `name` TEXT NOT NULL COLLATE NOCASE,
  `creation` TEXT,
  `modified` TEXT,
  `modified_by` TEXT COLLATE NOCASE,
  `owner` TEXT COLLATE NOCASE,
  `docstatus` INTEGER NOT NULL DEFAULT 0,
  `idx` INTEGER NOT NULL DEFAULT 0,
  `user` TEXT COLLATE NOCASE,
  `connected_app` TEXT COLLATE NOCASE,
  `provider_name` TEXT,
  `access_token` TEXT,
  `refresh_token` TEXT,
  `expires_in` INTEGER NOT NULL DEFAULT 0,
  `state` TEXT,
  `success_uri` TEXT,
  `token_type` TEXT,
  `_user_tags` TEXT,
  `_comments` TEXT,
  `_assign` TEXT,
  `_liked_by` TEXT,
  PRIMARY KEY (`name`)
);
CREATE INDEX IF NOT EXISTS `tabToken Cache_modified` ON `tabToken Cache` (`modified`);

CREATE TABLE IF NOT EXISTS `tabOAuth Scope` (
  `name` TEXT NOT NULL COLLATE NOCASE,
  `creation` TEXT,
  `modified` TEXT,
  `modified_by` TEXT COLLATE NOCASE,
  `owner` TEXT COLLATE NOCASE,
  `docstatus` INTEGER NOT NULL DEFAULT 0,
  `idx` INTEGER NOT NULL DEFAULT 0,
  `scope` TEXT,
  `parent` TEXT COLLATE NOCASE,
  `parentfield` TEXT,
  `parenttype` TEXT,
  PRIMARY KEY (`name`)
);
CREATE INDEX IF NOT EXISTS `tabOAuth Scope_parent` ON `tabOAuth Scope` (`parent`);

CREATE TABLE IF NOT EXISTS `tabQuery Parameters` (
  `name` TEXT NOT NULL COLLATE NOCASE,
  `creation` TEXT,
  `modified` TEXT,
  `modified_by` TEXT COLLATE NOCASE,
  `owner` TEXT COLLATE NOCASE,
  `docstatus` INTEGER NOT NULL DEFAULT 0,
  `idx` INTEGER NOT NULL DEFAULT 0,
  `key` TEXT,
  `value` TEXT,
  `parent` TEXT COLLATE NOCASE,
  `parentfield` TEXT,
  `parenttype` TEXT,
  PRIMARY KEY (`name`)
);
CREATE INDEX IF NOT EXISTS `tabQuery Parameters_parent` ON `tabQuery Parameters` (`parent`);

CREATE TABLE IF NOT EXISTS `__Auth` (
  `doctype` TEXT NOT NULL COLLATE NOCASE,
  `name` TEXT NOT NULL COLLATE NOCASE,
  `fieldname` TEXT NOT NULL COLLATE NOCASE,
  `password` TEXT NOT NULL,
  `encrypted` INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (`doctype`,`name`,`fieldname`)
);

CREATE TABLE IF NOT EXISTS `tabUser` (
  `name` TEXT NOT NULL COLLATE NOCASE,
  `creation` TEXT,
  `modified` TEXT,
  `modified_by` TEXT COLLATE NOCASE,
  `owner` TEXT COLLATE NOCASE,
  `docstatus` INTEGER NOT NULL DEFAULT 0,
  `idx` INTEGER NOT NULL DEFAULT 0,
  `enabled` INTEGER NOT NULL DEFAULT 1,
  `email` TEXT COLLATE NOCASE,
  `first_name` TEXT,
  `middle_name` TEXT,
  `last_name` TEXT,
  `full_name` TEXT,
  `username` TEXT,
  `time_zone` TEXT,
  `user_image` TEXT,
  `mobile_no` TEXT,
  `simultaneous_sessions` INTEGER NOT NULL DEFAULT 2,
  `login_after` INTEGER NOT NULL DEFAULT 0,
  `user_type` TEXT DEFAULT 'System User',
  `last_active` TEXT,
  `login_before` INTEGER NOT NULL DEFAULT 0,
  `last_login` TEXT,
  `api_key` TEXT COLLATE NOCASE,
  `api_secret` TEXT,
  PRIMARY KEY (`name`)
);
CREATE UNIQUE INDEX IF NOT EXISTS `tabUser_username` ON `tabUser` (`username`);
CREATE UNIQUE INDEX IF NOT EXISTS `tabUser_mobile_no` ON `tabUser` (`mobile_no`);
CREATE UNIQUE INDEX IF NOT EXISTS `tabUser_api_key` ON `tabUser` (`api_key`);
CREATE INDEX IF NOT EXISTS `tabUser_modified` ON `tabUser` (`modified`);

CREATE TABLE IF NOT EXISTS `tabHas Role` (
  `name` TEXT NOT NULL COLLATE NOCASE,
  `creation` TEXT,
  `modified` TEXT,
  `modified_by` TEXT COLLATE NOCASE,
  `owner` TEXT COLLATE NOCASE,
  `docstatus` INTEGER NOT NULL DEFAULT 0,
  `idx` INTEGER NOT NULL DEFAULT 0,
  `role` TEXT COLLATE NOCASE,
  `parent` TEXT COLLATE NOCASE,
  `parentfield` TEXT,
  `parenttype` TEXT,
  PRIMARY KEY (`name`)
);
CREATE INDEX IF NOT EXISTS `tabHas Role_parent` ON `tabHas Role` (`parent`);

CREATE TABLE IF NOT EXISTS `tabSessions` (
  `user` TEXT COLLATE NOCASE,
  `sid` TEXT COLLATE NOCASE,
  `sessiondata` TEXT,
  `ipaddress` TEXT,
  `lastupdate` TEXT,
  `status` TEXT
);
CREATE INDEX IF NOT EXISTS `tabSessions_sid` ON `tabSessions` (`sid`);
