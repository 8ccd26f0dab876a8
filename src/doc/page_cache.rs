//! Plain list pages already served, per process, validated on every use by the names and
//! `modified` of the rows the query selects now (see `list::plain_page`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::value::RawValue;

use crate::frappe::list_query::SqlValue;

/// What identifies a cached page: the statement, its values and the output's shape (the
/// output keys and whether rows are dicts).
#[derive(PartialEq, Eq, Hash)]
pub struct PageKey(String);

impl PageKey {
    pub fn new(sql: &str, binds: &[SqlValue], aliases: &[&str], as_dict: bool) -> PageKey {
        PageKey(format!("{sql}\n{binds:?}\n{aliases:?}\n{as_dict}"))
    }
}

/// A cached page: its rows' names and `modified`, and the page as JSON.
pub struct Page {
    pub stamps: Vec<[Option<String>; 2]>,
    pub json: Arc<Box<RawValue>>,
}

/// Plain list pages already served, per process. Bounded in entries and in bytes (a page's
/// key, JSON and stamps all count); when either bound is reached the cache starts over.
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<(HashMap<PageKey, Arc<Page>>, usize)>,
}

const MAX_PAGES: usize = 512;
const MAX_PAGE_BYTES: usize = 64 * 1024;
const MAX_CACHE_BYTES: usize = 8 * 1024 * 1024;

impl PageCache {
    pub fn get(&self, key: &PageKey) -> Option<Arc<Page>> {
        let pages = self.pages.lock().ok()?;
        pages.0.get(key).cloned()
    }

    pub fn put(&self, key: PageKey, stamps: Vec<[Option<String>; 2]>, json: Arc<Box<RawValue>>) {
        let page = Page { stamps, json };
        let size = key.0.len() + page.bytes();
        if size > MAX_PAGE_BYTES {
            return;
        }
        let Ok(mut pages) = self.pages.lock() else {
            return;
        };
        let (map, bytes) = &mut *pages;
        if map.len() >= MAX_PAGES || *bytes + size > MAX_CACHE_BYTES {
            map.clear();
            *bytes = 0;
        }
        *bytes += size;
        let key_len = key.0.len();
        if let Some(old) = map.insert(key, Arc::new(page)) {
            *bytes -= (key_len + old.bytes()).min(*bytes);
        }
    }

    /// Pages held and the bytes counted against [`MAX_CACHE_BYTES`].
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let pages = self.pages.lock().unwrap();
        (pages.0.len(), pages.1)
    }
}

impl Page {
    /// What a page holds: its JSON and its rows' names and `modified` (which, for a page of
    /// short rows, weigh more than the JSON).
    fn bytes(&self) -> usize {
        let stamps: usize = self
            .stamps
            .iter()
            .map(|s| {
                std::mem::size_of::<[Option<String>; 2]>()
                    + s.iter().flatten().map(String::len).sum::<usize>()
            })
            .sum();
        self.json.get().len() + stamps
    }
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
