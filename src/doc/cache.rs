//! Documents already read, kept per process and validated by `modified` on every use: a read
//! costs one indexed lookup of `modified` instead of reading the row and every child table.
//! Every write of a document (by this service, another instance or Frappe) sets `modified`, so
//! a changed document is never served from here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDateTime;

use super::Doc;

const MAX_ENTRIES: usize = 20_000;

/// `(doctype, lower-case name)` → the `modified` it was read at, and the document.
type Entries = HashMap<(&'static str, String), (Option<NaiveDateTime>, Arc<Doc>)>;

#[derive(Debug, Default)]
pub struct DocCache {
    entries: Mutex<Entries>,
}

fn key(doctype: &'static str, name: &str) -> (&'static str, String) {
    (doctype, name.to_lowercase())
}

impl DocCache {
    /// The cached document when it is still the stored version.
    pub fn get(
        &self,
        doctype: &'static str,
        name: &str,
        modified: Option<NaiveDateTime>,
    ) -> Option<Arc<Doc>> {
        let entries = self.entries.lock().ok()?;
        match entries.get(&key(doctype, name)) {
            Some((m, doc)) if *m == modified && modified.is_some() => Some(doc.clone()),
            _ => None,
        }
    }

    /// Whether some version of the document is cached (then checking its `modified` first
    /// is worth a query).
    pub fn holds(&self, doctype: &'static str, name: &str) -> bool {
        self.entries
            .lock()
            .is_ok_and(|entries| entries.contains_key(&key(doctype, name)))
    }

    pub fn put(&self, doc: &Doc) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key(doc.meta.doctype(), doc.name()),
                (doc.row.modified, Arc::new(doc.clone())),
            );
        }
    }

    pub fn forget(&self, doctype: &'static str, name: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&key(doctype, name));
        }
    }
}
