//! Immutable values shared by many records (SQL texts, command tags, Bind
//! parameters) through [`OwnerRc`]: a reference count that only the thread that
//! made the value ever changes.
//!
//! Records are built on a decoding thread, read on the formatting thread and sent
//! back to be dropped where they were made. With `Arc`, every record cloned and
//! dropped its text, tag and parameters with locked instructions (a fenced
//! read-modify-write each, behind the stores of building the record): 4.5 to 5.6%
//! more CPU on bench/data's pgbench capture (`-o json`, best of 15 and 25 runs, with
//! an `Arc` in `OwnerRc`'s place). Here a count is a plain `Rc` count with this
//! contract:
//!
//! 1. Only the owner thread changes a count: on it, clone and drop work as `Rc`'s.
//!    The owner is named by a token, the address of a thread-local, which no two
//!    live threads share.
//! 2. On any other thread, clone makes a *detached* copy (its own allocation, never
//!    shared, so any thread may drop it), and drop leaves the count alone: the value
//!    is leaked rather than have two threads change one count. Such drops are
//!    counted ([`foreign_drops`]); the pipelines send every record back to the thread
//!    that made it, so the count stays 0 (tests/staged.rs holds sharded runs to it).
//! 3. The value is immutable, so any thread may read it while a handle lives; an
//!    allocation is freed only by its owner, once no handle is left, and a handle a
//!    foreign thread holds is never released, so the value outlives every reader.
//!
//! Sharded decoding (`--threads N`) keeps the contract: each shard thread makes its
//! own values (a shard has its own text interner), its records go to the writer
//! thread and come back to that shard, which keeps taking them back until the writer
//! is done. A token can be reused by a thread started after its owner ended; the new
//! thread's accesses come after the old thread's exit (the thread-local block is
//! freed and reallocated through the allocator's locks) and it is then the only live
//! thread with the token, so (1) still holds.

use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// This thread's token: the address of a thread-local, unique among live threads;
/// 0 stands for "detached" (no thread owns the count, which stays 1).
fn current() -> usize {
    thread_local! { static TOKEN: u8 = const { 0 }; }
    TOKEN.with(|t| t as *const u8 as usize)
}

const DETACHED: usize = 0;

static FOREIGN_DROPS: AtomicU64 = AtomicU64::new(0);

/// Handles dropped on a thread that does not own their count (and so leaked), since
/// the process started. Stays 0 when every record goes back to where it was made.
pub fn foreign_drops() -> u64 {
    FOREIGN_DROPS.load(Ordering::Relaxed)
}

/// A reference-counted immutable value whose count only its owner thread changes
/// (see the module comment for the contract that makes it `Send + Sync`).
pub(crate) struct OwnerRc<T: ?Sized> {
    rc: ManuallyDrop<Rc<T>>,
    /// The thread that may change the count, or `DETACHED`.
    owner: usize,
}

#[allow(
    unsafe_code,
    reason = "owner-thread counts: Arc cost 4.5-5.6% more CPU"
)]
// SAFETY: a handle changes its allocation's count only on its owner thread (or,
// detached, when it is the allocation's only handle); other threads only read the
// immutable value, which lives as long as any handle, since those threads never
// release theirs. See the module comment.
unsafe impl<T: ?Sized + Send + Sync> Send for OwnerRc<T> {}
#[allow(
    unsafe_code,
    reason = "owner-thread counts: Arc cost 4.5-5.6% more CPU"
)]
// SAFETY: as above; `&OwnerRc` gives only reads of the value and `clone`, which on a
// foreign thread reads the value to copy it.
unsafe impl<T: ?Sized + Send + Sync> Sync for OwnerRc<T> {}

impl<T: ?Sized> OwnerRc<T>
where
    Rc<T>: for<'a> From<&'a T>,
{
    /// A new value owned by this thread.
    pub(crate) fn new(value: &T) -> Self {
        OwnerRc {
            rc: ManuallyDrop::new(Rc::from(value)),
            owner: current(),
        }
    }

    /// A copy no thread owns: it is never shared, so any thread may drop it.
    pub(crate) fn detached(&self) -> Self {
        OwnerRc {
            rc: ManuallyDrop::new(Rc::from(&**self.rc)),
            owner: DETACHED,
        }
    }

    #[cfg(test)]
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        Rc::ptr_eq(&a.rc, &b.rc)
    }

    #[cfg(test)]
    fn count(&self) -> usize {
        Rc::strong_count(&self.rc)
    }
}

impl<T: ?Sized> Clone for OwnerRc<T>
where
    Rc<T>: for<'a> From<&'a T>,
{
    #[inline]
    fn clone(&self) -> Self {
        if self.owner != DETACHED && self.owner == current() {
            OwnerRc {
                rc: ManuallyDrop::new(Rc::clone(&self.rc)),
                owner: self.owner,
            }
        } else {
            self.detached()
        }
    }
}

#[allow(
    unsafe_code,
    reason = "ManuallyDrop: leak rather than count on a foreign thread"
)]
impl<T: ?Sized> Drop for OwnerRc<T> {
    #[inline]
    fn drop(&mut self) {
        if self.owner == DETACHED || self.owner == current() {
            // SAFETY: `rc` is dropped once, here, and not used after. The non-atomic
            // count is changed on one thread only: a detached handle is its
            // allocation's only one, and an owned one is dropped on its owner thread,
            // the only thread that ever changes that count (contract 1).
            unsafe { ManuallyDrop::drop(&mut self.rc) }
        } else {
            // Leaked: the count is the owner thread's to change. Off the hot path, so
            // counted in every build.
            FOREIGN_DROPS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<T: ?Sized> Deref for OwnerRc<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.rc
    }
}

impl<T: ?Sized + PartialEq> PartialEq for OwnerRc<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: ?Sized + Eq> Eq for OwnerRc<T> {}

impl<T: ?Sized + std::fmt::Debug> std::fmt::Debug for OwnerRc<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// A prepared statement's name, shared by its portals and their records. The
/// same size as the `Option<String>` it replaced in records: a larger record cost
/// more than the copy saved.
pub(crate) type Name = OwnerRc<str>;

/// A server parameter's name or value (ParameterStatus): a login is sent some 14
/// pairs, nearly always the last login's, and each record holding them shares the
/// last login's strings instead of copying 28 of them per connection.
pub(crate) type ParamStr = OwnerRc<str>;

impl From<&str> for Name {
    fn from(s: &str) -> Self {
        OwnerRc::new(s)
    }
}

/// A shared SQL text or command tag, with an id that no other text gets (its copies
/// keep it): output caches key on it instead of holding the text to pin its address.
/// Equal texts are equal whatever their ids. Its id's top bit says whether it
/// is likely to repeat (the [`Texts`](super::texts::Texts) cache kept it, or it is a
/// prepared statement's, run as often as it is bound): output caches keep what they
/// render of those only, as a text seen once (a statement with its literals inline)
/// would only evict the ones that repeat.
#[derive(Clone)]
pub(crate) struct Text {
    s: OwnerRc<str>,
    id: u64,
}

const CACHEABLE: u64 = 1 << 63;

impl Text {
    pub(crate) fn new(s: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Text {
            s: OwnerRc::new(s),
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// A new text likely to repeat (see [`Text::cacheable`]).
    pub(crate) fn new_cacheable(s: &str) -> Self {
        let mut t = Text::new(s);
        t.id |= CACHEABLE;
        t
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Whether this text is likely to repeat, so worth caching what is made of it.
    pub(crate) fn cacheable(&self) -> bool {
        self.id & CACHEABLE != 0
    }

    /// See [`OwnerRc::detached`].
    pub(crate) fn detached(&self) -> Self {
        Text {
            s: self.s.detached(),
            id: self.id,
        }
    }

    #[cfg(test)]
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        OwnerRc::ptr_eq(&a.s, &b.s)
    }
}

impl Deref for Text {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        &self.s
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Text {}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl From<&str> for Text {
    fn from(s: &str) -> Self {
        Text::new(s)
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text::new(&s)
    }
}

impl From<std::borrow::Cow<'_, str>> for Text {
    fn from(s: std::borrow::Cow<'_, str>) -> Self {
        Text::new(&s)
    }
}

impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_shares_other_threads_copy_and_never_count() {
        let a = OwnerRc::<str>::new("select 1");
        let b = a.clone();
        assert!(OwnerRc::ptr_eq(&a, &b), "the owner shares");
        assert_eq!(a.count(), 2);
        let c = a.clone();
        std::thread::scope(|s| {
            s.spawn(|| {
                let copy = a.clone();
                assert!(!OwnerRc::ptr_eq(&copy, &a), "another thread copies");
                assert_eq!(&*copy, "select 1");
                assert_eq!(copy.count(), 1);
                drop(copy); // detached: freed here
            });
            // Moved to another thread and dropped there: the count is left alone.
            s.spawn(move || drop(c));
        });
        assert_eq!(a.count(), 3, "the foreign drop leaked its count");
        assert!(foreign_drops() >= 1, "and was counted");
        drop(b);
        assert_eq!(a.count(), 2);
    }

    #[test]
    fn detached_copies_go_anywhere() {
        let a = OwnerRc::<[u8]>::new(b"\x01\x02");
        let d = a.detached();
        assert_eq!(a.count(), 1);
        assert_eq!(d.count(), 1);
        assert_eq!(d, a);
        // A detached handle is copied by every thread, its owner's included.
        let d2 = d.clone();
        assert!(!OwnerRc::ptr_eq(&d, &d2));
        std::thread::spawn(move || {
            assert_eq!(&*d, b"\x01\x02");
            drop(d);
            drop(d2);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn texts_keep_their_id_in_copies_and_differ_from_others() {
        let t = Text::new("UPDATE 1");
        let u = Text::new("UPDATE 1");
        assert_ne!(t.id(), u.id());
        assert_eq!(t.clone().id(), t.id());
        assert_eq!(t.detached().id(), t.id());
        let id = std::thread::scope(|s| s.spawn(|| t.clone().id()).join().unwrap());
        assert_eq!(id, t.id());
        assert_eq!(&*t, "UPDATE 1");
    }
}
