//! Budgets shared by the whole process: what every request, peer and client
//! together may hold at once. Each limit that trips is counted in
//! `limit_exceeded_total` by the name the operator sets it by.

use std::cell::Cell;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Counts one trip of `limit` (the flag's name without its dashes' prefix,
/// e.g. "max-entries").
pub fn exceeded(limit: &'static str) {
    metrics::counter!("limit_exceeded_total", "limit" => limit).increment(1);
}

/// Bytes that all holders together may keep in memory. Taking never waits:
/// a budget in use is an answer ("busy", "cut off"), never a queue that
/// holds memory while it waits.
#[derive(Debug, Clone)]
pub struct ByteBudget {
    semaphore: Arc<Semaphore>,
    capacity: usize,
}

/// Bytes taken from a budget; they return to it when this is dropped.
pub struct Held {
    permit: Option<OwnedSemaphorePermit>,
}

impl ByteBudget {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes not held by anyone now.
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    /// An empty holding, to grow with [`ByteBudget::grow`].
    pub fn hold_nothing(&self) -> Held {
        Held { permit: None }
    }

    /// Adds `bytes` to `held`, or says the budget is spent (and takes nothing).
    pub fn grow(&self, held: &mut Held, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let Ok(bytes) = u32::try_from(bytes) else {
            return false;
        };
        match self.semaphore.clone().try_acquire_many_owned(bytes) {
            Ok(more) => {
                match &mut held.permit {
                    Some(permit) => permit.merge(more),
                    None => held.permit = Some(more),
                }
                true
            }
            Err(_) => false,
        }
    }
}

impl Held {
    /// Nothing held, from no budget.
    pub fn none() -> Self {
        Held { permit: None }
    }

    pub fn bytes(&self) -> usize {
        self.permit
            .as_ref()
            .map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

thread_local! {
    /// Bundle entries the reading on this thread may still make; `None`
    /// outside [`with_entry_limit`].
    static ENTRIES_LEFT: Cell<Option<usize>> = const { Cell::new(None) };
    static ENTRY_LIMIT_HIT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read` (synchronous JSON reading) with at most `limit` Bundle entries
/// read on this thread; returns its result and whether the limit was hit.
/// The readers stop at the limit instead of expanding millions of entries.
pub fn with_entry_limit<T>(limit: usize, read: impl FnOnce() -> T) -> (T, bool) {
    let outer = ENTRIES_LEFT.with(|left| left.replace(Some(limit)));
    let outer_hit = ENTRY_LIMIT_HIT.with(|hit| hit.replace(false));
    let result = read();
    let hit = ENTRY_LIMIT_HIT.with(|hit| hit.replace(outer_hit));
    ENTRIES_LEFT.with(|left| left.set(outer));
    (result, hit)
}

/// Runs `read` outside the request's entry allowance: for pages fetched from
/// the EHR's FHIR server, which have their own limit (`--fhir-max-entries`,
/// counted as they arrive) and are not the request's to answer for.
pub fn uncounted<T>(read: impl FnOnce() -> T) -> T {
    let outer = ENTRIES_LEFT.with(|left| left.replace(None));
    let result = read();
    ENTRIES_LEFT.with(|left| left.set(outer));
    result
}

/// Takes one entry from this thread's allowance: false when it is spent (the
/// reader then stops reading entries).
pub fn take_entry() -> bool {
    ENTRIES_LEFT.with(|left| match left.get() {
        None => true,
        Some(0) => {
            ENTRY_LIMIT_HIT.with(|hit| hit.set(true));
            false
        }
        Some(n) => {
            left.set(Some(n - 1));
            true
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_lends_what_it_has_and_gets_it_back() {
        let budget = ByteBudget::new(100);
        let mut a = budget.hold_nothing();
        assert!(budget.grow(&mut a, 60));
        let mut b = budget.hold_nothing();
        assert!(!budget.grow(&mut b, 50), "only 40 left");
        assert!(budget.grow(&mut b, 40));
        assert_eq!((a.bytes(), b.bytes(), budget.available()), (60, 40, 0));
        drop(a);
        assert_eq!(budget.available(), 60);
    }

    #[test]
    fn the_entry_allowance_is_per_reading() {
        let ((), hit) = with_entry_limit(2, || {
            assert!(take_entry() && take_entry());
            assert!(!take_entry());
        });
        assert!(hit);
        let ((), hit) = with_entry_limit(2, || assert!(take_entry()));
        assert!(!hit);
        let ((), hit) = with_entry_limit(1, || {
            uncounted(|| assert!(take_entry() && take_entry()));
            assert!(take_entry());
        });
        assert!(!hit);
        assert!(take_entry(), "no limit outside a reading");
    }
}
