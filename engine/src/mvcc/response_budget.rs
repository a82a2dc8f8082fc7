//! A bound on the bytes one response may hold. A Range over a large key space, or a read-only
//! Txn of many full-range reads (or thousands of point reads of a 1 MiB value), would otherwise
//! build an answer larger than memory; with a budget the read stops as soon as its answer passes
//! the bound and fails with [`Error::ResponseTooLarge`], having allocated about the bound.

use std::sync::Arc;

use super::response_memory::{ResponseMemory, ResponseMemoryHold};
use crate::error::{Error, Result};

/// The protobuf bytes a `KeyValue` costs beside its key and value: five varint fields of up to
/// ten bytes and two length prefixes, rounded up. Charging it keeps a keys-only answer of many
/// short keys bounded too.
pub const KEY_VALUE_OVERHEAD_BYTES: usize = 64;

/// The bytes a response may still grow by.
#[derive(Debug)]
pub struct ResponseBudget {
    limit: usize,
    used: usize,
    /// The member-wide share these bytes hold, when there is a member-wide bound.
    member: Option<ResponseMemoryHold>,
}

impl ResponseBudget {
    /// At most `limit` bytes.
    pub fn new(limit: usize) -> ResponseBudget {
        ResponseBudget {
            limit,
            used: 0,
            member: None,
        }
    }

    /// At most `limit` bytes, each also held under the member-wide `memory` (see
    /// [`ResponseMemory`]); a charge it refuses fails with [`Error::ResponseMemoryFull`].
    pub fn within_member(limit: usize, memory: Arc<ResponseMemory>) -> ResponseBudget {
        ResponseBudget {
            limit,
            used: 0,
            member: Some(ResponseMemoryHold::new(memory)),
        }
    }

    /// The member-wide hold of the bytes charged, to keep until the answer is sent.
    pub fn into_member_hold(self) -> Option<ResponseMemoryHold> {
        self.member
    }

    /// No bound (tools and tests reading their own data).
    pub fn unlimited() -> ResponseBudget {
        ResponseBudget::new(usize::MAX)
    }

    /// The bytes charged so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Whether the charges have passed the limit.
    pub fn is_exceeded(&self) -> bool {
        self.used > self.limit
    }

    /// [`Error::ResponseTooLarge`] once the charges have passed the limit.
    pub fn check(&self) -> Result<()> {
        if self.is_exceeded() {
            return Err(Error::ResponseTooLarge {
                at_least: self.used,
                limit: self.limit,
            });
        }
        Ok(())
    }

    /// Charges `bytes`; fails once the total passes the limit.
    pub(crate) fn charge(&mut self, bytes: usize) -> Result<()> {
        self.used = self.used.saturating_add(bytes);
        self.check()?;
        if let Some(member) = &mut self.member {
            if !member.charge(bytes) {
                return Err(Error::ResponseMemoryFull {
                    needed_bytes: self.used,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseBudget;
    use crate::error::Error;

    #[test]
    fn charges_pass_until_the_limit_is_exceeded() {
        let mut budget = ResponseBudget::new(10);
        budget.charge(4).unwrap();
        budget.charge(6).unwrap();
        assert_eq!(budget.used(), 10);
        match budget.charge(1) {
            Err(Error::ResponseTooLarge { at_least, limit }) => {
                assert_eq!((at_least, limit), (11, 10))
            }
            other => panic!("{other:?}"),
        }
        let mut unlimited = ResponseBudget::unlimited();
        unlimited.charge(usize::MAX).unwrap();
        unlimited.charge(usize::MAX).unwrap();
    }
}
