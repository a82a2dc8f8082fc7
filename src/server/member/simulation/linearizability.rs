//! A linearizability checker for one key's history of puts and gets, after Wing & Gong as
//! refined by Lowe and by Porcupine: walk the history in time order, tentatively linearize
//! each call whose effect matches the register's state, backtrack when a return is reached
//! whose call was not linearized, and remember (linearized set, state) pairs already seen so
//! no configuration is explored twice.
//!
//! Every put writes a value no other put writes, so the register's state is "which put, if
//! any, was last". A put whose outcome is unknown (timed out, or its member crashed) may take
//! effect at any time after its call, or never: it returns at the end of time.

use std::collections::HashSet;

/// A recorded operation on one key. Times are positions in one global order of events.
#[derive(Clone, Debug)]
pub struct Operation {
    pub call: u64,
    /// `u64::MAX` when the outcome is unknown.
    pub ret: u64,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// Writes the value named by this id.
    Put(u64),
    /// Read this value (None: the key did not exist).
    Get(Option<u64>),
}

/// The register's state: the id of the last put's value.
type State = Option<u64>;

fn step(state: State, kind: &Kind) -> Option<State> {
    match kind {
        Kind::Put(value) => Some(Some(*value)),
        Kind::Get(seen) => (*seen == state).then_some(state),
    }
}

/// Whether `operations` is linearizable for a register starting empty.
pub fn is_linearizable(operations: &[Operation]) -> bool {
    let n = operations.len();
    if n == 0 {
        return true;
    }
    // Events: (time, is_return, operation); returns at the same time sort after calls, which
    // only makes operations overlap more (the checker errs toward accepting, never toward a
    // false alarm).
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(2 * n);
    for (i, op) in operations.iter().enumerate() {
        assert!(op.call < op.ret, "an operation returns after its call");
        events.push((op.call, false, i));
        events.push((op.ret, true, i));
    }
    events.sort();
    // A doubly linked list over the events, node 0 the head sentinel.
    let len = events.len() + 1;
    let mut next: Vec<usize> = (1..=len).collect();
    let mut prev: Vec<usize> = (0..len).map(|i| i.wrapping_sub(1)).collect();
    next[len - 1] = usize::MAX;
    let mut call_node = vec![0; n];
    let mut return_node = vec![0; n];
    for (position, &(_, is_return, op)) in events.iter().enumerate() {
        if is_return {
            return_node[op] = position + 1;
        } else {
            call_node[op] = position + 1;
        }
    }
    let unlink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        let (p, q) = (prev[node], next[node]);
        next[p] = q;
        if q != usize::MAX {
            prev[q] = p;
        }
    };
    let relink = |next: &mut Vec<usize>, prev: &mut Vec<usize>, node: usize| {
        let (p, q) = (prev[node], next[node]);
        next[p] = node;
        if q != usize::MAX {
            prev[q] = node;
        }
    };
    let mut linearized = vec![0u64; n.div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut stack: Vec<(usize, State)> = Vec::new();
    let mut state: State = None;
    let mut node = next[0];
    loop {
        if next[0] == usize::MAX {
            return true;
        }
        assert!(node != usize::MAX, "the walk ends at a return");
        let (_, is_return, op) = events[node - 1];
        if !is_return {
            if let Some(new_state) = step(state, &operations[op].kind) {
                linearized[op / 64] |= 1 << (op % 64);
                if seen.insert((linearized.clone(), new_state)) {
                    stack.push((op, state));
                    state = new_state;
                    unlink(&mut next, &mut prev, call_node[op]);
                    unlink(&mut next, &mut prev, return_node[op]);
                    node = next[0];
                    continue;
                }
                linearized[op / 64] &= !(1 << (op % 64));
            }
            node = next[node];
        } else {
            // A return whose call is not linearized yet: undo the last choice.
            let Some((op, earlier_state)) = stack.pop() else {
                return false;
            };
            state = earlier_state;
            linearized[op / 64] &= !(1 << (op % 64));
            relink(&mut next, &mut prev, return_node[op]);
            relink(&mut next, &mut prev, call_node[op]);
            node = next[call_node[op]];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(call: u64, ret: u64, kind: Kind) -> Operation {
        Operation { call, ret, kind }
    }

    #[test]
    fn accepts_overlapping_orders_and_refuses_stale_reads() {
        // put 1 and a read of it overlap: either order works.
        assert!(is_linearizable(&[
            op(0, 10, Kind::Put(1)),
            op(5, 6, Kind::Get(Some(1))),
        ]));
        // A read after put 2 returned may not see put 1's value.
        assert!(!is_linearizable(&[
            op(0, 1, Kind::Put(1)),
            op(2, 3, Kind::Put(2)),
            op(4, 5, Kind::Get(Some(1))),
        ]));
        // A read after a put returned may not see nothing.
        assert!(!is_linearizable(&[
            op(0, 1, Kind::Put(1)),
            op(2, 3, Kind::Get(None))
        ]));
        // A put of unknown outcome may take effect late, or never.
        assert!(is_linearizable(&[
            op(0, u64::MAX, Kind::Put(1)),
            op(2, 3, Kind::Get(None)),
            op(4, 5, Kind::Get(Some(1))),
        ]));
        // But not un-happen once seen.
        assert!(!is_linearizable(&[
            op(0, u64::MAX, Kind::Put(1)),
            op(2, 3, Kind::Get(Some(1))),
            op(4, 5, Kind::Get(None)),
        ]));
        // Two concurrent puts, reads seeing them in one order only.
        assert!(is_linearizable(&[
            op(0, 10, Kind::Put(1)),
            op(0, 10, Kind::Put(2)),
            op(11, 12, Kind::Get(Some(2))),
        ]));
        assert!(!is_linearizable(&[
            op(0, 10, Kind::Put(1)),
            op(0, 10, Kind::Put(2)),
            op(11, 12, Kind::Get(Some(2))),
            op(13, 14, Kind::Get(Some(1))),
        ]));
    }
}
