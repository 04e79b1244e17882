//! op's own settings (`OP_*`): each an environment variable, most with a flag that wins over
//! it. Their precedence lives here and only here, `flag > environment`, an empty value being
//! unset; commands hand the flags in and get resolved values back, and never read the
//! environment themselves. docs/configuration.md lists every one (`tests/it/architecture.rs`
//! checks its tables against [`ALL`]).

use std::path::PathBuf;

use super::{Config, Env, Error, Origin, Resolved};

/// One `OP_*` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpSetting {
    /// The environment variable.
    pub var: &'static str,
    /// The flag that wins over it, when there is one.
    pub flag: Option<&'static str>,
}

/// The skaffold binary op runs for the artifacts it hands to skaffold.
pub const SKAFFOLD: OpSetting = OpSetting {
    var: "OP_SKAFFOLD",
    flag: Some("--skaffold"),
};
/// The registry of ttl mode (`--ttl-uuid`), instead of ttl.sh.
pub const TTL_REGISTRY: OpSetting = OpSetting {
    var: "OP_TTL_REGISTRY",
    flag: None,
};
/// The pull-through mirror of builders and run images.
pub const IMAGE_REGISTRY: OpSetting = OpSetting {
    var: "OP_IMAGE_REGISTRY",
    flag: Some("--image-registry"),
};
/// The network of the build containers.
pub const PACK_NETWORK: OpSetting = OpSetting {
    var: "OP_PACK_NETWORK",
    flag: Some("--network"),
};
/// The image the builds cache in, instead of cache volumes.
pub const CACHE_IMAGE: OpSetting = OpSetting {
    var: "OP_CACHE_IMAGE",
    flag: Some("--cache-image"),
};
/// Where `op builder create` looks for op-lifecycle when `[lifecycle] uri` is not set.
pub const LIFECYCLE_DIR: OpSetting = OpSetting {
    var: "OP_LIFECYCLE_DIR",
    flag: None,
};

/// CA certificates (a PEM file) to trust for registries, besides the system's.
pub const REGISTRY_CA_PATH: OpSetting = OpSetting {
    var: "OP_REGISTRY_CA_PATH",
    flag: None,
};

/// Every `OP_*` setting.
pub const ALL: [OpSetting; 7] = [
    SKAFFOLD,
    TTL_REGISTRY,
    IMAGE_REGISTRY,
    PACK_NETWORK,
    CACHE_IMAGE,
    LIFECYCLE_DIR,
    REGISTRY_CA_PATH,
];

impl OpSetting {
    /// The flag's value, else the variable's, trimmed; `None` when neither is set or the one
    /// that wins is empty.
    pub fn resolve(&self, flag: Option<&str>, env: &Env) -> Option<Resolved<String>> {
        let (value, origin) = match (flag, self.flag) {
            (Some(value), Some(name)) => (value, Origin::Flag(name.to_string())),
            _ => (env.get(self.var)?, Origin::Env(self.var.to_string())),
        };
        let value = value.trim();
        (!value.is_empty()).then(|| Resolved {
            value: value.to_string(),
            origin,
        })
    }
}

impl Config {
    /// `--image-registry`, else `$OP_IMAGE_REGISTRY`: a registry (or a repository prefix in
    /// one), without a trailing `/`, checked.
    pub fn image_registry(&self, flag: Option<&str>) -> Result<Option<String>, Error> {
        let Some(found) = IMAGE_REGISTRY.resolve(flag, self.env()) else {
            return Ok(None);
        };
        let value = found.value.trim_end_matches('/').to_string();
        op_oci::reference::validate_repository_prefix(&value).map_err(|source| {
            Error::InvalidRepository {
                value: value.clone(),
                origin: found.origin,
                source,
            }
        })?;
        Ok(Some(value))
    }

    /// `$OP_TTL_REGISTRY`, else `default`.
    pub fn ttl_registry(&self, default: &str) -> String {
        TTL_REGISTRY
            .resolve(None, self.env())
            .map_or_else(|| default.to_string(), |r| r.value)
    }

    /// `--network`, else `$OP_PACK_NETWORK`.
    pub fn pack_network(&self, flag: Option<&str>) -> Option<String> {
        PACK_NETWORK.resolve(flag, self.env()).map(|r| r.value)
    }

    /// `--cache-image`, else `$OP_CACHE_IMAGE` (not checked here: the builds know what a cache
    /// image must be).
    pub fn cache_image(&self, flag: Option<&str>) -> Option<Resolved<String>> {
        CACHE_IMAGE.resolve(flag, self.env())
    }
}

/// `--skaffold`, else `$OP_SKAFFOLD`: the binary and where it was named.
pub fn skaffold_binary(flag: Option<&std::path::Path>, env: &Env) -> Option<(PathBuf, Origin)> {
    let flag = flag.map(|p| p.to_string_lossy().into_owned());
    SKAFFOLD
        .resolve(flag.as_deref(), env)
        .map(|r| (PathBuf::from(r.value), r.origin))
}

/// The CA certificates of `$OP_REGISTRY_CA_PATH`: its path, and each certificate (DER).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryCa {
    pub path: PathBuf,
    pub certificates: Vec<Vec<u8>>,
}

/// `$OP_REGISTRY_CA_PATH`, read and checked: a PEM file of at least one certificate.
pub fn registry_ca(env: &Env) -> Result<Option<RegistryCa>, Error> {
    let Some(found) = REGISTRY_CA_PATH.resolve(None, env) else {
        return Ok(None);
    };
    let text = fs_err::read_to_string(&found.value).map_err(|source| Error::Read {
        path: found.value.clone(),
        source,
    })?;
    let certificates = op_oci::pem_certificates(&text).ok_or_else(|| Error::RegistryCa {
        path: found.value.clone(),
    })?;
    Ok(Some(RegistryCa {
        path: PathBuf::from(found.value),
        certificates,
    }))
}

/// `$OP_LIFECYCLE_DIR`.
pub fn lifecycle_dir(env: &Env) -> Option<PathBuf> {
    LIFECYCLE_DIR
        .resolve(None, env)
        .map(|r| PathBuf::from(r.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_variable_and_empty_is_unset() {
        let env = Env::from_pairs([("OP_PACK_NETWORK", " ci "), ("OP_CACHE_IMAGE", "")]);
        let network = PACK_NETWORK.resolve(None, &env).unwrap();
        assert_eq!(
            (network.value.as_str(), network.origin),
            ("ci", Origin::Env("OP_PACK_NETWORK".into()))
        );
        let network = PACK_NETWORK.resolve(Some("host"), &env).unwrap();
        assert_eq!(
            (network.value.as_str(), network.origin),
            ("host", Origin::Flag("--network".into()))
        );
        assert_eq!(PACK_NETWORK.resolve(Some(""), &env), None);
        assert_eq!(CACHE_IMAGE.resolve(None, &env), None);
        // A setting without a flag reads its variable only.
        assert_eq!(TTL_REGISTRY.resolve(Some("x"), &env), None);
    }

    /// docs/configuration.md has a table row for every setting, with its flag.
    #[test]
    fn the_configuration_doc_lists_every_setting_with_its_flag() {
        let doc = fs_err::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/configuration.md"
        ))
        .unwrap();
        for setting in ALL {
            let var = format!("`{}`", setting.var);
            let row = doc
                .lines()
                .find(|l| l.starts_with('|') && l.contains(&var))
                .unwrap_or_else(|| panic!("docs/configuration.md has no table row for {var}"));
            if let Some(flag) = setting.flag {
                assert!(
                    row.contains(&format!("`{flag}`")) || row.contains(&format!("`{flag} ")),
                    "the row of {var} does not name {flag}: {row}"
                );
            }
        }
    }
}
