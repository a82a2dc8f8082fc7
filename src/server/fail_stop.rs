//! Fail-stop on a panic: a panic on any thread (a client core, the raft core, a sync thread)
//! ends the whole process, as an unrecovered panic ends etcd's, so a supervisor restarts the
//! member instead of clients meeting a silently dead core behind a healthy `/health`.

/// Exit status of a member stopped by a panic: Go's for an unrecovered panic, which is what
/// etcd's supervisors see.
pub const PANIC_EXIT_STATUS: i32 = 2;

/// Makes every later panic print its message (and backtrace, per `RUST_BACKTRACE`) as usual,
/// then name the thread and end the process with [`PANIC_EXIT_STATUS`]. Installed by `main`
/// before any executor starts.
pub fn install_fail_stop_panic_hook() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        let thread = std::thread::current();
        eprintln!(
            "basalt: a panic on thread {} stops the member (fail-stop)",
            thread.name().unwrap_or("unnamed")
        );
        std::process::exit(PANIC_EXIT_STATUS);
    }));
}
