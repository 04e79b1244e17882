//! Reading a creator's output: its lines (split across chunks), the phase a banner starts
//! (coloured or not), and the digest an export announces.

/// Where an artifact's build is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Waiting,
    Pulling,
    Preparing,
    Analyzing,
    Detecting,
    Restoring,
    Building,
    Exporting,
    Done,
    Failed,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Pulling => "pulling",
            Phase::Preparing => "preparing",
            Phase::Analyzing => "analyzing",
            Phase::Detecting => "detecting",
            Phase::Restoring => "restoring",
            Phase::Building => "building",
            Phase::Exporting => "exporting",
            Phase::Done => "done",
            Phase::Failed => "failed",
        }
    }

    /// The phase a lifecycle banner (`===> DETECTING`) starts, coloured or not.
    pub fn from_banner(line: &str) -> Option<Self> {
        match without_ansi(line).trim().strip_prefix("===> ")? {
            "ANALYZING" => Some(Phase::Analyzing),
            "DETECTING" => Some(Phase::Detecting),
            "RESTORING" => Some(Phase::Restoring),
            "BUILDING" => Some(Phase::Building),
            "EXPORTING" => Some(Phase::Exporting),
            _ => None,
        }
    }
}

/// `line` without ANSI escape sequences (colours, cursor moves): a lifecycle or a buildpack
/// may colour its output even when told not to.
pub(super) fn without_ansi(line: &str) -> std::borrow::Cow<'_, str> {
    if !line.contains('\x1b') {
        return std::borrow::Cow::Borrowed(line);
    }
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            plain.push(c);
            continue;
        }
        match chars.next() {
            // CSI: parameters and intermediates up to a final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            // Other two-character escapes.
            _ => {}
        }
    }
    std::borrow::Cow::Owned(plain)
}

/// Splits a stream's bytes into lines, keeping a partial last line for later.
#[derive(Debug, Default)]
pub(super) struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            lines.push(
                String::from_utf8_lossy(&line[..line.len() - 1])
                    .trim_end_matches('\r')
                    .to_string(),
            );
        }
        lines
    }

    pub(super) fn finish(&mut self) -> Option<String> {
        (!self.pending.is_empty())
            .then(|| String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned())
    }
}

/// The digest a line of the lifecycle announces its registry export with:
/// `*** Images (sha256:<hex>):`, as the reference lifecycle and op-lifecycle print it.
pub(super) fn announced_digest(line: &str) -> Option<String> {
    let plain = without_ansi(line);
    let digest = plain
        .trim()
        .strip_prefix("*** Images (")?
        .strip_suffix("):")?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| digest.to_string())
}
