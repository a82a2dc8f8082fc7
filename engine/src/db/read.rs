//! A read transaction: a pinned committed snapshot, readable from any thread without locks.

use std::sync::Arc;

use super::{Shared, Table, Tables};
use crate::btree::read::NodeRef;
use crate::pager::meta::Meta;
use crate::pager::View;

/// A pinned snapshot. While it lives, no page it can reach is reused. It is `Send`: a server
/// core can own it; it holds no lock (only registration at begin and end touches a mutex).
pub(crate) struct ReadTxn {
    shared: Arc<Shared>,
    view: View,
    meta: Meta,
}

impl ReadTxn {
    pub(crate) fn begin(shared: Arc<Shared>) -> ReadTxn {
        let (view, meta) = {
            let mut published = shared.published.lock().expect("published state lock");
            let meta = published.meta;
            *published.readers.entry(meta.txn_id).or_default() += 1;
            let view = View {
                mapping: published.mapping.clone(),
                page_count: meta.page_count,
                path: shared.file.path.clone(),
            };
            (view, meta)
        };
        ReadTxn { shared, view, meta }
    }

    /// The root page of `table` in this snapshot, if the table is not empty.
    pub(crate) fn root_page(&self, table: Table) -> Option<u64> {
        Some(self.meta.roots[table as usize]).filter(|&page| page != 0)
    }

    /// The commit this snapshot shows.
    pub(crate) fn txn_id(&self) -> u64 {
        self.meta.txn_id
    }

    /// The meta page of the commit this snapshot shows.
    pub(crate) fn meta(&self) -> Meta {
        self.meta
    }

    /// The snapshot's page view.
    pub(crate) fn view_ref(&self) -> &View {
        &self.view
    }
}

impl Tables for ReadTxn {
    fn view(&self) -> &View {
        &self.view
    }

    fn root(&self, table: Table) -> Option<NodeRef<'_>> {
        match self.meta.roots[table as usize] {
            0 => None,
            page => Some(NodeRef::Page(page)),
        }
    }
}

impl Drop for ReadTxn {
    fn drop(&mut self) {
        // A poisoned lock only means another thread panicked; unregistering is still right.
        let mut published = match self.shared.published.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let count = published
            .readers
            .get_mut(&self.meta.txn_id)
            .expect("reader was registered");
        *count -= 1;
        if *count == 0 {
            published.readers.remove(&self.meta.txn_id);
        }
    }
}

#[cfg(test)]
mod tests {
    fn assert_send<T: Send>() {}

    #[test]
    fn read_txn_is_send() {
        assert_send::<super::ReadTxn>();
    }
}
