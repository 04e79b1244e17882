//! Ctrl-C and SIGTERM, once for the whole process. [`Interrupt::install`] makes both signals
//! op's (from then on no container is left running because a signal came early); everything
//! that runs containers holds a clone and hears of the first signal: the scheduler starts
//! nothing more, and every running container is stopped by its runner.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

/// The exit code a shell reports for a command stopped by SIGINT (128 + 2).
pub const SIGINT_CODE: u8 = 130;
/// … and by SIGTERM (128 + 15).
pub const SIGTERM_CODE: u8 = 143;

/// Whether op was told to stop, and by which signal.
#[derive(Clone, Debug)]
pub struct Interrupt {
    signal: Arc<watch::Sender<Option<u8>>>,
    flag: Arc<AtomicBool>,
}

impl Interrupt {
    /// An interrupt that only [`Interrupt::trigger`] sets.
    pub fn new() -> Self {
        Self {
            signal: Arc::new(watch::channel(None).0),
            flag: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Makes SIGINT and SIGTERM op's: the first one sets the interrupt (later ones are
    /// swallowed while op cleans up). Must run inside a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = Self::new();
        let mut on_int = signal(SignalKind::interrupt())?;
        let mut on_term = signal(SignalKind::terminate())?;
        let handle = interrupt.clone();
        tokio::spawn(async move {
            let code = tokio::select! {
                _ = on_int.recv() => SIGINT_CODE,
                _ = on_term.recv() => SIGTERM_CODE,
            };
            handle.trigger(code);
            // The handlers stay installed: further signals do not kill op mid-cleanup.
            loop {
                tokio::select! {
                    _ = on_int.recv() => {}
                    _ = on_term.recv() => {}
                }
            }
        });
        Ok(interrupt)
    }

    /// Sets the interrupt, as signal `code` (130, 143) would.
    pub fn trigger(&self, code: u8) {
        self.flag.store(true, Ordering::SeqCst);
        self.signal.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(code);
                true
            } else {
                false
            }
        });
    }

    /// The exit code of the signal that came, if one did.
    pub fn signalled(&self) -> Option<u8> {
        *self.signal.borrow()
    }

    /// Set once a signal came (for code that polls).
    pub fn flag(&self) -> &AtomicBool {
        &self.flag
    }

    /// Waits for the signal; its exit code.
    pub async fn wait(&self) -> u8 {
        let mut receiver = self.signal.subscribe();
        loop {
            if let Some(code) = *receiver.borrow_and_update() {
                return code;
            }
            if receiver.changed().await.is_err() {
                // The sender lives as long as `self`: this does not happen.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl Default for Interrupt {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn everyone_holding_a_clone_hears_the_first_signal() {
        let interrupt = Interrupt::new();
        let listener = interrupt.clone();
        let waiting = tokio::spawn(async move { listener.wait().await });
        assert_eq!(interrupt.signalled(), None);
        assert!(!interrupt.flag().load(Ordering::SeqCst));
        interrupt.trigger(SIGTERM_CODE);
        interrupt.trigger(SIGINT_CODE);
        assert_eq!(
            waiting.await.unwrap(),
            SIGTERM_CODE,
            "the first signal counts"
        );
        assert_eq!(interrupt.signalled(), Some(SIGTERM_CODE));
        assert!(interrupt.flag().load(Ordering::SeqCst));
        assert_eq!(
            interrupt.wait().await,
            SIGTERM_CODE,
            "waiting after the fact returns"
        );
    }
}
