-- Frappe's Version table (the desk's change history), same columns and keys as on MariaDB;
-- created only when missing. Connected App has track_changes: every save that changes
-- something writes a row here.

CREATE TABLE IF NOT EXISTS `tabVersion` (
  `name` TEXT NOT NULL COLLATE NOCASE,
  `creation` TEXT,
  `modified` TEXT,
  `modified_by` TEXT COLLATE NOCASE,
  `owner` TEXT COLLATE NOCASE,
  `docstatus` INTEGER NOT NULL DEFAULT 0,
  `idx` INTEGER NOT NULL DEFAULT 0,
  `ref_doctype` TEXT COLLATE NOCASE,
  `docname` TEXT COLLATE NOCASE,
  `data` TEXT,
  `_user_tags` TEXT,
  `_comments` TEXT,
  `_assign` TEXT,
  `_liked_by` TEXT,
  PRIMARY KEY (`name`)
);
CREATE INDEX IF NOT EXISTS `tabVersion_ref_doctype_docname_index` ON `tabVersion` (`ref_doctype`, `docname`);
CREATE INDEX IF NOT EXISTS `tabVersion_modified` ON `tabVersion` (`modified`);
