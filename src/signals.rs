//! Ctrl-C: the first asks the sweep to stop after the running trials' current epoch (checkpointed); the
//! second exits at once with 130, saying how to continue (the journal stays valid: each event is
//! one `write`, and worker processes die with their parent).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static INTERRUPTS: AtomicUsize = AtomicUsize::new(0);

/// What the second Ctrl-C prints, made before any signal can arrive: the handler may only
/// read it and `write` it.
static AT_ONCE: OnceLock<Vec<u8>> = OnceLock::new();

extern "C" fn on_interrupt(_: libc::c_int) {
    if INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 1 {
        if let Some(message) = AT_ONCE.get() {
            // SAFETY: write(2) is async-signal-safe; the buffer lives for the whole process.
            unsafe { libc::write(2, message.as_ptr().cast(), message.len()) };
        }
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(130) };
    }
}

/// Installs the SIGINT handler (and SIGTERM, treated the same way); `continue_with` is the
/// command that continues the sweep, for the second Ctrl-C to print.
pub fn install(continue_with: &str) {
    let _ = AT_ONCE.set(
        format!("\nStopped at once. The running trials continue from their last checkpoints with: {continue_with}\n")
            .into_bytes(),
    );
    // SAFETY: the handler only touches an atomic and calls _exit.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
}

/// Whether a stop was requested.
pub fn interrupted() -> bool {
    INTERRUPTS.load(Ordering::SeqCst) > 0
}
