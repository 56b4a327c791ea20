//! Which stored layout a record being decoded was written in.
//!
//! Records are bincode (see `switchyard-store`'s codec): fields are positional, so a type that
//! gains a field cannot tell an old record from a new one by itself. The codec knows the
//! record's format version and says, for the duration of one decode, which layout to expect;
//! the few types whose layout changed ([`crate::Envelope`] and [`crate::AuditEvent`] gained
//! their request id and trace id) read it here. Decoding is synchronous, so a thread-local
//! scoped around one decode is exact.

use std::cell::Cell;

/// A stored layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Before commands and audit events carried a request id and trace id.
    BeforeRequestIds,
    /// Today's layout.
    Current,
}

thread_local! {
    static DECODING: Cell<Layout> = const { Cell::new(Layout::Current) };
}

/// Runs `decode` reading records of `layout`.
pub fn decoding<R>(layout: Layout, decode: impl FnOnce() -> R) -> R {
    let previous = DECODING.with(|d| d.replace(layout));
    struct Restore(Layout);
    impl Drop for Restore {
        fn drop(&mut self) {
            DECODING.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(previous);
    decode()
}

/// The layout being decoded on this thread.
pub(crate) fn current() -> Layout {
    DECODING.with(Cell::get)
}
