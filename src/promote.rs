//! `op promote-image`: which image, from which repository to which. The copy itself is the
//! registry's ([`crate::registry::Registry::copy`]).
//!
//! Repositories (upstream's order): `--from` / `--to`; else the environment's key (`dev` →
//! `GOOGLE_GKE_IMAGE_REPOSITORY`, `pp` → `GOOGLE_GKE_IMAGE_PP_REPOSITORY`, `prod` →
//! `GOOGLE_GKE_IMAGE_PROD_REPOSITORY`); else `PROMOTE_SOURCE_REPOSITORY` /
//! `PROMOTE_DESTINATION_REPOSITORY`; each key from the environment, then the settings files.

use crate::config::{Config, Origin, Resolved};
use crate::hint::Hint;

/// One side of a promotion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Destination,
    /// The repository `op watch-deployment` waits for (upstream resolves it, and uses it for
    /// nothing else).
    Watched,
}

impl Side {
    fn flag(self) -> Option<&'static str> {
        match self {
            Side::Source => Some("--from"),
            Side::Destination => Some("--to"),
            Side::Watched => None,
        }
    }

    fn fallback(self) -> &'static str {
        match self {
            Side::Source => "PROMOTE_SOURCE_REPOSITORY",
            Side::Destination => "PROMOTE_DESTINATION_REPOSITORY",
            Side::Watched => "WATCH_DESTINATION_REPOSITORY",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Destination | Side::Watched => "destination",
        }
    }
}

/// What cannot be promoted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("No {side} repository is set{}", environment.as_ref().map(|e| format!(" for environment `{e}`")).unwrap_or_default())]
    NoRepository {
        side: &'static str,
        environment: Option<String>,
        keys: Vec<String>,
        flag: Option<&'static str>,
    },
    #[error("The {side} repository `{value}` ({origin}) is not a repository: {problem}")]
    BadRepository {
        side: &'static str,
        value: String,
        origin: String,
        problem: String,
    },
    #[error("`{reference}` in the build result is not an image reference: {problem}")]
    BadReference { reference: String, problem: String },
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::NoRepository { keys, flag, .. } => Some(format!(
                "set {} (in the environment, or in .github/octopilot.yaml or pipeline.properties){}",
                keys.join(" or "),
                flag.map(|f| format!(", or give {f} REPO"))
                    .unwrap_or_default()
            )),
            Error::BadRepository { .. } => Some(
                "a repository is registry/path, e.g. europe-west1-docker.pkg.dev/proj/reg".into(),
            ),
            Error::BadReference { .. } => {
                Some("build again: op writes registry/repository:tag@sha256:… references".into())
            }
        }
    }
}

/// The key of environment `name` (`dev`, `pp`, `prod`); other names have none.
pub fn environment_key(name: &str) -> Option<&'static str> {
    match name.trim() {
        "dev" => Some("GOOGLE_GKE_IMAGE_REPOSITORY"),
        "pp" => Some("GOOGLE_GKE_IMAGE_PP_REPOSITORY"),
        "prod" => Some("GOOGLE_GKE_IMAGE_PROD_REPOSITORY"),
        _ => None,
    }
}

/// The repository of `side`: `flag`, else the key of `environment`, else the side's fallback
/// key; trimmed, without a trailing `/`.
pub fn repository(
    config: &Config,
    side: Side,
    environment: Option<&str>,
    flag: Option<&str>,
) -> Result<Resolved<String>, Error> {
    let key = environment.and_then(environment_key);
    let found = flag
        .map(|value| Resolved {
            value: value.to_string(),
            origin: Origin::Flag(side.flag().unwrap_or_default().to_string()),
        })
        .or_else(|| key.and_then(|k| config.setting(k)))
        .or_else(|| config.setting(side.fallback()))
        .filter(|r| !r.value.trim().is_empty());
    let Some(found) = found else {
        return Err(Error::NoRepository {
            side: side.name(),
            environment: environment.map(str::to_string),
            keys: key
                .into_iter()
                .chain(std::iter::once(side.fallback()))
                .map(|k| format!("${k}"))
                .collect(),
            flag: side.flag(),
        });
    };
    let value = found.value.trim().trim_end_matches('/').to_string();
    let bad = |problem: String| Error::BadRepository {
        side: side.name(),
        value: value.clone(),
        origin: found.origin.to_string(),
        problem,
    };
    if value.contains('@')
        || value
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        return Err(bad("it names a tag or a digest".into()));
    }
    op_oci::Reference::parse(&format!("{value}/image")).map_err(|e| bad(e.to_string()))?;
    Ok(Resolved {
        value,
        origin: found.origin,
    })
}

/// The destination of `source` (a build result's `registry/repository:tag@sha256:…`): the
/// source with the source repository replaced by the destination's. A source outside the
/// source repository keeps its whole path under the destination, as upstream does.
pub fn destination_reference(source: &str, source_repo: &str, destination_repo: &str) -> String {
    let prefix = format!("{}/", source_repo.trim_end_matches('/'));
    let relative = source.strip_prefix(&prefix).unwrap_or(source);
    format!("{}/{relative}", destination_repo.trim_end_matches('/'))
}

/// A build result's reference split: (`registry/repository:tag`, the digest), each checked.
pub fn split_reference(reference: &str) -> Result<(String, Option<String>), Error> {
    let parsed = op_oci::Reference::parse(reference).map_err(|e| Error::BadReference {
        reference: reference.to_string(),
        problem: e.to_string(),
    })?;
    let tagged = match &parsed.tag {
        Some(tag) => format!("{}:{tag}", parsed.name()),
        None => parsed.name(),
    };
    Ok((tagged, parsed.digest.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    fn config(env: &[(&str, &str)], properties: Option<&str>) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = properties {
            fs_err::write(dir.path().join("pipeline.properties"), text).unwrap();
        }
        let env = Env::from_pairs(env.iter().map(|(k, v)| (*k, (*v).to_string())));
        let flag = properties.map(|_| dir.path().join("pipeline.properties"));
        let config = Config::load(dir.path(), env, flag.as_deref()).unwrap();
        (dir, config)
    }

    #[test]
    fn upstream_s_example_keeps_the_path_tag_and_digest() {
        assert_eq!(
            destination_reference(
                "ghcr.io/acme/my-app:v1@sha256:abc",
                "ghcr.io/acme",
                "europe-west1-docker.pkg.dev/proj/reg"
            ),
            "europe-west1-docker.pkg.dev/proj/reg/my-app:v1@sha256:abc"
        );
        assert_eq!(
            destination_reference("other.io/x/app:v1", "ghcr.io/acme/", "reg.io/prod/"),
            "reg.io/prod/other.io/x/app:v1",
            "a source outside the source repository keeps its whole path (upstream)"
        );
    }

    #[test]
    fn repositories_come_from_the_flag_the_environment_key_then_the_fallback() {
        let (_d, c) = config(
            &[
                ("GOOGLE_GKE_IMAGE_PP_REPOSITORY", "reg.io/pp/"),
                ("PROMOTE_SOURCE_REPOSITORY", "reg.io/fallback"),
            ],
            Some(
                "GOOGLE_GKE_IMAGE_REPOSITORY=reg.io/dev\nPROMOTE_DESTINATION_REPOSITORY=reg.io/file\n",
            ),
        );
        let dev = repository(&c, Side::Source, Some("dev"), None).unwrap();
        assert_eq!(dev.value, "reg.io/dev");
        assert!(
            matches!(dev.origin, Origin::File { .. }),
            "{:?}",
            dev.origin
        );
        let pp = repository(&c, Side::Destination, Some("pp"), None).unwrap();
        assert_eq!(
            (pp.value.as_str(), pp.origin.to_string().as_str()),
            ("reg.io/pp", "$GOOGLE_GKE_IMAGE_PP_REPOSITORY")
        );
        let qa = repository(&c, Side::Source, Some("qa"), None).unwrap();
        assert_eq!(
            qa.value, "reg.io/fallback",
            "an unknown environment has no key"
        );
        let prod = repository(&c, Side::Destination, Some("prod"), None).unwrap();
        assert_eq!(
            prod.value, "reg.io/file",
            "the fallback from the settings file"
        );
        let flag = repository(&c, Side::Destination, Some("pp"), Some("reg.io/direct")).unwrap();
        assert_eq!(flag.origin.to_string(), "--to");
    }

    #[test]
    fn a_missing_or_bad_repository_names_the_keys_and_the_flag() {
        let (_d, c) = config(
            &[("GOOGLE_GKE_IMAGE_PROD_REPOSITORY", "reg.io/prod:v1")],
            None,
        );
        let missing = repository(&c, Side::Destination, Some("pp"), None).unwrap_err();
        assert_eq!(
            missing.to_string(),
            "No destination repository is set for environment `pp`"
        );
        assert_eq!(
            missing.hint().unwrap(),
            "set $GOOGLE_GKE_IMAGE_PP_REPOSITORY or $PROMOTE_DESTINATION_REPOSITORY (in the environment, or in \
             .github/octopilot.yaml or pipeline.properties), or give --to REPO"
        );
        let bad = repository(&c, Side::Destination, Some("prod"), None).unwrap_err();
        assert!(bad.to_string().contains("names a tag or a digest"), "{bad}");
    }

    #[test]
    fn references_split_into_the_tagged_name_and_the_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            split_reference(&format!("ghcr.io/acme/app:v1@{digest}")).unwrap(),
            ("ghcr.io/acme/app:v1".to_string(), Some(digest))
        );
        assert!(split_reference("Not A Ref").is_err());
    }
}
