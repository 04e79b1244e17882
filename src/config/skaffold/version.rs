//! The `apiVersion` ladder of skaffold configurations.
//!
//! skaffold has published these schema versions, oldest first; op reads them all:
//! `skaffold/v1alpha1`…`v1alpha5`, `v1beta1`…`v1beta17`, `v1`, `v2alpha1`…`v2alpha4`,
//! `v2beta1`…`v2beta29`, `v3alpha1`, `v3`, `v4beta1`…`v4beta14`.

/// The newest schema version op knows.
pub const LATEST: &str = "skaffold/v4beta14";

/// The oldest schema version op knows.
pub const OLDEST: &str = "skaffold/v1alpha1";

/// The ladder as series: a prefix and how many numbered versions it has (0: the prefix alone).
const LADDER: [(&str, u32); 8] = [
    ("v1alpha", 5),
    ("v1beta", 17),
    ("v1", 0),
    ("v2alpha", 4),
    ("v2beta", 29),
    ("v3alpha", 1),
    ("v3", 0),
    ("v4beta", 14),
];

/// Every known version, oldest first.
pub fn all() -> Vec<String> {
    LADDER
        .iter()
        .flat_map(|&(prefix, count)| match count {
            0 => vec![format!("skaffold/{prefix}")],
            _ => (1..=count)
                .map(|n| format!("skaffold/{prefix}{n}"))
                .collect(),
        })
        .collect()
}

/// Whether op can read configurations of `version`.
pub fn is_known(version: &str) -> bool {
    all().iter().any(|v| v == version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_exactly_the_published_ladder() {
        let all = all();
        assert_eq!(all.len(), 5 + 17 + 1 + 4 + 29 + 2 + 14);
        assert_eq!(all.first().map(String::as_str), Some(OLDEST));
        assert_eq!(all.last().map(String::as_str), Some(LATEST));
        assert!(
            all.iter().all(|v| is_known(v)),
            "every listed version is known"
        );
        for unknown in [
            "skaffold/v9",
            "skaffold/v1alpha6",
            "skaffold/v1beta18",
            "skaffold/v2beta30",
            "skaffold/v4beta15",
            "skaffold/v4",
            "skaffold/v2",
            "skaffold/v3alpha2",
            "skaffold/v2beta01",
            "v2beta29",
            "",
        ] {
            assert!(!is_known(unknown), "{unknown}");
        }
    }
}
