use super::*;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn environ(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    env.entry("CNB_PLATFORM_API".into())
        .or_insert_with(|| "0.12".into());
    env
}

#[test]
fn defaults_follow_the_platform_spec() {
    let options = options(&args(&["registry.example/app:1"]), &environ(&[])).unwrap();
    assert_eq!(options.image, "registry.example/app:1");
    assert_eq!(
        options.previous_image, "registry.example/app:1",
        "the previous image defaults to the image"
    );
    assert_eq!(options.app, Path::new("/workspace"));
    assert_eq!(options.layers, Path::new("/layers"));
    assert_eq!(options.report, Path::new("/layers/report.toml"));
    assert_eq!(options.run, Path::new("/cnb/run.toml"));
    assert_eq!(options.launcher, Path::new("/cnb/lifecycle/launcher"));
    assert_eq!((options.uid, options.gid), (0, 0));
    assert_eq!(options.cache_dir, None);
    assert_eq!(
        options.exec_env, None,
        "exec-env exists from Platform API 0.15"
    );
}

#[test]
fn flags_win_over_the_environment() {
    let env = environ(&[
        ("CNB_USER_ID", "1000"),
        ("CNB_GROUP_ID", "1001"),
        ("CNB_RUN_IMAGE", "env/run"),
        ("CNB_CACHE_DIR", "/env-cache"),
    ]);
    let options = options(
        &args(&[
            "-uid",
            "2000",
            "-run-image=flag/run",
            "-tag",
            "r/a:2",
            "-tag",
            "r/a:3",
            "r/a:1",
        ]),
        &env,
    )
    .unwrap();
    assert_eq!((options.uid, options.gid), (2000, 1001));
    assert_eq!(options.run_image.as_deref(), Some("flag/run"));
    assert_eq!(options.cache_dir.as_deref(), Some(Path::new("/env-cache")));
    assert_eq!(options.tags, ["r/a:2", "r/a:3"]);
}

#[test]
fn the_order_in_the_layers_directory_wins_over_the_builders() {
    let dir = tempfile::tempdir().unwrap();
    let layers = dir.path().display().to_string();
    let options_for = |extra: &[&str]| {
        let mut list = vec!["-layers", layers.as_str()];
        list.extend(extra);
        list.push("r/a");
        options(&args(&list), &environ(&[])).unwrap().order
    };
    assert_eq!(options_for(&[]), Path::new("/cnb/order.toml"));
    fs_err::write(dir.path().join("order.toml"), "").unwrap();
    assert_eq!(options_for(&[]), dir.path().join("order.toml"));
    assert_eq!(
        options_for(&["-order", "/elsewhere.toml"]),
        Path::new("/elsewhere.toml")
    );
}

#[test]
fn mistakes_exit_with_the_reference_codes() {
    let code =
        |list: &[&str], env: &BTreeMap<String, String>| options(&args(list), env).unwrap_err().code;
    assert_eq!(code(&["-no-such-flag", "r/a"], &environ(&[])), exit::USAGE);
    assert_eq!(code(&["-uid", "nobody", "r/a"], &environ(&[])), exit::USAGE);
    assert_eq!(code(&[], &environ(&[])), exit::INVALID_ARGS);
    assert_eq!(code(&["r/a", "r/b"], &environ(&[])), exit::INVALID_ARGS);
    assert_eq!(
        code(&["r/a"], &BTreeMap::new()),
        exit::INCOMPATIBLE_PLATFORM_API
    );
    assert_eq!(
        code(&["r/a"], &environ(&[("CNB_PLATFORM_API", "0.3")])),
        exit::INCOMPATIBLE_PLATFORM_API
    );
    assert_eq!(
        code(&["-insecure-registry", "h", "r/a"], &environ(&[])),
        exit::USAGE,
        "defined from Platform API 0.13"
    );
    let error = options(&args(&["-version"]), &environ(&[])).unwrap_err();
    assert_eq!((error.code, error.message.as_str()), (0, crate::VERSION));
}

#[test]
fn unsupported_modes_are_refused_by_name() {
    for list in [
        &["-daemon", "r/a"][..],
        &["-layout", "r/a"],
        &["-parallel", "r/a"],
    ] {
        let error = options(&args(list), &environ(&[])).unwrap_err();
        assert_eq!(error.code, exit::INVALID_ARGS, "{list:?}");
        assert!(
            error.message.contains("not supported by op-lifecycle"),
            "{}",
            error.message
        );
    }
    let error = options(&args(&["r/a"]), &environ(&[("CNB_USE_DAEMON", "true")])).unwrap_err();
    assert!(error.message.contains("-daemon"), "{}", error.message);
    let cached = options(&args(&["-cache-image", "r/cache", "r/a"]), &environ(&[])).unwrap();
    assert_eq!(cached.cache_image.as_deref(), Some("r/cache"));
    let from_env = options(&args(&["r/a"]), &environ(&[("CNB_CACHE_IMAGE", "r/c2")])).unwrap();
    assert_eq!(from_env.cache_image.as_deref(), Some("r/c2"));
}

#[test]
fn newer_platform_apis_add_insecure_registries_and_exec_env() {
    let env = environ(&[
        ("CNB_PLATFORM_API", "0.15"),
        ("CNB_INSECURE_REGISTRIES", "a:5000, b"),
    ]);
    let options = options(&args(&["r/a"]), &env).unwrap();
    assert_eq!(options.insecure_registries, ["a:5000", "b"]);
    assert_eq!(options.exec_env.as_deref(), Some("production"));
}

#[test]
fn source_date_epoch_becomes_the_creation_time() {
    assert_eq!(epoch_to_rfc3339("0").unwrap(), "1970-01-01T00:00:00Z");
    assert_eq!(
        epoch_to_rfc3339("315532801").unwrap(),
        "1980-01-01T00:00:01Z"
    );
    assert_eq!(
        epoch_to_rfc3339("1709251199").unwrap(),
        "2024-02-29T23:59:59Z"
    );
    assert_eq!(epoch_to_rfc3339("x").unwrap_err().code, exit::INVALID_ARGS);
}

#[test]
fn orders_with_image_extensions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("order.toml");
    assert_eq!(read_order(&path).unwrap_err().code, exit::DETECT_ERROR);
    fs_err::write(
        &path,
        "[[order]]\n[[order.group]]\nid = \"a\"\nversion = \"1\"\n",
    )
    .unwrap();
    assert_eq!(read_order(&path).unwrap().order[0].group[0].id, "a");
    fs_err::write(
        &path,
        "[[order-extensions]]\n[[order-extensions.group]]\nid = \"x\"\n",
    )
    .unwrap();
    let error = read_order(&path).unwrap_err();
    assert_eq!(error.code, exit::INVALID_ARGS);
    assert!(
        error.message.contains("image extensions are not supported"),
        "{}",
        error.message
    );
}
