use super::*;

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
fn descriptors_with_both_lists_or_bad_toml_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.toml");
    fs_err::write(&path, "[build]\ninclude = [\"a\"]\nexclude = [\"b\"]\n").unwrap();
    let error = ProjectDescriptor::read(Some(&path)).unwrap_err();
    assert!(
        error.to_string().contains("both `include` and `exclude`"),
        "{error}"
    );
    fs_err::write(&path, "[build\n").unwrap();
    let error = ProjectDescriptor::read(Some(&path)).unwrap_err();
    assert!(matches!(error, Error::ProjectDescriptor { .. }), "{error}");
    assert!(
        error.to_string().contains("line 1"),
        "the line is named: {error}"
    );
}

fn env_of(descriptor: &ProjectDescriptor) -> Vec<(&str, &str)> {
    descriptor
        .env
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect()
}

#[test]
fn the_build_environment_of_both_schemas_is_read_and_buildpacks_env_wins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.toml");
    // Schema 0.2, the seeds' static frontend.
    fs_err::write(
        &path,
        "[_]\nschema-version = \"0.2\"\n\n[io.buildpacks]\nexclude = [\"node_modules\"]\n\n\
         [[io.buildpacks.build.env]]\nname = \"BP_WEB_SERVER\"\nvalue = \"nginx\"\n\n\
         [[io.buildpacks.build.env]]\nname = \"BP_WEB_SERVER_ROOT\"\nvalue = \"public\"\n",
    )
    .unwrap();
    let v2 = ProjectDescriptor::read(Some(&path)).unwrap();
    assert_eq!(
        env_of(&v2),
        [("BP_WEB_SERVER", "nginx"), ("BP_WEB_SERVER_ROOT", "public")]
    );
    assert!(!v2.filter.keeps("node_modules/x.js", false));
    // Schema 0.1 (legacy `[build]`); a name given twice keeps its last value.
    fs_err::write(
        &path,
        "[project]\nid = \"web\"\n\n[build]\ninclude = [\"public/\"]\n\n\
         [[build.env]]\nname = \"STYLE\"\nvalue = \"plain\"\n\n\
         [[build.env]]\nname = \"STYLE\"\nvalue = \"loud\"\n",
    )
    .unwrap();
    let v1 = ProjectDescriptor::read(Some(&path)).unwrap();
    assert_eq!(env_of(&v1), [("STYLE", "loud")]);
    assert!(v1.filter.keeps("public/index.html", false));
    // The artifact's buildpacks.env (and what op forwards) wins by name.
    let merged = v2.env_with(&[EnvVar {
        name: "BP_WEB_SERVER".into(),
        value: "httpd".into(),
    }]);
    let merged: Vec<(&str, &str)> = merged
        .iter()
        .map(|v| (v.name.as_str(), v.value.as_str()))
        .collect();
    assert_eq!(
        merged,
        [("BP_WEB_SERVER_ROOT", "public"), ("BP_WEB_SERVER", "httpd")]
    );
}

#[test]
fn a_build_env_entry_without_a_usable_name_is_an_error_naming_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.toml");
    fs_err::write(&path, "[[io.buildpacks.build.env]]\nvalue = \"nginx\"\n").unwrap();
    let error = ProjectDescriptor::read(Some(&path)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("[[io.buildpacks.build.env]] entry 1 has the name ``"),
        "{error}"
    );
    fs_err::write(&path, "[[build.env]]\nname = \"A/B\"\nvalue = \"x\"\n").unwrap();
    let error = ProjectDescriptor::read(Some(&path)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("[[build.env]] entry 1 has the name `A/B`"),
        "{error}"
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
        .order(&[("op/procfile".into(), "0.1.0".into())])
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
