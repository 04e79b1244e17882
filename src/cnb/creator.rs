//! The creator container, as pack runs it in publish mode (`docs/cnb-platform.md` sections 1.3
//! and 1.4): image = builder, user root, entrypoint `[""]`, `/cnb/lifecycle/creator` with every
//! flag before the image, `CNB_PLATFORM_API`, `CNB_REGISTRY_AUTH`, fresh `/layers` and
//! `/workspace` volumes and a cache volume, `no-new-privileges`.

use std::collections::BTreeMap;

use cnb_data::api::Version;

use super::builder::BuilderInfo;
use crate::engine::ContainerSpec;

/// Where the creator finds the app, its layers and its cache.
pub const APP_DIR: &str = "/workspace";
pub const LAYERS_DIR: &str = "/layers";
pub const CACHE_DIR: &str = "/cache";
pub const CREATOR: &str = "/cnb/lifecycle/creator";

/// The environment variable that carries registry credentials into the creator.
pub const REGISTRY_AUTH_ENV: &str = "CNB_REGISTRY_AUTH";

/// Variables passed through from op's environment, as pack does.
pub const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The named volumes of one build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Volumes {
    pub layers: String,
    pub workspace: String,
    pub cache: String,
}

/// Everything the creator container is made of.
#[derive(Clone, Debug)]
pub struct CreatorInputs<'a> {
    pub builder: &'a BuilderInfo,
    pub platform_api: Version,
    /// The image to publish, then extra tags.
    pub image: &'a str,
    pub tags: &'a [String],
    pub run_image: &'a str,
    pub insecure_registries: &'a [String],
    /// `CNB_REGISTRY_AUTH`, when any registry has credentials.
    pub registry_auth: Option<&'a str>,
    pub volumes: &'a Volumes,
    /// `source:target[:ro]` mounts the artifact asks for (`buildpacks.volumes`).
    pub extra_binds: &'a [String],
    pub network: Option<&'a str>,
    /// `clearCache`: build as if there were no cache.
    pub skip_restore: bool,
    /// The cache is this image (`-cache-image`) instead of the cache volume.
    pub cache_image: Option<&'a str>,
    /// `-log-level debug` (op's `-vv`).
    pub debug: bool,
    pub proxies: &'a [(String, String)],
    /// The CA certificates were uploaded (`app::CA_FILE`): `SSL_CERT_FILE` names them.
    pub ca_certificates: bool,
    pub labels: &'a BTreeMap<String, String>,
    pub name: &'a str,
    /// The platform of a multi-platform build (`os/arch`), for the engine.
    pub platform: Option<&'a str>,
}

/// The creator's command line: the binary, every flag, then the image.
pub fn command(inputs: &CreatorInputs<'_>) -> Vec<String> {
    let mut cmd: Vec<String> = vec![CREATOR.into()];
    let mut flag = |name: &str, value: &str| {
        cmd.push(format!("-{name}"));
        cmd.push(value.to_string());
    };
    flag("app", APP_DIR);
    match inputs.cache_image {
        Some(image) => flag("cache-image", image),
        None => flag("cache-dir", CACHE_DIR),
    }
    flag("uid", &inputs.builder.uid.to_string());
    flag("gid", &inputs.builder.gid.to_string());
    flag("run-image", inputs.run_image);
    for tag in inputs.tags {
        flag("tag", tag);
    }
    if inputs.platform_api.at_least(Version(0, 13)) {
        for host in inputs.insecure_registries {
            flag("insecure-registry", host);
        }
    }
    if inputs.debug {
        flag("log-level", "debug");
    }
    if inputs.skip_restore {
        cmd.push("-skip-restore".into());
    }
    cmd.push(inputs.image.to_string());
    cmd
}

/// The creator container.
pub fn container(inputs: &CreatorInputs<'_>) -> ContainerSpec {
    // The reference lifecycle colours its output (`\x1b[36m===> DETECTING\x1b[0m`) unless told
    // not to; op shows the lines in its own display, prefixed, and reads the phase banners.
    let mut env: Vec<(String, String)> = vec![
        ("CNB_PLATFORM_API".into(), inputs.platform_api.to_string()),
        ("CNB_NO_COLOR".into(), "true".into()),
    ];
    if inputs.platform_api.at_least(Version(0, 15)) {
        env.push(("CNB_EXEC_ENV".into(), "production".into()));
    }
    if let Some(auth) = inputs.registry_auth {
        env.push((REGISTRY_AUTH_ENV.into(), auth.to_string()));
    }
    env.extend(inputs.proxies.iter().cloned());
    if inputs.ca_certificates {
        env.push(("SSL_CERT_FILE".into(), super::app::CA_FILE.into()));
    }
    let v = inputs.volumes;
    let mut binds = vec![
        format!("{}:{LAYERS_DIR}", v.layers),
        format!("{}:{APP_DIR}", v.workspace),
    ];
    if inputs.cache_image.is_none() {
        binds.push(format!("{}:{CACHE_DIR}", v.cache));
    }
    binds.extend(inputs.extra_binds.iter().cloned());
    ContainerSpec {
        name: Some(inputs.name.to_string()),
        image: inputs.builder.image.clone(),
        entrypoint: Some(vec![String::new()]),
        cmd: Some(command(inputs)),
        env,
        user: Some("root".into()),
        working_dir: None,
        labels: inputs.labels.clone(),
        ports: Vec::new(),
        binds,
        network_mode: inputs.network.map(str::to_string),
        security_opt: vec!["no-new-privileges=true".into()],
        auto_remove: false,
        platform: inputs.platform.map(str::to_string),
    }
}

/// `spec` with the registry credentials replaced, for logs and `--dry-run`.
pub fn redacted(spec: &ContainerSpec) -> ContainerSpec {
    let mut spec = spec.clone();
    for (key, value) in &mut spec.env {
        if key == REGISTRY_AUTH_ENV {
            *value = "<redacted>".into();
        }
    }
    spec
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnb_data::files::BuilderMetadata;

    fn builder() -> BuilderInfo {
        BuilderInfo {
            order: Vec::new(),
            image: "ghcr.io/octopilot/builder-jammy-base:latest".into(),
            uid: 1001,
            gid: 1000,
            metadata: BuilderMetadata::default(),
            platform_apis: vec![Version(0, 12), Version(0, 15)],
            identity: "sha256:builder".into(),
        }
    }

    fn with<R>(api: Version, f: impl FnOnce(&CreatorInputs<'_>) -> R) -> R {
        let builder = builder();
        let volumes = Volumes {
            layers: "op-layers-1".into(),
            workspace: "op-workspace-1".into(),
            cache: "op-cache-x".into(),
        };
        let labels = BTreeMap::from([("io.octopilot.op.kind".to_string(), "build".to_string())]);
        let tags = ["localhost:5001/api:v1".to_string()];
        let insecure = ["reg.internal:5000".to_string()];
        let proxies = [("HTTPS_PROXY".to_string(), "http://proxy:3128".to_string())];
        let binds = ["/srv/certs:/certs:ro".to_string()];
        let inputs = CreatorInputs {
            builder: &builder,
            platform_api: api,
            image: "localhost:5001/api:latest",
            tags: &tags,
            run_image: "localhost:5001/base@sha256:abc",
            insecure_registries: &insecure,
            registry_auth: Some(r#"{"ghcr.io":"Basic c2VjcmV0"}"#),
            volumes: &volumes,
            extra_binds: &binds,
            network: Some("host"),
            skip_restore: false,
            cache_image: None,
            debug: false,
            proxies: &proxies,
            ca_certificates: false,
            labels: &labels,
            name: "op-build-1-api",
            platform: None,
        };
        f(&inputs)
    }

    #[test]
    fn a_cache_image_replaces_the_cache_volume() {
        let spec = with(Version(0, 15), |inputs| {
            container(&CreatorInputs {
                cache_image: Some("ghcr.io/acme/cache:api"),
                ..inputs.clone()
            })
        });
        let cmd = spec.cmd.unwrap();
        assert_eq!(cmd[3..5], ["-cache-image", "ghcr.io/acme/cache:api"]);
        assert!(!cmd.iter().any(|a| a == "-cache-dir"));
        assert!(
            !spec.binds.iter().any(|b| b.ends_with(":/cache")),
            "{:?}",
            spec.binds
        );
    }

    #[test]
    fn the_creator_runs_as_root_with_every_flag_before_the_image() {
        let spec = with(Version(0, 15), container);
        assert_eq!(spec.user.as_deref(), Some("root"));
        assert_eq!(spec.entrypoint, Some(vec![String::new()]));
        assert_eq!(spec.image, "ghcr.io/octopilot/builder-jammy-base:latest");
        assert_eq!(
            spec.cmd.unwrap(),
            [
                "/cnb/lifecycle/creator",
                "-app",
                "/workspace",
                "-cache-dir",
                "/cache",
                "-uid",
                "1001",
                "-gid",
                "1000",
                "-run-image",
                "localhost:5001/base@sha256:abc",
                "-tag",
                "localhost:5001/api:v1",
                "-insecure-registry",
                "reg.internal:5000",
                "localhost:5001/api:latest",
            ]
        );
        assert_eq!(
            spec.binds,
            [
                "op-layers-1:/layers",
                "op-workspace-1:/workspace",
                "op-cache-x:/cache",
                "/srv/certs:/certs:ro"
            ]
        );
        assert_eq!(spec.network_mode.as_deref(), Some("host"));
        assert_eq!(spec.security_opt, ["no-new-privileges=true"]);
        assert!(
            !spec.auto_remove,
            "op reads the exit code and report.toml before removing it"
        );
        assert_eq!(spec.labels["io.octopilot.op.kind"], "build");
    }

    #[test]
    fn the_environment_follows_the_platform_api() {
        let env = |api| with(api, container).env;
        let newest = env(Version(0, 15));
        assert_eq!(newest[0], ("CNB_PLATFORM_API".into(), "0.15".into()));
        assert!(
            newest.contains(&("CNB_NO_COLOR".into(), "true".into())),
            "the lifecycle's banners are read, so not coloured"
        );
        assert!(newest.contains(&("CNB_EXEC_ENV".into(), "production".into())));
        assert!(newest.contains(&(
            "CNB_REGISTRY_AUTH".into(),
            r#"{"ghcr.io":"Basic c2VjcmV0"}"#.into()
        )));
        assert!(newest.contains(&("HTTPS_PROXY".into(), "http://proxy:3128".into())));
        let older = env(Version(0, 12));
        assert_eq!(older[0], ("CNB_PLATFORM_API".into(), "0.12".into()));
        assert!(
            !older.iter().any(|(k, _)| k == "CNB_EXEC_ENV"),
            "CNB_EXEC_ENV exists from 0.15"
        );
        assert!(
            !older.iter().any(|(k, _)| k == "CNB_USER_ID"),
            "the ids come from the builder's env and the flags"
        );
    }

    #[test]
    fn insecure_registries_are_passed_from_platform_api_0_13() {
        let has = |api| with(api, command).contains(&"-insecure-registry".to_string());
        assert!(!has(Version(0, 12)));
        assert!(has(Version(0, 13)));
    }

    #[test]
    fn clear_cache_and_debug_add_their_flags_before_the_image() {
        let builder = builder();
        let cmd = with(Version(0, 14), |inputs| {
            let mut inputs = inputs.clone();
            inputs.builder = &builder;
            inputs.skip_restore = true;
            inputs.debug = true;
            command(&inputs)
        });
        let n = cmd.len();
        assert_eq!(
            cmd[n - 4..],
            [
                "-log-level",
                "debug",
                "-skip-restore",
                "localhost:5001/api:latest"
            ]
        );
    }

    #[test]
    fn credentials_never_reach_logs() {
        let spec = with(Version(0, 15), container);
        let shown = format!("{:?}", redacted(&spec));
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
        assert!(shown.contains("CNB_REGISTRY_AUTH") && shown.contains("<redacted>"));
    }
}
