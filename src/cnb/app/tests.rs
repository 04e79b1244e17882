use cnb_data::files::{Group, GroupEntry};
use futures::StreamExt as _;

use super::*;
use crate::cnb::project::ProjectDescriptor;

/// (path, uid, gid, kind) of every entry.
fn entries(tar: &[u8]) -> Vec<(String, u64, u64, tar::EntryType)> {
    tar::Archive::new(tar)
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.entry_type(),
            )
        })
        .collect()
}

fn names(tar: &[u8]) -> Vec<String> {
    entries(tar).into_iter().map(|e| e.0).collect()
}

fn app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in [
        ("index.html", "<h1>hi</h1>"),
        ("src/main.rs", "fn main() {}"),
        ("src/deep/lib.rs", ""),
        ("debug.log", "x"),
        ("keep.log", "x"),
        ("node_modules/a/index.js", ""),
        ("secret.txt", "s"),
        ("docs/secret.txt", "not the root one"),
    ] {
        let path = dir.path().join(path);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, text).unwrap();
    }
    std::os::unix::fs::symlink("index.html", dir.path().join("home.html")).unwrap();
    dir
}

fn app_tar(context: &Path, uid: u32, gid: u32, filter: &Filter) -> Result<Vec<u8>, Error> {
    let mut inputs = Inputs::new();
    inputs.app(context, uid, gid, filter)?;
    inputs.finish()
}

fn filter(dir: &Path, descriptor: &str) -> Filter {
    let path = dir.join("project.toml");
    fs_err::write(&path, descriptor).unwrap();
    ProjectDescriptor::read(Some(&path)).unwrap().filter
}

#[test]
fn every_entry_of_the_app_belongs_to_the_cnb_user() {
    let dir = app();
    let tar = app_tar(dir.path(), 1001, 1002, &Filter::default()).unwrap();
    let all = entries(&tar);
    assert_eq!(all[0].0, "workspace", "the root entry comes first");
    assert_eq!(all[0].3, tar::EntryType::Directory);
    assert!(all.iter().all(|e| e.1 == 1001 && e.2 == 1002), "{all:?}");
    assert!(all.contains(&(
        "workspace/home.html".into(),
        1001,
        1002,
        tar::EntryType::Symlink
    )));
    assert!(all.iter().any(|e| e.0 == "workspace/src/deep/lib.rs"));
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut index = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().ends_with("index.html"))
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut index, &mut text).unwrap();
    assert_eq!(text, "<h1>hi</h1>");
}

#[test]
fn exclude_patterns_follow_gitignore() {
    let dir = app();
    let f = filter(
        dir.path(),
        "[build]\nexclude = [\"*.log\", \"!keep.log\", \"node_modules/\", \"/secret.txt\"]\n",
    );
    let kept = names(&app_tar(dir.path(), 0, 0, &f).unwrap());
    for gone in [
        "workspace/debug.log",
        "workspace/node_modules",
        "workspace/node_modules/a/index.js",
        "workspace/secret.txt",
    ] {
        assert!(!kept.contains(&gone.to_string()), "{gone} in {kept:?}");
    }
    for here in [
        "workspace/keep.log",
        "workspace/docs/secret.txt",
        "workspace/src/main.rs",
        "workspace/project.toml",
    ] {
        assert!(kept.contains(&here.to_string()), "{here} not in {kept:?}");
    }
}

#[test]
fn include_patterns_keep_only_what_they_match_with_its_directories() {
    let dir = app();
    let f = filter(
        dir.path(),
        "[_]\nschema-version = \"0.2\"\n[io.buildpacks]\ninclude = [\"src/**/*.rs\", \"index.html\"]\n",
    );
    let kept = names(&app_tar(dir.path(), 0, 0, &f).unwrap());
    assert_eq!(
        kept,
        [
            "workspace",
            "workspace/index.html",
            "workspace/src",
            "workspace/src/deep",
            "workspace/src/deep/lib.rs",
            "workspace/src/main.rs"
        ]
    );
}

#[test]
fn the_app_the_environment_and_the_order_go_in_one_tar() {
    let env = [EnvVar {
        name: "BP_GO_TARGETS".into(),
        value: "./cmd/api".into(),
    }];
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Inputs::new();
    inputs
        .app(dir.path(), 1000, 1000, &Filter::default())
        .unwrap();
    inputs.platform_env(&env).unwrap();
    inputs
        .order(&Order {
            groups: vec![Group {
                group: vec![GroupEntry {
                    id: "op/procfile".into(),
                    version: "0.1.0".into(),
                    optional: false,
                }],
            }],
            added: Vec::new(),
        })
        .unwrap();
    let tar = inputs.finish().unwrap();
    assert_eq!(
        names(&tar),
        [
            "workspace",
            "platform",
            "platform/env",
            "platform/env/BP_GO_TARGETS",
            "layers/order.toml"
        ]
    );
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut entry = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().ends_with("order.toml"))
        .unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
    let parsed: OrderToml = toml::from_str(&text).unwrap();
    assert_eq!(parsed.order[0].group[0].id, "op/procfile");
}

#[test]
fn report_toml_is_read_out_of_the_engine_s_tar() {
    let text = "[image]\ntags = [\"r/a:latest\"]\ndigest = \"sha256:abc\"\nmanifest-size = 3\n";
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(text.len() as u64);
    h.set_mode(0o644);
    builder
        .append_data(&mut h, "report.toml", text.as_bytes())
        .unwrap();
    let report = read_report(&builder.into_inner().unwrap()).unwrap();
    assert_eq!(report.image.digest.as_deref(), Some("sha256:abc"));
    assert!(read_report(&[]).is_err());
}

#[test]
fn added_buildpacks_go_under_cnb_buildpacks_root_owned() {
    let dir = tempfile::tempdir().unwrap();
    fs_err::create_dir_all(dir.path().join("bin")).unwrap();
    fs_err::write(dir.path().join("buildpack.toml"), "api = \"0.10\"\n").unwrap();
    fs_err::write(dir.path().join("bin/build"), "#!/bin/sh\n").unwrap();
    let mut inputs = Inputs::new();
    inputs
        .order(&Order {
            groups: Vec::new(),
            added: vec![
                Added::Directory {
                    path: dir.path().to_path_buf(),
                    id: "me/dir".into(),
                    version: "1.0.0".into(),
                },
                Added::Inline(Inline {
                    id: "me/inline".into(),
                    version: "0.0.0".into(),
                    api: "0.10".into(),
                    inline: "echo hi".into(),
                    shell: "/bin/sh".into(),
                }),
            ],
        })
        .unwrap();
    let tar = inputs.finish().unwrap();
    let all = entries(&tar);
    assert!(all.iter().all(|e| e.1 == 0 && e.2 == 0), "{all:?}");
    let names: Vec<String> = all.into_iter().map(|e| e.0).collect();
    for expected in [
        "cnb/buildpacks/me_dir/1.0.0/buildpack.toml",
        "cnb/buildpacks/me_dir/1.0.0/bin/build",
        "cnb/buildpacks/me_inline/0.0.0/buildpack.toml",
        "cnb/buildpacks/me_inline/0.0.0/bin/build",
        "cnb/buildpacks/me_inline/0.0.0/bin/detect",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut build = archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.path().unwrap().ends_with("me_inline/0.0.0/bin/build"))
        .unwrap();
    assert_eq!(build.header().mode().unwrap(), 0o755);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut build, &mut text).unwrap();
    assert_eq!(text, "#!/bin/sh\n\necho hi\n");
}

/// `error` and its source, as one line.
fn chain(error: &Error) -> String {
    format!(
        "{error}: {}",
        std::error::Error::source(error)
            .map(ToString::to_string)
            .unwrap_or_default()
    )
}

/// What [`stream`] sent, chunk by chunk, read to its end, and how tarring ended.
async fn streamed(
    fill: impl FnOnce(&mut Inputs<Chunks>) -> Result<(), Error> + Send + 'static,
) -> (Vec<std::io::Result<Vec<u8>>>, Result<(), Error>) {
    let Streamed { archive, tarred } = stream(fill);
    let chunks = archive.collect().await;
    (chunks, tarred.await.unwrap())
}

/// An app with a file of several chunks (2.5 MiB of varied bytes) beside the small ones.
fn app_with_a_large_file() -> tempfile::TempDir {
    let dir = app();
    let large: Vec<u8> = (0..CHUNK * 10 + 7)
        .map(|i| u8::try_from(i % 251).unwrap())
        .collect();
    fs_err::write(dir.path().join("src/large.bin"), large).unwrap();
    dir
}

#[tokio::test]
async fn a_streamed_tar_is_the_tar_made_in_memory_sent_in_bounded_chunks() {
    let dir = app_with_a_large_file();
    let env = [EnvVar {
        name: "BP_GO_TARGETS".into(),
        value: "./cmd/api".into(),
    }];
    let mut inputs = Inputs::new();
    inputs
        .app(dir.path(), 1001, 1002, &Filter::default())
        .unwrap();
    inputs.platform_env(&env).unwrap();
    let in_memory = inputs.finish().unwrap();

    let context = dir.path().to_path_buf();
    let (chunks, tarred) = streamed(move |inputs| {
        inputs.app(&context, 1001, 1002, &Filter::default())?;
        inputs.platform_env(&env)
    })
    .await;
    tarred.unwrap();
    let chunks: Vec<Vec<u8>> = chunks.into_iter().map(Result::unwrap).collect();
    assert!(chunks.len() > CHUNKS, "{} chunks", chunks.len());
    assert!(chunks.iter().all(|c| c.len() <= CHUNK));
    let tar = chunks.concat();
    assert!(
        tar == in_memory,
        "the same entries, in the same order, with the same owners and bytes"
    );
    assert_eq!(entries(&tar)[0].0, "workspace");
    assert!(names(&tar).contains(&"workspace/src/large.bin".to_string()));
}

#[tokio::test]
async fn a_failure_while_streaming_names_the_file_and_ends_the_archive_in_an_error() {
    let dir = app_with_a_large_file();
    let (context, missing) = (dir.path().to_path_buf(), dir.path().join("gone"));
    let (chunks, tarred) = streamed(move |inputs| {
        // Chunks are sent before the failure.
        inputs.app(&context, 0, 0, &Filter::default())?;
        inputs.app(&missing, 0, 0, &Filter::default())
    })
    .await;
    let error = tarred.unwrap_err();
    let chain = chain(&error);
    let missing = dir.path().join("gone").display().to_string();
    assert!(chain.contains(&missing), "{chain}");
    assert!(chunks.len() > 1 && chunks[0].is_ok());
    let last = chunks.last().unwrap();
    assert!(
        last.is_err(),
        "an unfinished tar ends in an error, so the upload fails rather than extract part of it"
    );
}

#[tokio::test]
async fn tarring_stops_when_the_upload_stops_reading() {
    let dir = app_with_a_large_file();
    let context = dir.path().to_path_buf();
    let Streamed {
        mut archive,
        tarred,
    } = stream(move |inputs| inputs.app(&context, 0, 0, &Filter::default()));
    assert!(archive.next().await.unwrap().is_ok());
    drop(archive);
    assert!(
        tarred.await.unwrap().is_ok(),
        "the upload's own error says why it stopped"
    );
}

/// What [`spool`] kept, read back as the upload reads it, and its digest.
async fn spooled(context: &Path, left_out: fn(&str, bool) -> bool) -> (Vec<u8>, String, bool) {
    let context = context.to_path_buf();
    let (digest, spooled) = spool(
        move |inputs| inputs.app(&context, 1001, 1002, &Filter::default()),
        left_out,
    )
    .await
    .unwrap();
    let on_disk = spooled.on_disk();
    let Streamed { archive, tarred } = spooled.streamed();
    let chunks: Vec<std::io::Result<Vec<u8>>> = archive.collect().await;
    tarred.await.unwrap().unwrap();
    let tar = chunks.into_iter().map(Result::unwrap).collect::<Vec<_>>();
    assert!(tar.iter().all(|c| c.len() <= CHUNK));
    (tar.concat(), digest, on_disk)
}

fn nothing_left_out(_: &str, _: bool) -> bool {
    false
}

fn no_secret(path: &str, _: bool) -> bool {
    path == "workspace/secret.txt"
}

#[tokio::test]
async fn a_spooled_tar_is_the_tar_made_in_memory_and_its_digest_ignores_modification_times() {
    let dir = app_with_a_large_file();
    let in_memory = app_tar(dir.path(), 1001, 1002, &Filter::default()).unwrap();
    let (tar, digest, on_disk) = spooled(dir.path(), nothing_left_out).await;
    assert!(tar == in_memory, "the upload gets the very tar");
    assert!(!on_disk);
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );

    // Touched: the same digest (the tar itself keeps the new times).
    let touched = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
    let file = fs_err::File::options()
        .write(true)
        .open(dir.path().join("src/main.rs"))
        .unwrap();
    file.set_modified(touched).unwrap();
    let (tar_touched, digest_touched, _) = spooled(dir.path(), nothing_left_out).await;
    assert_eq!(digest_touched, digest);
    assert!(tar_touched != tar);

    // A changed file, a changed mode, a new file: another digest each.
    let mut seen = vec![digest.clone()];
    fs_err::write(dir.path().join("src/main.rs"), "fn main() { }").unwrap();
    seen.push(spooled(dir.path(), nothing_left_out).await.1);
    fs_err::set_permissions(
        dir.path().join("index.html"),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    seen.push(spooled(dir.path(), nothing_left_out).await.1);
    fs_err::write(dir.path().join("new.txt"), "").unwrap();
    seen.push(spooled(dir.path(), nothing_left_out).await.1);
    let distinct: std::collections::BTreeSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "{seen:?}");

    // An entry left out does not count, whatever it holds.
    let without = spooled(dir.path(), no_secret).await.1;
    fs_err::write(dir.path().join("secret.txt"), "another").unwrap();
    let (tar_changed, without_changed, _) = spooled(dir.path(), no_secret).await;
    assert_eq!(without_changed, without);
    assert!(names(&tar_changed).contains(&"workspace/secret.txt".to_string()));
}

#[tokio::test]
async fn a_large_spooled_tar_goes_to_an_unnamed_temporary_file_and_comes_back_whole() {
    let dir = app();
    // Past what is kept in memory (sparse: nothing is written to the disk for it).
    let large = fs_err::File::create(dir.path().join("large.bin")).unwrap();
    large.set_len(17 << 20).unwrap();
    let in_memory = app_tar(dir.path(), 1001, 1002, &Filter::default()).unwrap();
    let (tar, _, on_disk) = spooled(dir.path(), nothing_left_out).await;
    assert!(on_disk);
    assert!(tar == in_memory);
}

#[tokio::test]
async fn a_file_that_cannot_be_read_while_spooling_is_named() {
    let dir = app_with_a_large_file();
    let (context, missing) = (dir.path().to_path_buf(), dir.path().join("gone"));
    let error = spool(
        move |inputs| {
            inputs.app(&context, 0, 0, &Filter::default())?;
            inputs.app(&missing, 0, 0, &Filter::default())
        },
        nothing_left_out,
    )
    .await
    .err()
    .unwrap();
    let chain = chain(&error);
    let missing = dir.path().join("gone").display().to_string();
    assert!(chain.contains(&missing), "{chain}");
}
