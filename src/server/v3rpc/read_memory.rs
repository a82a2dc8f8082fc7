//! The member-wide bound on bytes held by read answers (the engine's `ResponseMemory`): its
//! size, and how a Range or read-only Txn waits for room under it.
//!
//! A read the bound refuses drops what it has read (giving its bytes back), waits until the
//! bytes it held when refused would fit — or until no read holds any, so a lone read larger
//! than the bound still runs, as etcd would serve it — and reads again from the start, at the
//! then-current revision (still past its read index, so a linearizable read stays so). After
//! etcd's request timeout it fails with ResourceExhausted. Waiting rather than failing at once
//! keeps bursts of large reads (a Kubernetes re-list of every informer) answering, slower,
//! where failing would make every client retry at once.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_engine::{
    self as engine, ResponseBudget, ResponseMemory, ResponseMemoryHold, TAKE_CHUNK_BYTES,
};
use basalt_net::{Code, Status};

use crate::server::state_machine::apply::status_of;

/// Test-only knob: the bound in bytes instead of the one sized from the machine.
pub const READ_MEMORY_ENV: &str = "BASALT_TEST_READ_MEMORY_BYTES";

/// How long a read waits for room: etcd's request timeout (5 s before its election share).
const ROOM_WAIT_LIMIT: Duration = Duration::from_secs(5);

/// How often a waiting read looks at the member's count again: the count is shared by every
/// core without a lock, so there is no waker to ring; a short poll costs one atomic load.
const ROOM_POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The smallest bound, whatever the machine says: a few large answers at once.
const READ_MEMORY_FLOOR_BYTES: usize = 256 * 1024 * 1024;

/// The message of a read that found no room within the wait.
pub const NO_ROOM: &str = "etcdserver: too many response bytes held on this member";

/// The member's bound: an eighth of physical memory, at least 256 MiB. An answer is held
/// about twice while it is sent (the decoded answer and its encoding), the engine's pages are
/// mapped in the same memory, and watches have their own bound (`watch_limits`), so an eighth
/// leaves the process well inside the machine with every bound full.
pub fn read_memory_limit_bytes() -> usize {
    if let Some(bytes) = std::env::var(READ_MEMORY_ENV)
        .ok()
        .and_then(|value| value.parse::<usize>().ok())
    {
        return bytes;
    }
    (physical_memory_bytes() / 8).max(READ_MEMORY_FLOOR_BYTES)
}

fn physical_memory_bytes() -> usize {
    // SAFETY: sysconf reads a system constant; it has no memory effects.
    let (pages, page_bytes) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    usize::try_from(pages)
        .unwrap_or(0)
        .saturating_mul(usize::try_from(page_bytes).unwrap_or(0))
}

/// Runs `read` with a budget of `limit_bytes` under `memory`, again each time the member's
/// bound refuses it (see the module's note), until it answers, fails otherwise, or the wait
/// passes etcd's request timeout. The hold keeps the answer's bytes counted until it is sent.
pub async fn read_within_memory<T, Read, Fut>(
    memory: &Arc<ResponseMemory>,
    limit_bytes: usize,
    mut read: Read,
) -> Result<(T, Option<ResponseMemoryHold>), Status>
where
    Read: FnMut(ResponseBudget) -> Fut,
    Fut: Future<Output = Result<(T, ResponseBudget), engine::Error>>,
{
    let deadline = Instant::now() + ROOM_WAIT_LIMIT;
    loop {
        let budget = ResponseBudget::within_member(limit_bytes, memory.clone());
        match read(budget).await {
            Ok((answer, budget)) => return Ok((answer, budget.into_member_hold())),
            Err(engine::Error::ResponseMemoryFull { needed_bytes }) => {
                wait_for_room(memory, needed_bytes, deadline).await?
            }
            Err(error) => return Err(status_of(&error)),
        }
    }
}

/// Waits at least one poll interval (so a refused read never spins on its core, and others
/// get the core meanwhile), then until `needed_bytes` would fit, or fails at `deadline`.
async fn wait_for_room(
    memory: &ResponseMemory,
    needed_bytes: usize,
    deadline: Instant,
) -> Result<(), Status> {
    // Room for what the read held when refused, and the chunk its next take may round up to.
    let needed_bytes = needed_bytes.saturating_add(TAKE_CHUNK_BYTES);
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(Status::new(Code::ResourceExhausted, NO_ROOM));
        }
        glommio::timer::sleep(ROOM_POLL_INTERVAL.min(deadline - now)).await;
        if memory.has_room_for(needed_bytes) {
            return Ok(());
        }
    }
}
