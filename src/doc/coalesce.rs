//! Request coalescing for identical counts: requests that wait while one count runs share
//! the next computation (see [`Coalescer`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::AppResult;
use crate::frappe::list_query::SqlValue;

/// What makes two counts identical: the statement and every bound value.
#[derive(Debug, Clone, PartialEq)]
pub struct CountKey {
    pub sql: String,
    pub binds: Vec<SqlValue>,
}

impl std::hash::Hash for CountKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.sql.hash(h);
        for b in &self.binds {
            match b {
                SqlValue::Text(s) => (0u8, s).hash(h),
                SqlValue::Int(i) => (1u8, i).hash(h),
                SqlValue::Float(f) => (2u8, f.to_bits()).hash(h),
                SqlValue::Null => 3u8.hash(h),
            }
        }
    }
}

impl CountKey {
    /// Heap and inline bytes the key holds (for the coalescer's bound).
    fn bytes(&self) -> usize {
        let values: usize = self
            .binds
            .iter()
            .map(|b| match b {
                SqlValue::Text(s) => s.len(),
                _ => 0,
            })
            .sum();
        self.sql.len() + values + self.binds.len() * std::mem::size_of::<SqlValue>()
    }
}

/// Request coalescing for identical reads: of the requests that wait while one computation
/// runs, one computes again when it ends and the others take its answer.
///
/// An answer is only ever given to requests that arrived before the computation that
/// produced it began, so each one reflects the database at some moment between the request's
/// arrival and its answer, exactly as if the request had run its own query. Under load this
/// turns N identical `COUNT(*)`s (which MariaDB answers by scanning an index) into about one
/// per round trip.
///
/// Memory: flights are found by a hash of their key (keyed per process, so a caller cannot
/// aim for collisions) and told apart by comparing the whole key, which a flight holds (the
/// key of the request that opened it, moved, not copied) only while a request is in it: the
/// last request to leave, answered or cancelled, removes it. So the coalescer holds nothing
/// once counts are answered, and while they run at most [`MAX_FLIGHTS`] flights and
/// [`MAX_FLIGHT_KEY_BYTES`] of keys; a count beyond either bound runs on its own.
#[derive(Default)]
pub struct Coalescer {
    hasher: std::hash::RandomState,
    flights: Mutex<Flights>,
}

#[derive(Default)]
struct Flights {
    by_hash: HashMap<u64, Vec<Arc<Flight>>>,
    count: usize,
    key_bytes: usize,
}

struct Flight {
    key: CountKey,
    /// Requests in this flight now (changed only under the `flights` lock).
    users: std::sync::atomic::AtomicUsize,
    /// Requests that have arrived, ever; a request's ticket is its place in this sequence.
    arrivals: std::sync::atomic::AtomicU64,
    /// The last answer and the number of arrivals it covers.
    last: tokio::sync::Mutex<Option<(u64, AppResult<i64>)>>,
}

/// Counts in flight at once that can be coalesced.
pub const MAX_FLIGHTS: usize = 1024;
/// Bytes of the keys of the counts in flight that can be coalesced.
pub const MAX_FLIGHT_KEY_BYTES: usize = 16 * 1024 * 1024;

/// A request's place in a flight; leaving it (on answer or cancellation) removes the flight
/// when no one else is in it.
struct Seat<'a> {
    coalescer: &'a Coalescer,
    hash: u64,
    flight: Arc<Flight>,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        let mut flights = self
            .coalescer
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.flight.users.fetch_sub(1, SeqCst) != 1 {
            return;
        }
        let flights = &mut *flights;
        if let Some(list) = flights.by_hash.get_mut(&self.hash) {
            if let Some(i) = list.iter().position(|f| Arc::ptr_eq(f, &self.flight)) {
                list.swap_remove(i);
                flights.count -= 1;
                flights.key_bytes -= self.flight.key.bytes();
            }
            if list.is_empty() {
                flights.by_hash.remove(&self.hash);
            }
        }
    }
}

impl Coalescer {
    pub async fn run<F, Fut>(&self, key: CountKey, compute: F) -> AppResult<i64>
    where
        F: FnOnce(&CountKey) -> Fut,
        Fut: std::future::Future<Output = AppResult<i64>>,
    {
        let hash = {
            use std::hash::BuildHasher;
            self.hasher.hash_one(&key)
        };
        self.run_hashed(hash, key, compute).await
    }

    /// [`Coalescer::run`] with the key's hash given (tests force collisions with it).
    async fn run_hashed<F, Fut>(&self, hash: u64, key: CountKey, compute: F) -> AppResult<i64>
    where
        F: FnOnce(&CountKey) -> Fut,
        Fut: std::future::Future<Output = AppResult<i64>>,
    {
        use std::sync::atomic::Ordering::SeqCst;
        let seat = match self.sit(hash, key) {
            Ok(seat) => seat,
            Err(key) => return compute(&key).await,
        };
        let flight = &seat.flight;
        let ticket = flight.arrivals.fetch_add(1, SeqCst) + 1;
        let mut last = flight.last.lock().await;
        if let Some((covered, answer)) = last.as_ref() {
            if *covered >= ticket {
                return answer.clone();
            }
        }
        // Every request counted so far arrived before this computation begins.
        let covered = flight.arrivals.load(SeqCst);
        let answer = compute(&flight.key).await;
        *last = Some((covered, answer.clone()));
        answer
    }

    /// Joins the flight of an equal key, or opens one; gives the key back when the bounds
    /// are reached (the count then runs on its own).
    fn sit(&self, hash: u64, key: CountKey) -> Result<Seat<'_>, CountKey> {
        use std::sync::atomic::Ordering::SeqCst;
        let Ok(mut flights) = self.flights.lock() else {
            return Err(key);
        };
        let flights = &mut *flights;
        let list = flights.by_hash.entry(hash).or_default();
        let flight = match list.iter().find(|f| f.key == key) {
            Some(f) => f.clone(),
            None => {
                let bytes = key.bytes();
                if flights.count >= MAX_FLIGHTS || flights.key_bytes + bytes > MAX_FLIGHT_KEY_BYTES
                {
                    if list.is_empty() {
                        flights.by_hash.remove(&hash);
                    }
                    return Err(key);
                }
                let f = Arc::new(Flight {
                    key,
                    users: Default::default(),
                    arrivals: Default::default(),
                    last: Default::default(),
                });
                list.push(f.clone());
                flights.count += 1;
                flights.key_bytes += bytes;
                f
            }
        };
        flight.users.fetch_add(1, SeqCst);
        Ok(Seat {
            coalescer: self,
            hash,
            flight,
        })
    }

    /// Flights held now and the bytes of their keys.
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        let f = self.flights.lock().unwrap();
        (f.by_hash.len(), f.count, f.key_bytes)
    }
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
