use std::os::unix::fs::PermissionsExt as _;

use super::*;

struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        fs_err::create_dir_all(dir.path().join(".docker")).unwrap();
        fs_err::write(dir.path().join(".docker/config.json"), config).unwrap();
        fs_err::create_dir_all(dir.path().join("bin")).unwrap();
        Self { dir }
    }

    /// A credential helper: prints `stdout` and exits with `code`; it records its stdin.
    fn helper(&self, name: &str, stdout: &str, code: i32) {
        let path = self
            .dir
            .path()
            .join("bin")
            .join(format!("docker-credential-{name}"));
        let log = self.dir.path().join(format!("{name}.stdin"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 9\ncat > '{}'\nprintf '%s' '{stdout}'\nexit {code}\n",
            log.display()
        );
        fs_err::write(&path, script).unwrap();
        fs_err::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn asked(&self, name: &str) -> String {
        fs_err::read_to_string(self.dir.path().join(format!("{name}.stdin"))).unwrap()
    }

    fn env(&self) -> Env {
        Env::from_pairs([
            ("HOME", self.dir.path().display().to_string()),
            (
                "PATH",
                format!("{}:/usr/bin:/bin", self.dir.path().join("bin").display()),
            ),
        ])
    }

    fn resolve(&self, hosts: &[&str]) -> Result<Credentials, Error> {
        Credentials::resolve(
            &self.env(),
            &hosts.iter().map(|h| (*h).to_string()).collect::<Vec<_>>(),
        )
    }
}

fn basic(user: &str, pass: &str) -> Credential {
    Credential::Basic {
        username: user.into(),
        password: pass.into(),
    }
}

#[test]
fn auths_entries_in_every_form() {
    let home = Home::new(
        r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
            "https://ghcr.io/v2/": {"username": "octo", "password": "pat"},
            "reg.example:5000": {"identitytoken": "refresh"},
            "tokens.example": {"registrytoken": "bearer-token"},
            "empty.example": {}
        }}"#,
    );
    let creds = home
        .resolve(&[
            "docker.io",
            "ghcr.io",
            "reg.example:5000",
            "tokens.example",
            "empty.example",
            "other.example",
        ])
        .unwrap();
    let expected = Credentials::from_entries([
        ("index.docker.io".to_string(), basic("hub", "secret")),
        ("ghcr.io".to_string(), basic("octo", "pat")),
        (
            "reg.example:5000".to_string(),
            Credential::Identity("refresh".into()),
        ),
        (
            "tokens.example".to_string(),
            Credential::Bearer("bearer-token".into()),
        ),
    ]);
    assert_eq!(creds, expected);
    let json: serde_json::Value =
        serde_json::from_str(&creds.cnb_registry_auth().unwrap()).unwrap();
    assert_eq!(json["index.docker.io"], "Basic aHViOnNlY3JldA==");
    assert_eq!(json["ghcr.io"], "Basic b2N0bzpwYXQ=");
    assert_eq!(json["reg.example:5000"], "X-Identity refresh");
    assert_eq!(json["tokens.example"], "Bearer bearer-token");
    assert_eq!(
        json.as_object().unwrap().len(),
        4,
        "anonymous registries are left out"
    );
}

#[test]
fn secrets_never_show_in_debug_output() {
    let creds = Credentials::from_entries([
        ("ghcr.io".to_string(), basic("octo", "s3cr3t")),
        ("b.example".to_string(), Credential::Bearer("t0k3n".into())),
    ]);
    let debug = format!("{creds:?}");
    assert!(
        debug.contains("octo") && !debug.contains("s3cr3t") && !debug.contains("t0k3n"),
        "{debug}"
    );
}

#[test]
fn credential_helpers_win_over_the_store_and_auths() {
    let home = Home::new(
        r#"{"auths": {"ghcr.io": {"auth": "YTpi"}, "store.example": {}},
            "credHelpers": {"ghcr.io": "gh", "hub.example": "gh"},
            "credsStore": "desktop"}"#,
    );
    home.helper(
        "gh",
        r#"{"ServerURL":"ghcr.io","Username":"from-helper","Secret":"hs"}"#,
        0,
    );
    home.helper(
        "desktop",
        r#"{"ServerURL":"x","Username":"<token>","Secret":"identity"}"#,
        0,
    );
    let creds = home.resolve(&["ghcr.io", "store.example"]).unwrap();
    assert_eq!(
        creds,
        Credentials::from_entries([
            ("ghcr.io".to_string(), basic("from-helper", "hs")),
            (
                "store.example".to_string(),
                Credential::Identity("identity".into())
            ),
        ])
    );
    assert_eq!(
        home.asked("gh"),
        "ghcr.io",
        "the helper gets the server URL on stdin"
    );
    home.resolve(&["docker.io"]).unwrap();
    assert_eq!(
        home.asked("desktop"),
        DOCKER_HUB_SERVER,
        "Docker Hub is asked for by its v1 URL"
    );
}

#[test]
fn a_helper_without_credentials_means_anonymous_and_a_broken_one_is_an_error() {
    let home = Home::new(r#"{"credsStore": "pass"}"#);
    home.helper("pass", "credentials not found in native keychain", 1);
    assert!(home.resolve(&["ghcr.io"]).unwrap().is_empty());

    home.helper("pass", "boom", 3);
    let error = home.resolve(&["ghcr.io"]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("docker-credential-pass` failed for `ghcr.io`"),
        "{error}"
    );
    assert!(error.to_string().contains("boom"), "{error}");

    let missing = Home::new(r#"{"credHelpers": {"ghcr.io": "nowhere"}}"#);
    let error = missing.resolve(&["ghcr.io"]).unwrap_err();
    assert!(error.to_string().contains("it is not on PATH"), "{error}");
    assert!(error.hint().unwrap().contains("docker-credential-nowhere"));
}

#[test]
fn the_configuration_is_found_like_the_docker_cli_finds_it() {
    let home = Home::new(r#"{"auths": {"ghcr.io": {"auth": "aG9tZTpo"}}}"#);
    let elsewhere = tempfile::tempdir().unwrap();
    fs_err::write(
        elsewhere.path().join("config.json"),
        r#"{"auths": {"ghcr.io": {"auth": "ZW52OmU="}}}"#,
    )
    .unwrap();
    let mut env = home.env();
    env.set("DOCKER_CONFIG", elsewhere.path().display().to_string());
    let hosts = ["ghcr.io".to_string()];
    let creds = Credentials::resolve(&env, &hosts).unwrap();
    assert_eq!(
        creds,
        Credentials::from_entries([("ghcr.io".to_string(), basic("env", "e"))])
    );

    fs_err::write(elsewhere.path().join("config.json"), "{not json").unwrap();
    let error = Credentials::resolve(&env, &hosts).unwrap_err();
    assert!(matches!(error, Error::Invalid { .. }), "{error}");

    let nothing = Env::from_pairs([("HOME", elsewhere.path().join("none").display().to_string())]);
    assert!(Credentials::resolve(&nothing, &hosts).unwrap().is_empty());
}

#[test]
fn docker_hub_and_its_names_are_keyed_as_go_containerregistry_keys_them() {
    let home = Home::new(
        r#"{"auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldA=="},
            "registry-1.docker.io": {"auth": "cjE6b3RoZXI="}
        },
        "credHelpers": {"index.docker.io": "never", "https://index.docker.io/v1/": "hub"}}"#,
    );
    home.helper(
        "hub",
        r#"{"ServerURL":"x","Username":"from-hub-helper","Secret":"h"}"#,
        0,
    );
    let creds = home
        .resolve(&["docker.io", "index.docker.io", "registry-1.docker.io"])
        .unwrap();
    assert_eq!(
        creds,
        Credentials::from_entries([
            ("index.docker.io".to_string(), basic("from-hub-helper", "h")),
            ("registry-1.docker.io".to_string(), basic("r1", "other")),
        ]),
        "docker.io is index.docker.io, whose helper is keyed by the v1 URL; \
         registry-1.docker.io is a registry of its own"
    );
    assert_eq!(home.asked("hub"), DOCKER_HUB_SERVER);
    let json: serde_json::Value =
        serde_json::from_str(&creds.cnb_registry_auth().unwrap()).unwrap();
    assert_eq!(
        json.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["index.docker.io", "registry-1.docker.io"],
        "the keys the lifecycle looks up (RegistryStr)"
    );
}

#[test]
fn podman_configurations_are_read_when_there_is_no_docker_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth.json");
    fs_err::write(&file, r#"{"auths": {"quay.io": {"auth": "cDpx"}}}"#).unwrap();
    let hosts = ["quay.io".to_string()];
    let env = Env::from_pairs([
        ("HOME", dir.path().join("home").display().to_string()),
        ("REGISTRY_AUTH_FILE", file.display().to_string()),
    ]);
    assert_eq!(
        Credentials::resolve(&env, &hosts).unwrap(),
        Credentials::from_entries([("quay.io".to_string(), basic("p", "q"))])
    );
    fs_err::create_dir_all(dir.path().join("xdg/containers")).unwrap();
    fs_err::rename(&file, dir.path().join("xdg/containers/auth.json")).unwrap();
    let env = Env::from_pairs([
        ("HOME", dir.path().join("home").display().to_string()),
        (
            "XDG_CONFIG_HOME",
            dir.path().join("xdg").display().to_string(),
        ),
    ]);
    assert_eq!(
        Credentials::resolve(&env, &hosts).unwrap().get("quay.io"),
        Some(&basic("p", "q"))
    );
}

#[test]
fn the_action_s_docker_config_content_wins_over_the_file() {
    let home = Home::new(r#"{"auths": {"ghcr.io": {"username": "file", "password": "f"}}}"#);
    let mut pairs: Vec<(String, String)> = home
        .env()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pairs.push((
        CONFIG_CONTENT.into(),
        r#"{"auths": {"ghcr.io": {"username": "content", "password": "c"}}}"#.into(),
    ));
    let env = Env::from_pairs(pairs.clone());
    let creds = Credentials::resolve(&env, &["ghcr.io".to_string()]).unwrap();
    assert_eq!(creds.get("ghcr.io"), Some(&basic("content", "c")));

    pairs.pop();
    pairs.push((CONFIG_CONTENT.into(), "{not json".into()));
    let error =
        Credentials::resolve(&Env::from_pairs(pairs), &["ghcr.io".to_string()]).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("`$DOCKER_CONFIG_CONTENT` is not valid JSON"),
        "{error}"
    );
    assert!(
        error
            .hint()
            .unwrap()
            .contains("DOCKER_CONFIG_CONTENT must hold a Docker configuration")
    );
}
