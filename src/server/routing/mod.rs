//! Cross-core routing: the `Gateway` that sends a core's calls straight to the member on the
//! owner core or over a bounded link to it from the others, and the owner's end of that link.
//! May import `member`, `watch` and `state_machine`.

pub mod gateway;
pub mod owner_link;
