use super::*;
use crate::config::op_settings::skaffold_binary;

fn run<'a>(artifacts: &'a [String], profiles: &'a [String], insecure: &'a [String]) -> Run<'a> {
    Run {
        skaffold_file: Path::new("/repo/skaffold.yaml"),
        profiles,
        artifacts,
        default_repo: "127.0.0.1:5001/acme",
        tag: Some("v1.2.3"),
        push: true,
        insecure_registries: insecure,
        platforms: &[],
        image_registry: None,
        concurrency: 4,
        cwd: Path::new("/repo"),
        cache_file: Path::new("/cache/skaffold/cache-1"),
        cache_artifacts: true,
        ca_certificates: None,
    }
}

#[test]
fn skaffold_is_told_everything_op_decided() {
    let artifacts = vec!["base".to_string(), "web".to_string()];
    let profiles = vec!["ci".to_string(), "-local".to_string()];
    let insecure = vec!["registry.test:5000".to_string()];
    let args = Skaffold::arguments(
        &run(&artifacts, &profiles, &insecure),
        Path::new("/tmp/x/build_result.json"),
        Path::new("/tmp/x/config"),
    );
    let args: Vec<&str> = args.iter().map(|a| a.to_str().unwrap()).collect();
    assert_eq!(
        args,
        [
            "build",
            "--filename=/repo/skaffold.yaml",
            "--profile=ci",
            "--profile=-local",
            "--build-image=base",
            "--build-image=web",
            "--default-repo=127.0.0.1:5001/acme",
            "--tag=v1.2.3",
            "--push=true",
            "--insecure-registry=registry.test:5000",
            "--build-concurrency=4",
            "--file-output=/tmp/x/build_result.json",
            "--cache-artifacts=true",
            "--cache-file=/cache/skaffold/cache-1",
            "--config=/tmp/x/config",
            "--interactive=false",
            "--update-check=false",
            "--detect-minikube=false",
        ]
    );
    let platforms = op_oci::Platform::parse_list(&["linux/amd64,linux/arm64"]).unwrap();
    let mut with_platforms = run(&artifacts, &[], &[]);
    with_platforms.platforms = &platforms;
    with_platforms.push = false;
    let args = Skaffold::arguments(&with_platforms, Path::new("o"), Path::new("c"));
    assert!(args.contains(&"--platform=linux/amd64,linux/arm64".into()));
    assert!(args.contains(&"--push=false".into()));
    let mut uncached = run(&artifacts, &[], &[]);
    uncached.cache_artifacts = false;
    let args = Skaffold::arguments(&uncached, Path::new("o"), Path::new("c"));
    assert!(
        args.contains(&"--cache-artifacts=false".into()),
        "--cache-artifacts=false reaches skaffold"
    );
    let mut without_version = run(&artifacts, &[], &[]);
    without_version.tag = None;
    let args = Skaffold::arguments(&without_version, Path::new("o"), Path::new("c"));
    assert!(
        !args
            .iter()
            .any(|a| a.to_str().unwrap().starts_with("--tag")),
        "no version: skaffold.yaml's tagPolicy tags the images"
    );
}

#[test]
fn results_are_read_in_the_order_asked_and_a_missing_one_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.json");
    fs_err::write(
        &path,
        r#"{"builds":[{"imageName":"web","tag":"r/web:t@sha256:bb"},{"imageName":"base","tag":"r/base:t@sha256:aa"}]}"#,
    )
    .unwrap();
    let wanted = vec!["base".to_string(), "web".to_string()];
    let built = read_results(&path, &wanted).unwrap();
    assert_eq!(built[0].tag, "r/base:t@sha256:aa");
    assert_eq!(built[1].image, "web");

    fs_err::write(&path, r#"{"builds":null}"#).unwrap();
    assert!(matches!(
        read_results(&path, &wanted),
        Err(Error::NotReported { image }) if image == "base"
    ));
    fs_err::write(&path, "not json").unwrap();
    assert!(matches!(
        read_results(&path, &wanted),
        Err(Error::Output { .. })
    ));
}

#[test]
fn lines_belong_to_the_artifact_skaffold_announced() {
    let artifacts = vec!["base".to_string(), "web".to_string()];
    let mut attribution = Attribution::new(&artifacts);
    let lines = [
        ("Generating tags...", "base"),
        (" - base -> r/base:t", "base"),
        (" - web -> r/web:t", "web"),
        ("Checking cache...", "base"),
        ("Building [web]...", "web"),
        ("Step 1/2 : FROM x", "web"),
        ("Building [base]...", "base"),
        ("Build [base] succeeded", "base"),
        ("Building [elsewhere]...", "base"),
    ];
    for (line, want) in lines {
        assert_eq!(attribution.of(line), want, "{line}");
    }
}

#[test]
fn the_binary_is_found_by_flag_variable_or_path_and_its_absence_names_the_artifacts() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("skaffold");
    fs_err::write(&binary, "#!/bin/sh\n").unwrap();
    let path = dir.path().display().to_string();
    let artifacts = vec!["web".to_string(), "base".to_string()];

    let on_path = Env::from_pairs([("PATH", path.as_str())]);
    assert_eq!(
        Skaffold::find(skaffold_binary(None, &on_path), &on_path, &artifacts)
            .unwrap()
            .binary(),
        binary
    );
    let by_variable = Env::from_pairs([
        ("PATH", "/nonexistent"),
        ("OP_SKAFFOLD", binary.to_str().unwrap()),
    ]);
    assert_eq!(
        Skaffold::find(
            skaffold_binary(None, &by_variable),
            &by_variable,
            &artifacts
        )
        .unwrap()
        .binary(),
        binary
    );

    let nowhere = Env::from_pairs([("PATH", "/nonexistent")]);
    let error = Skaffold::find(skaffold_binary(None, &nowhere), &nowhere, &artifacts).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Artifacts `web`, `base` are built by skaffold, and `skaffold` is not on PATH"
    );
    assert!(
        error
            .hint()
            .unwrap()
            .contains("--skaffold PATH or OP_SKAFFOLD=PATH")
    );
    let flag = skaffold_binary(Some(Path::new("/no/skaffold")), &on_path);
    let error = Skaffold::find(flag, &on_path, &artifacts[..1]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "Artifact `web` is built by skaffold, and --skaffold names `/no/skaffold`, which is not an executable file"
    );
}
