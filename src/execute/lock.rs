//! Host-wide locks: two op processes must not build with the same cache volume at once (pack
//! lost builds to unlocked shared state, pack#2695). A lock is an exclusive `flock` on
//! `<locks>/<name>.lock`, released when the process lets go of it (or dies).
//!
//! `<locks>` is `$XDG_RUNTIME_DIR/op/locks`, else `$XDG_CACHE_HOME/op/locks`, else
//! `~/.cache/op/locks`, else `op-locks` in the temporary directory.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Env;

/// A held lock.
#[derive(Debug)]
pub(crate) struct Lock {
    _file: std::fs::File,
}

/// The directory of op's lock files.
pub(crate) fn directory(env: &Env) -> PathBuf {
    if let Some(dir) = env.get("XDG_RUNTIME_DIR") {
        return PathBuf::from(dir).join("op").join("locks");
    }
    env.cache_dir().join("locks")
}

/// Takes the lock `name`, waiting for it; `on_wait` is called once if another process has it.
pub(crate) async fn acquire(
    env: &Env,
    name: &str,
    on_wait: impl FnOnce(),
) -> std::io::Result<Lock> {
    let dir = directory(env);
    fs_err::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.lock"));
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)?
        .into_parts()
        .0;
    let mut on_wait = Some(on_wait);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Lock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                if let Some(notify) = on_wait.take() {
                    notify();
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_taker_waits_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let env = Env::from_pairs([("XDG_RUNTIME_DIR", dir.path().display().to_string())]);
        let first = acquire(&env, "op-cache-x", || panic!("nobody holds it yet"))
            .await
            .unwrap();
        assert!(dir.path().join("op/locks/op-cache-x.lock").is_file());
        let waited = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&waited);
        let env2 = env.clone();
        let second = tokio::spawn(async move {
            acquire(&env2, "op-cache-x", move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the lock is held");
        assert!(
            waited.load(std::sync::atomic::Ordering::SeqCst),
            "the waiter was told"
        );
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), second)
            .await
            .unwrap()
            .unwrap();
        assert!(second.is_ok());
        acquire(&env, "other", || panic!("another name is another lock"))
            .await
            .unwrap();
    }
}
