use std::collections::BTreeMap;
use std::path::PathBuf;

use cnb_data::files::{BuilderMetadata, RunImageRef};

use super::creator_output::{LineBuffer, announced_digest, without_ansi};
use super::names::{cache_volume_for, slug};
use super::schedule::run_image;
use super::*;
use crate::cnb::builder::BuilderInfo;
use crate::plan::{BuildpacksPlan, Dependency, RunImage, Via, Work};

fn r(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

#[test]
fn cache_volumes_are_stable_per_artifact_and_repository() {
    let a = cache_volume("api", &r("localhost:5001/team/api:latest"));
    assert!(a.starts_with("op-cache-localhost-5001-team-api-"), "{a}");
    assert_eq!(
        a,
        cache_volume("api", &r("localhost:5001/team/api:v2")),
        "the tag does not matter"
    );
    assert_ne!(
        a,
        cache_volume("api", &r("ghcr.io/team/api:latest")),
        "another repository is another cache"
    );
    assert_ne!(a, cache_volume("web", &r("localhost:5001/team/api:latest")));
    assert!(a.len() < 64, "{a}");
    let arm64 = cache_volume_for(
        "api",
        &r("localhost:5001/team/api:latest"),
        Some("linux-arm64"),
    );
    assert!(
        arm64.starts_with("op-cache-localhost-5001-team-api-linux-arm64-"),
        "{arm64}"
    );
    assert_ne!(arm64, a, "each platform has its own cache");
    assert_eq!(slug("ghcr.io/Org/My_App"), "ghcr-io-org-my-app");
}

#[test]
fn loopback_registries_get_host_networking_unless_told_otherwise() {
    assert_eq!(
        network_for(None, &[&r("localhost:5001/a:latest")]).as_deref(),
        Some("host")
    );
    assert_eq!(
        network_for(None, &[&r("ghcr.io/a:latest"), &r("127.0.0.1:5000/run")]).as_deref(),
        Some("host")
    );
    assert_eq!(network_for(None, &[&r("ghcr.io/a:latest")]), None);
    assert_eq!(
        network_for(Some("ci-net"), &[&r("localhost:5001/a")]).as_deref(),
        Some("ci-net")
    );
    assert_eq!(network_for(Some(""), &[&r("ghcr.io/a")]), None);
}

#[test]
fn output_is_split_into_lines_across_chunks() {
    let mut buffer = LineBuffer::default();
    assert!(buffer.push(b"===> DETEC").is_empty());
    assert_eq!(buffer.push(b"TING\r\nfoo\nba"), ["===> DETECTING", "foo"]);
    assert_eq!(buffer.finish().as_deref(), Some("ba"));
    assert_eq!(buffer.finish(), None);
    assert_eq!(Phase::from_banner("===> DETECTING"), Some(Phase::Detecting));
    assert_eq!(Phase::from_banner("===> EXPORTING"), Some(Phase::Exporting));
    assert_eq!(Phase::from_banner("---> Greeting"), None);
}

#[test]
fn the_digest_the_lifecycle_announces_is_read_from_its_line() {
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    assert_eq!(
        announced_digest(&format!("*** Images ({digest}):")),
        Some(digest.clone())
    );
    assert_eq!(
        announced_digest(&format!("\x1b[0m*** Images ({digest}):\x1b[0m")),
        Some(digest.clone()),
        "coloured"
    );
    for other in [
        "*** Images (0123456789ab):".to_string(),
        "*** Images (sha256:abc):".into(),
        format!("*** Digest: {digest}"),
        format!("      reg/app:latest ({digest})"),
    ] {
        assert_eq!(announced_digest(&other), None, "{other}");
    }
}

#[test]
fn coloured_banners_start_their_phase_too() {
    // As the reference lifecycle 0.21 prints them without -no-color.
    assert_eq!(
        Phase::from_banner("\x1b[36m===> ANALYZING\x1b[0m"),
        Some(Phase::Analyzing)
    );
    assert_eq!(
        without_ansi("\x1b[33;1mWarning: \x1b[0mDid not find SBOM"),
        "Warning: Did not find SBOM"
    );
    assert_eq!(
        without_ansi("\x1b]8;;https://x\x1b\\link\x1b]8;;\x07 done"),
        "link done"
    );
    assert!(matches!(
        without_ansi("plain"),
        std::borrow::Cow::Borrowed("plain")
    ));
}

fn builder_info() -> BuilderInfo {
    BuilderInfo {
        order: Vec::new(),
        image: "localhost:5001/op/builder:latest".into(),
        uid: 1000,
        gid: 1000,
        metadata: BuilderMetadata {
            images: vec![RunImageRef {
                image: "localhost:5001/op/busybox-run:latest".into(),
                mirrors: vec![],
            }],
            ..BuilderMetadata::default()
        },
        platform_apis: vec![cnb_data::api::Version(0, 12)],
        identity: "sha256:builder".into(),
    }
}

fn artifact(image: &str, run: Option<RunImage>) -> PlannedArtifact {
    PlannedArtifact {
        image: image.into(),
        context: PathBuf::from("/src"),
        location: "build.artifacts[0]".into(),
        target: r(&format!("localhost:5001/{image}:latest")),
        extra_tags: Vec::new(),
        depends_on: run
            .as_ref()
            .and_then(|r| r.artifact.clone())
            .map(|dep| Dependency {
                image: dep,
                via: Via::RunImage,
                alias: None,
                built: true,
            })
            .into_iter()
            .collect(),
        work: Work::Buildpacks(Box::new(BuildpacksPlan {
            builder: r("localhost:5001/op/builder:latest"),
            run_image: run,
            env: vec![],
            buildpacks: vec![],
            trust_builder: true,
            clear_cache: false,
            project_descriptor: None,
            volumes: vec![],
            chart: None,
        })),
    }
}

#[test]
fn run_images_come_from_built_artifacts_then_the_plan_then_the_builder() {
    let builder = builder_info();
    let base = Built {
        image: "base".into(),
        tag: "localhost:5001/base:latest@sha256:aaa".into(),
        digest: "sha256:aaa".into(),
        seconds: 1.0,
        creator_seconds: None,
        made: Made::Built,
    };
    let built = BTreeMap::from([("base".to_string(), base)]);
    let app = artifact(
        "app",
        Some(RunImage {
            image: r("localhost:5001/base:latest"),
            artifact: Some("base".into()),
        }),
    );
    let (image, note) = run_image(&app, &builder, &built, None).unwrap();
    assert_eq!(image, "localhost:5001/base:latest@sha256:aaa");
    assert_eq!(
        note.as_deref(),
        Some("Resolving runImage base to built artifact localhost:5001/base:latest@sha256:aaa")
    );

    let (image, note) = run_image(&app, &builder, &BTreeMap::new(), None).unwrap();
    assert_eq!(
        (image.to_string().as_str(), note),
        ("localhost:5001/base:latest", None),
        "a dependency not built now is used as named"
    );

    let plain = artifact("plain", None);
    assert_eq!(
        run_image(&plain, &builder, &built, None).unwrap().0,
        "localhost:5001/op/busybox-run:latest"
    );
    let mut remote = builder.clone();
    remote.metadata.images[0].image = "docker.io/paketobuildpacks/run-jammy-base:latest".into();
    assert_eq!(
        run_image(&plain, &remote, &built, Some("mirror.test:5000"))
            .unwrap()
            .0,
        "mirror.test:5000/paketobuildpacks/run-jammy-base:latest",
        "the builder's default run image comes through the mirror"
    );
    let mut without_run = builder.clone();
    without_run.metadata.images.clear();
    assert!(matches!(
        run_image(&plain, &without_run, &built, None),
        Err(cnb::Error::NoRunImage { .. })
    ));
}

#[test]
fn default_run_images_and_their_mirrors_are_registries_that_need_credentials() {
    let mut builder = builder_info();
    builder.metadata.images = vec![RunImageRef {
        image: "index.docker.io/paketobuildpacks/run-jammy-base:latest".into(),
        mirrors: vec![
            "gcr.io/paketo-buildpacks/run-jammy-base:latest".into(),
            "docker.io/paketobuildpacks/run-jammy-base:latest".into(),
        ],
    }];
    let builders = BTreeMap::from([(builder.image.clone(), builder)]);
    let plain = artifact("plain", None);
    assert_eq!(
        schedule::default_run_image_hosts(&[&plain], &builders),
        ["gcr.io", "index.docker.io"]
    );
    let named = artifact(
        "named",
        Some(RunImage {
            image: r("localhost:5001/base:latest"),
            artifact: None,
        }),
    );
    assert!(
        schedule::default_run_image_hosts(&[&named], &builders).is_empty(),
        "a run image the plan names is resolved with the plan's references"
    );
}

#[test]
fn failures_are_listed_with_their_causes_and_hints() {
    let error = Error::Failed {
        failures: vec![
            Failure {
                artifact: "api".into(),
                error: ArtifactError::Creator {
                    failure: cnb::exit::Failure::Buildpack,
                    refused_by: None,
                    tail: vec![],
                },
            },
            Failure {
                artifact: "web".into(),
                error: ArtifactError::DependencyFailed {
                    dependency: "api".into(),
                },
            },
        ],
        total: 3,
    };
    assert_eq!(
        error.to_string(),
        "2 of 3 artifacts failed, so no build result was written:\n  - api: a buildpack failed (exit code 51)\n  - web: not built: it depends on `api`, which failed"
    );
    assert_eq!(
        error.hint().as_deref(),
        cnb::exit::Failure::Buildpack.hint()
    );
}

/// The registries' check runs beside the builders' reads; its failure is the one reported,
/// whichever ends first, and stops the reads.
#[tokio::test]
async fn the_registry_check_fails_first_and_stops_the_builder_reads() {
    let refused = || Error::Task("the registry refused".into());
    let pulled = || async { Ok::<_, Error>("builders") };
    assert_eq!(
        checked_then(async { Ok(()) }, pulled()).await.unwrap(),
        "builders"
    );
    // The reads fail first: the check's error all the same.
    let failed = checked_then(
        async {
            tokio::task::yield_now().await;
            Err(refused())
        },
        async { Err::<(), _>(Error::Task("no such builder".into())) },
    )
    .await;
    assert_eq!(failed.unwrap_err().to_string(), refused().to_string());
    // The reads would never end: the check's failure ends them.
    let stopped = checked_then(
        async { Err(refused()) },
        futures::future::pending::<Result<(), Error>>(),
    );
    assert_eq!(
        stopped.await.unwrap_err().to_string(),
        refused().to_string()
    );
    // The check passes after the reads failed: their error.
    let failed = checked_then(
        async {
            tokio::task::yield_now().await;
            Ok(())
        },
        async { Err::<(), _>(Error::Task("no such builder".into())) },
    )
    .await;
    assert!(failed.unwrap_err().to_string().contains("no such builder"));
}

/// Whole builds of planned artifacts (`schedule::run_artifacts`), against the fake engine and
/// a fake registry: what is created is removed after success, failure and interrupt, `--keep`
/// keeps it, and a failed dependency stops its dependents.
mod against_a_fake_engine {
    use std::sync::Mutex;

    use futures::future::BoxFuture;

    use super::*;
    use crate::engine::fake::{Fake, Script};
    use crate::interrupt::Interrupt;

    /// Everything the builds report, as lines.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Reporter for Recorder {
        fn phase(&self, artifact: &str, phase: Phase) {
            self.0
                .lock()
                .unwrap()
                .push(format!("{artifact} is {}", phase.label()));
        }
        fn line(&self, artifact: &str, line: &str) {
            self.0.lock().unwrap().push(format!("[{artifact}] {line}"));
        }
        fn note(&self, text: &str) {
            self.0.lock().unwrap().push(text.to_string());
        }
    }

    /// A registry that serves each artifact's digest for its target, or always the one given.
    struct Served(Option<String>);

    impl Digests for Served {
        fn digest<'a>(
            &'a self,
            reference: &'a Reference,
        ) -> BoxFuture<'a, Result<Option<String>, registry::Error>> {
            let reference = reference.to_string();
            let image = reference.rsplit('/').next().unwrap_or_default();
            let name = image.split(':').next().unwrap_or_default().to_string();
            let served = self.0.clone().unwrap_or_else(|| digest_of(&name));
            Box::pin(async move { Ok(Some(served)) })
        }

        fn copy<'a>(
            &'a self,
            source: &'a str,
            _target: &'a str,
        ) -> BoxFuture<'a, Result<String, registry::Error>> {
            let digest = source.rsplit('@').next().unwrap_or_default().to_string();
            Box::pin(async move { Ok(digest) })
        }

        fn tag<'a>(
            &'a self,
            source: &'a str,
            _manifest: Option<&'a op_oci::Manifest>,
            _targets: &'a [String],
        ) -> BoxFuture<'a, Result<String, registry::Error>> {
            let digest = source.rsplit('@').next().unwrap_or_default().to_string();
            Box::pin(async move { Ok(digest) })
        }

        fn platform_index<'a>(
            &'a self,
            _names: &'a [String],
            images: &'a [(Platform, String)],
            _keep_current: bool,
        ) -> BoxFuture<'a, Result<registry::Index, registry::Error>> {
            let joined: Vec<&str> = images.iter().map(|(_, r)| r.as_str()).collect();
            let digest = op_oci::sha256(joined.join(",").as_bytes());
            Box::pin(async move {
                Ok(registry::Index {
                    digest,
                    written: true,
                })
            })
        }

        fn image<'a>(
            &'a self,
            _reference: &'a str,
            _platform: Option<&'a Platform>,
        ) -> BoxFuture<'a, Result<Option<op_oci::Image>, registry::Error>> {
            Box::pin(async { Ok(None) })
        }

        fn manifest<'a>(
            &'a self,
            _reference: &'a str,
        ) -> BoxFuture<'a, Result<Option<op_oci::Manifest>, registry::Error>> {
            Box::pin(async { Ok(None) })
        }

        fn image_of<'a>(
            &'a self,
            reference: &'a str,
            _manifest: op_oci::Manifest,
        ) -> BoxFuture<'a, Result<op_oci::Image, registry::Error>> {
            let reference = reference.to_string();
            Box::pin(async move { Err(registry::Error::NotFound { reference }) })
        }

        fn blob<'a>(
            &'a self,
            reference: &'a str,
            _digest: &'a str,
        ) -> BoxFuture<'a, Result<Vec<u8>, registry::Error>> {
            let reference = reference.to_string();
            Box::pin(async move { Err(registry::Error::NotFound { reference }) })
        }

        fn rebase<'a>(
            &'a self,
            request: &'a registry::rebase::Request<'a>,
        ) -> BoxFuture<'a, Result<registry::rebase::Rebased, registry::rebase::Error>> {
            let image = request.image.to_string();
            Box::pin(async move { Err(registry::rebase::Error::NotCnb { image }) })
        }

        fn platforms_of<'a>(
            &'a self,
            _reference: &'a str,
        ) -> BoxFuture<'a, Result<(bool, Vec<Platform>), registry::Error>> {
            Box::pin(async move { Ok((false, vec![Platform::parse("linux/amd64").unwrap()])) })
        }
    }

    /// `report.toml` with `digest`, as the engine hands a file over: a tar.
    fn report_tar(digest: &str) -> Vec<u8> {
        let report = format!("[image]\ntags = []\ndigest = \"{digest}\"\n");
        let mut header = tar::Header::new_gnu();
        header.set_size(report.len() as u64);
        header.set_mode(0o644);
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_data(&mut header, "report.toml", report.as_bytes())
            .unwrap();
        builder.into_inner().unwrap()
    }

    fn digest_of(artifact: &str) -> String {
        format!("sha256:{:0>64}", artifact.len())
    }

    /// A creator that goes through the phases and publishes, or fails with `code`.
    fn creator(artifact: &str, code: i64) -> Script {
        let mut lines = vec!["===> ANALYZING", "===> DETECTING", "===> BUILDING"];
        let announced = format!("*** Images ({}):", digest_of(artifact));
        if code == 0 {
            lines.extend(["===> EXPORTING", announced.as_str()]);
        } else {
            lines.push("ERROR: failed to build: exit status 1");
        }
        Script::printing(&lines, code)
    }

    struct Setup {
        engine: Arc<Fake>,
        shared: Arc<Shared>,
        recorder: Arc<Recorder>,
        _home: tempfile::TempDir,
        apps: tempfile::TempDir,
    }

    fn setup(script: impl Fn(&str) -> Script + Send + Sync + 'static, keep: bool) -> Setup {
        setup_serving(script, keep, None)
    }

    fn setup_serving(
        script: impl Fn(&str) -> Script + Send + Sync + 'static,
        keep: bool,
        served: Option<String>,
    ) -> Setup {
        setup_with(script, keep, served, registry::auth::Credentials::default())
    }

    fn setup_with(
        script: impl Fn(&str) -> Script + Send + Sync + 'static,
        keep: bool,
        served: Option<String>,
        credentials: registry::auth::Credentials,
    ) -> Setup {
        let engine = Arc::new(Fake::new(move |spec| {
            let artifact = spec.labels.get(LABEL_ARTIFACT).cloned().unwrap_or_default();
            script(&artifact)
        }));
        let recorder = Arc::new(Recorder::default());
        let home = tempfile::tempdir().unwrap();
        let shared = Arc::new(Shared {
            engine: Some(Arc::clone(&engine) as Arc<dyn Containers>),
            registry: Arc::new(Served(served)),
            credentials,
            options: Knobs {
                concurrency: Some(2),
                pull: PullPolicy::Never,
                trust_builders: true,
                keep,
                network: None,
                debug: false,
                propagation_timeout: Duration::from_secs(1),
                skaffold: None,
                sbom_output: None,
                cache_image: None,
                cluster: None,
                cache_artifacts: false,
            },
            delegation: None,
            platforms: Vec::new(),
            image_registry: None,
            ca_bundle: None,
            env: Env::from_pairs([("HOME", home.path().display().to_string())]),
            insecure_registries: Vec::new(),
            build_id: "t".into(),
            reporter: Arc::clone(&recorder) as Arc<dyn Reporter>,
            interrupt: Interrupt::new(),
            concurrency: 2,
            creator_slots: tokio::sync::Semaphore::new(2),
            cluster: None,
            run_images: RunImages::default(),
        });
        Setup {
            engine,
            shared,
            recorder,
            _home: home,
            apps: tempfile::tempdir().unwrap(),
        }
    }

    impl Setup {
        /// A planned artifact with an app of its own; `on` names the artifact whose image it
        /// runs on.
        fn artifact(&self, name: &str, on: Option<&str>) -> PlannedArtifact {
            let dir = self.apps.path().join(name);
            fs_err::create_dir_all(dir.join("public")).unwrap();
            fs_err::write(dir.join("public/index.html"), name).unwrap();
            let mut planned = artifact(
                name,
                on.map(|base| RunImage {
                    image: r(&format!("localhost:5001/{base}:latest")),
                    artifact: Some(base.to_string()),
                }),
            );
            planned.context = dir;
            planned
        }

        async fn build(&self, artifacts: &[PlannedArtifact]) -> (Vec<Built>, Vec<Failure>) {
            let builders = schedule::Builders {
                default: BTreeMap::from([(builder_info().image.clone(), builder_info())]),
                platforms: BTreeMap::new(),
            };
            let all: Vec<&PlannedArtifact> = artifacts.iter().collect();
            schedule::run_all(&self.shared, &all, &[], &builders).await
        }

        fn reported(&self) -> Vec<String> {
            self.recorder.0.lock().unwrap().clone()
        }

        /// The containers created and those removed; the per-build volumes created and those
        /// removed.
        fn created_and_removed(&self) -> [Vec<String>; 4] {
            let mut containers = self.engine.calls_of("create");
            containers.sort();
            let mut removed = self.engine.calls_of("remove");
            removed.sort();
            let per_build = |call: &str| {
                let mut volumes: Vec<String> = self
                    .engine
                    .calls_of(call)
                    .into_iter()
                    .filter(|v| !v.starts_with("op-cache-"))
                    .collect();
                volumes.sort();
                volumes
            };
            let ids: Vec<String> = (1..=containers.len()).map(|i| format!("c{i}")).collect();
            [
                ids,
                removed,
                per_build("create_volume"),
                per_build("remove_volume"),
            ]
        }
    }

    #[tokio::test]
    async fn what_a_build_creates_is_removed_after_success_and_failure() {
        let setup = setup(|a| creator(a, if a == "broken" { 51 } else { 0 }), false);
        let artifacts = [
            setup.artifact("base", None),
            setup.artifact("broken", None),
            setup.artifact("app", Some("base")),
            setup.artifact("docs", Some("broken")),
        ];
        let (built, failures) = setup.build(&artifacts).await;
        let names: Vec<&str> = built.iter().map(|b| b.image.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"base") && names.contains(&"app"));
        let app = built.iter().find(|b| b.image == "app").unwrap();
        assert_eq!(
            app.tag,
            format!("localhost:5001/app:latest@{}", digest_of("app"))
        );
        let failed: Vec<String> = failures
            .iter()
            .map(|f| format!("{}: {}", f.artifact, f.error))
            .collect();
        assert_eq!(
            failed,
            [
                "broken: a buildpack failed (exit code 51)",
                "docs: not built: it depends on `broken`, which failed"
            ]
        );
        let [containers, removed, volumes, volumes_removed] = setup.created_and_removed();
        assert_eq!(containers.len(), 3, "docs never got a container");
        assert_eq!(removed, containers, "every container is removed");
        assert_eq!(volumes.len(), 6);
        assert_eq!(
            volumes_removed, volumes,
            "every per-build volume is removed"
        );
        assert!(
            setup
                .engine
                .calls_of("remove_volume")
                .iter()
                .all(|v| !v.starts_with("op-cache-")),
            "cache volumes stay"
        );
        let app_spec = (1..=3)
            .filter_map(|i| setup.engine.spec(&format!("c{i}")))
            .find(|s| s.labels[LABEL_ARTIFACT] == "app")
            .unwrap();
        let cmd = app_spec.cmd.unwrap();
        let run_image = cmd.iter().position(|a| a == "-run-image").unwrap() + 1;
        assert_eq!(
            cmd[run_image],
            format!("localhost:5001/base:latest@{}", digest_of("base")),
            "app runs on the digest base was published with"
        );
        let reported = setup.reported();
        for expected in [
            "app is exporting",
            "docs is failed",
            "[broken] ERROR: failed to build: exit status 1",
        ] {
            assert!(
                reported.iter().any(|r| r == expected),
                "{expected}: {reported:#?}"
            );
        }
    }

    /// Each creator gets the credentials of its own registries (its target and tags, its run
    /// image), and no others of the many op resolved for the whole build.
    #[tokio::test]
    async fn each_creator_gets_the_credentials_of_its_own_registries_only() {
        let basic = |user: &str| registry::auth::Credential::Basic {
            username: user.into(),
            password: format!("{user}-secret"),
        };
        let credentials = registry::auth::Credentials::from_entries([
            ("localhost:5001".to_string(), basic("local")),
            ("ghcr.io".to_string(), basic("tags")),
            ("reg.example".to_string(), basic("web")),
            ("other.example".to_string(), basic("nobody")),
        ]);
        let setup = setup_with(|a| creator(a, 0), false, None, credentials);
        let mut app = setup.artifact("app", None);
        app.extra_tags = vec![r("ghcr.io/acme/app:v1")];
        let mut web = setup.artifact("web", None);
        web.target = r("reg.example/web:latest");
        let (built, failures) = setup.build(&[app, web]).await;
        assert!(failures.is_empty() && built.len() == 2, "{failures:?}");
        let registries_of = |artifact: &str| {
            let spec = (1..=2)
                .filter_map(|i| setup.engine.spec(&format!("c{i}")))
                .find(|s| s.labels[LABEL_ARTIFACT] == artifact)
                .unwrap();
            let (_, auth) = spec
                .env
                .iter()
                .find(|(k, _)| k == "CNB_REGISTRY_AUTH")
                .unwrap();
            let auth: BTreeMap<String, String> = serde_json::from_str(auth).unwrap();
            auth.into_keys().collect::<Vec<_>>()
        };
        assert_eq!(registries_of("app"), ["ghcr.io", "localhost:5001"]);
        assert_eq!(
            registries_of("web"),
            ["localhost:5001", "reg.example"],
            "its run image is the builder's, in localhost:5001"
        );
    }

    #[tokio::test]
    async fn keep_leaves_the_container_and_volumes() {
        let setup = setup(|a| creator(a, 51), true);
        let (_, failures) = setup.build(&[setup.artifact("broken", None)]).await;
        assert_eq!(failures.len(), 1);
        assert!(setup.engine.calls_of("remove").is_empty());
        assert!(setup.engine.calls_of("remove_volume").is_empty());
        assert!(
            setup.reported().iter().any(|r| r.starts_with(
                "[broken] Kept container c1 and volumes op-layers-t-broken, op-workspace-t-broken"
            )),
            "{:#?}",
            setup.reported()
        );
    }

    #[tokio::test]
    async fn an_interrupt_stops_the_running_creators_starts_nothing_more_and_cleans_up() {
        let setup = setup(
            |_| Script {
                until_stopped: true,
                ..Script::printing(&["===> BUILDING"], 0)
            },
            false,
        );
        let artifacts = [
            setup.artifact("a", None),
            setup.artifact("b", None),
            setup.artifact("c", None),
        ];
        let interrupt = setup.shared.interrupt.clone();
        let engine = Arc::clone(&setup.engine);
        tokio::spawn(async move {
            // Once both slots run a creator.
            while engine.calls_of("start").len() < 2 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            interrupt.trigger(crate::interrupt::SIGINT_CODE);
        });
        let (built, failures) = setup.build(&artifacts).await;
        assert!(built.is_empty());
        assert_eq!(
            failures
                .iter()
                .map(|f| f.error.to_string())
                .collect::<Vec<_>>(),
            ["interrupted", "interrupted"],
            "the third never started"
        );
        let mut stopped = setup.engine.calls_of("stop");
        stopped.sort();
        assert_eq!(stopped, ["c1 1s", "c2 1s"]);
        let [containers, removed, volumes, volumes_removed] = setup.created_and_removed();
        assert_eq!(containers, ["c1", "c2"]);
        assert_eq!(removed, containers);
        assert_eq!(volumes_removed, volumes);
    }

    #[tokio::test]
    async fn report_toml_decides_when_the_registry_serves_another_digest_than_announced() {
        let served = format!("sha256:{}", "e".repeat(64));
        let setup = setup_serving(|a| creator(a, 0), false, Some(served.clone()));
        setup
            .engine
            .put_file("c1", "/layers/report.toml", report_tar(&served));
        let (built, failures) = setup.build(&[setup.artifact("app", None)]).await;
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(
            built[0].digest, served,
            "report.toml agrees with the registry"
        );
        assert_eq!(
            setup.engine.calls_of("download"),
            ["c1:/layers/report.toml"]
        );

        let setup = setup_serving(|a| creator(a, 0), false, Some(served.clone()));
        let reported = format!("sha256:{}", "f".repeat(64));
        setup
            .engine
            .put_file("c1", "/layers/report.toml", report_tar(&reported));
        let (_, failures) = setup.build(&[setup.artifact("app", None)]).await;
        assert_eq!(
            failures[0].error.to_string(),
            format!(
                "the registry serves {served} for `localhost:5001/app:latest`, but the lifecycle reported {reported}"
            )
        );

        let agreed = setup_serving(|a| creator(a, 0), false, None);
        agreed.build(&[agreed.artifact("app", None)]).await;
        assert!(
            agreed.engine.calls_of("download").is_empty(),
            "the announced digest, served, spares report.toml"
        );
    }

    #[tokio::test]
    async fn a_failed_upload_still_removes_what_was_created() {
        let setup = setup(|a| creator(a, 0), false);
        setup.engine.fail("upload");
        let (_, failures) = setup.build(&[setup.artifact("app", None)]).await;
        assert_eq!(
            failures[0].error.to_string(),
            "The Docker Engine failed to upload c1:/"
        );
        let [containers, removed, volumes, volumes_removed] = setup.created_and_removed();
        assert_eq!(removed, containers);
        assert_eq!(volumes_removed, volumes);
    }

    #[tokio::test]
    async fn an_app_op_cannot_read_fails_the_artifact_naming_it_not_the_upload() {
        let setup = setup(|a| creator(a, 0), false);
        let app = setup.artifact("app", None);
        fs_err::remove_dir_all(&app.context).unwrap();
        let (_, failures) = setup.build(std::slice::from_ref(&app)).await;
        let error = &failures[0].error;
        assert_eq!(error.to_string(), "failed to copy the app");
        let source = std::error::Error::source(error).unwrap().to_string();
        assert_eq!(
            source,
            format!("Failed to read `{}`", app.context.display())
        );
        assert_eq!(setup.engine.calls_of("upload"), ["c1:/"]);
        assert!(setup.engine.calls_of("start").is_empty());
        let [containers, removed, volumes, volumes_removed] = setup.created_and_removed();
        assert_eq!(removed, containers);
        assert_eq!(volumes_removed, volumes);
    }
}

#[test]
fn a_lifecycle_failure_names_the_lifecycle_s_own_error_a_buildpack_s_does_not() {
    use crate::cnb::exit::Failure;
    let tail = vec![
        "===> ANALYZING".to_string(),
        "ERROR: failed to encode /layers/analyzed.toml: unsupported unit type".to_string(),
    ];
    let analyze = artifact::Error::Creator {
        failure: Failure::Analyze(32),
        refused_by: None,
        tail: tail.clone(),
    };
    assert_eq!(
        analyze.to_string(),
        "the lifecycle could not read the run image or the previous image (exit code 32): failed to encode /layers/analyzed.toml: unsupported unit type"
    );
    assert!(
        analyze
            .hint()
            .unwrap()
            .starts_with("the lifecycle's ERROR line says what failed"),
        "no guess that the registry is to blame"
    );
    let buildpack = artifact::Error::Creator {
        failure: Failure::Buildpack,
        refused_by: None,
        tail,
    };
    assert_eq!(buildpack.to_string(), "a buildpack failed (exit code 51)");
}
