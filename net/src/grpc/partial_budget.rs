//! The bytes of partly received request messages one connection may hold.
//!
//! HTTP/2 credit goes back to the client as chunks arrive (holding it until whole messages are
//! taken deadlocked connections with several concurrent large calls), so flow control alone
//! does not stop a client from opening many calls that each announce a message near the size
//! limit and send all of it but its last byte: each call's decoder would hold its part, and
//! the connection as many parts as it has calls. This budget caps their sum per connection;
//! the call whose chunk would take the connection past it is ended with ResourceExhausted
//! (h2 then resets its stream), and the others go on.

use std::cell::Cell;

use crate::grpc::status::Status;

/// One connection's budget for request bytes buffered by its calls' decoders.
#[derive(Debug)]
pub struct PartialMessageBudget {
    limit_bytes: usize,
    held_bytes: Cell<usize>,
}

impl PartialMessageBudget {
    /// A budget of `limit_bytes` over all of a connection's calls.
    pub fn new(limit_bytes: usize) -> PartialMessageBudget {
        PartialMessageBudget {
            limit_bytes,
            held_bytes: Cell::new(0),
        }
    }

    /// Moves one call's holding from `from_bytes` to `to_bytes`; refused (nothing changes)
    /// when growing it would take the connection past its limit.
    pub(crate) fn change(&self, from_bytes: usize, to_bytes: usize) -> Result<(), Status> {
        let others_bytes = self.held_bytes.get() - from_bytes;
        if to_bytes > from_bytes && others_bytes + to_bytes > self.limit_bytes {
            return Err(Status::resource_exhausted(format!(
                "grpc: received message would take this connection's partly received \
                 messages past their limit ({} vs. {})",
                others_bytes + to_bytes,
                self.limit_bytes
            )));
        }
        self.held_bytes.set(others_bytes + to_bytes);
        Ok(())
    }

    /// Bytes held now over the connection's calls.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes.get()
    }
}

#[cfg(test)]
mod tests {
    //! Goal: the sum over calls never passes the limit; shrinking always succeeds.
    use super::*;

    #[test]
    fn growth_past_the_limit_is_refused_and_changes_nothing() {
        let budget = PartialMessageBudget::new(100);
        budget.change(0, 60).unwrap();
        budget.change(0, 30).unwrap();
        assert!(budget.change(30, 41).is_err());
        assert_eq!(budget.held_bytes(), 90);
        budget.change(60, 0).unwrap();
        budget.change(30, 100).unwrap();
        budget.change(100, 0).unwrap();
        assert_eq!(budget.held_bytes(), 0);
    }
}
