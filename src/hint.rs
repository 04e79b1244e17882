//! What the user can do about an error: a leaf that every module's errors implement and only
//! the error renderer (`error`, at the top of the module graph) reads.

/// An error that can tell the user what to do about it.
pub trait Hint {
    /// One or more sentences, without the `hint:` prefix, or `None`.
    fn hint(&self) -> Option<String>;
}
