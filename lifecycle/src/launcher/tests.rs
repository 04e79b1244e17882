use super::*;
use crate::files::GroupElement;
use std::os::unix::fs::PermissionsExt as _;

fn bp(id: &str, api: &str) -> GroupElement {
    GroupElement {
        id: id.into(),
        version: "1".into(),
        api: api.into(),
        homepage: None,
    }
}

fn process(kind: &str, command: &[&str], args: &[&str]) -> Process {
    Process {
        kind: kind.into(),
        command: command.iter().map(|s| (*s).to_string()).collect(),
        args: args.iter().map(|s| (*s).to_string()).collect(),
        buildpack_id: "example/web".into(),
        direct: true,
        ..Process::default()
    }
}

fn metadata() -> BuildMetadata {
    BuildMetadata {
        buildpacks: vec![bp("example/web", "0.10"), bp("example/tools", "0.10")],
        processes: vec![
            process("web", &["httpd"], &["-f", "-p", "8080"]),
            process("task", &["sh", "-c"], &["echo hi"]),
        ],
        default_process_type: Some("web".into()),
        ..BuildMetadata::default()
    }
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn the_process_type_is_the_name_the_launcher_runs_as() {
    let md = metadata();
    assert_eq!(
        process_type_of("/cnb/process/web", &md).as_deref(),
        Some("web")
    );
    assert_eq!(process_type_of("task", &md).as_deref(), Some("task"));
    assert_eq!(process_type_of("/cnb/lifecycle/launcher", &md), None);
}

#[test]
fn user_arguments_replace_the_process_arguments_but_never_the_always_args() {
    let md = metadata();
    let app = Path::new("/workspace");
    let web = process_for(Some("web"), &md, &[], app).unwrap();
    assert_eq!(web.argv, strings(&["httpd", "-f", "-p", "8080"]));
    assert!(web.direct);
    assert_eq!(web.working_dir, app);
    let web = process_for(Some("web"), &md, &strings(&["-p", "9090"]), app).unwrap();
    assert_eq!(web.argv, strings(&["httpd", "-p", "9090"]));
    let task = process_for(Some("task"), &md, &strings(&["echo bye"]), app).unwrap();
    assert_eq!(
        task.argv,
        strings(&["sh", "-c", "echo bye"]),
        "command[1..] are always-args"
    );
}

#[test]
fn older_buildpacks_get_user_arguments_appended() {
    let mut md = metadata();
    md.buildpacks[0].api = "0.8".into();
    let web = process_for(Some("web"), &md, &strings(&["-v"]), Path::new("/w")).unwrap();
    assert_eq!(web.argv, strings(&["httpd", "-f", "-p", "8080", "-v"]));
}

#[test]
fn without_a_default_process_the_user_names_the_command() {
    let md = metadata();
    let app = Path::new("/workspace");
    let error = process_for(None, &md, &[], app).unwrap_err();
    assert_eq!(error.code, exit::LAUNCH_ERROR);
    assert!(
        error
            .message
            .contains("when there is no default process a command is required"),
        "{}",
        error.message
    );
    let direct = process_for(None, &md, &strings(&["--", "env", "-0"]), app).unwrap();
    assert_eq!(
        (direct.argv, direct.direct, direct.kind),
        (strings(&["env", "-0"]), true, None)
    );
    let shell = process_for(None, &md, &strings(&["echo $HOME", "x"]), app).unwrap();
    assert_eq!(
        (shell.argv, shell.direct),
        (strings(&["echo $HOME", "x"]), false)
    );
}

#[test]
fn a_process_runs_in_its_working_directory_relative_to_the_app() {
    let mut md = metadata();
    md.processes[0].working_dir = Some("public".into());
    let web = process_for(Some("web"), &md, &[], Path::new("/workspace")).unwrap();
    assert_eq!(web.working_dir, Path::new("/workspace/public"));
    let error = process_for(Some("worker"), &md, &[], Path::new("/workspace")).unwrap_err();
    assert!(
        error.message.contains("process type worker was not found"),
        "{}",
        error.message
    );
}

fn write(path: &Path, text: &str) {
    fs_err::create_dir_all(path.parent().unwrap()).unwrap();
    fs_err::write(path, text).unwrap();
}

#[test]
fn the_launch_environment_applies_layers_in_buildpack_then_lexical_order() {
    let dir = tempfile::tempdir().unwrap();
    let layers = dir.path();
    fs_err::create_dir_all(layers.join("example_web/runtime/bin")).unwrap();
    fs_err::create_dir_all(layers.join("example_web/runtime/lib")).unwrap();
    write(&layers.join("example_web/runtime/env/GREETING"), "hello");
    write(
        &layers.join("example_web/runtime/env.launch/MODE.default"),
        "production",
    );
    write(
        &layers.join("example_web/runtime/env.launch/web/ROLE"),
        "web",
    );
    write(
        &layers.join("example_web/runtime/env.launch/task/ROLE"),
        "task",
    );
    write(
        &layers.join("example_web/runtime/env.build/BUILD_ONLY"),
        "x",
    );
    write(
        &layers.join("example_tools/a/env.launch/GREETING.append"),
        ", world",
    );
    write(
        &layers.join("example_tools/a/env.launch/GREETING.delim"),
        "",
    );
    write(
        &layers.join("example_tools/b/env.launch/GREETING.append"),
        "!",
    );
    let environ = strings(&[
        "PATH=/cnb/process:/cnb/lifecycle:/bin",
        "CNB_LAYERS_DIR=/layers",
        "CNB_PLATFORM_API=0.12",
        "KEEP=1",
    ]);
    let environ = environ.iter().map(|kv| {
        kv.split_once('=')
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .unwrap()
    });
    let env = launch_env(environ, layers, &metadata(), Some("web")).unwrap();
    let vars: BTreeMap<&str, &str> = env.vars().collect();
    assert_eq!(
        vars["PATH"],
        format!("{}:/bin", layers.join("example_web/runtime/bin").display())
    );
    assert_eq!(
        vars["LD_LIBRARY_PATH"],
        layers.join("example_web/runtime/lib").display().to_string()
    );
    assert_eq!(vars["GREETING"], "hello, world!");
    assert_eq!(
        (vars["MODE"], vars["ROLE"], vars["KEEP"]),
        ("production", "web", "1")
    );
    assert!(
        !vars.contains_key("BUILD_ONLY")
            && !vars.contains_key("CNB_LAYERS_DIR")
            && !vars.contains_key("CNB_PLATFORM_API")
    );
}

#[test]
fn direct_processes_are_found_on_the_launch_path_and_shell_processes_source_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let layers = dir.path().join("layers");
    let app = dir.path().join("app");
    fs_err::create_dir_all(&app).unwrap();
    let tool = layers.join("example_web/runtime/bin/greet");
    write(
        &tool,
        "#!/bin/sh\necho \"$GREETING from ${0##*/} in $(pwd) with $*\"\n",
    );
    fs_err::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    write(
        &layers.join("example_web/runtime/env.launch/GREETING"),
        "hello",
    );
    write(
        &layers.join("example_web/runtime/profile.d/10-name.sh"),
        "export NAME=profile\n",
    );
    // Variables reach the process only when exported: it runs in a nested bash.
    write(&app.join(".profile"), "NAME=\"$NAME+app\"\nexport NAME\n");
    let mut md = metadata();
    md.processes = vec![process("greet", &["greet"], &["a", "b"])];
    let environ = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];

    let launch = process_for(Some("greet"), &md, &[], &app).unwrap();
    let env = launch_env(environ.clone(), &layers, &md, Some("greet")).unwrap();
    let output = command(&launch, &env, &[], "launcher")
        .unwrap()
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("hello from greet in {} with a b", app.display())
    );

    // A user command without `--` and without arguments is a bash script.
    let launch = process_for(
        None,
        &md,
        &strings(&["echo \"$NAME\" said | tr a-z A-Z"]),
        &app,
    )
    .unwrap();
    let scripts = profile_scripts(&layers, &md, None, &app).unwrap();
    assert_eq!(scripts.last().unwrap(), Path::new(".profile"));
    let output = command(&launch, &env, &scripts, "launcher")
        .unwrap()
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "PROFILE+APP SAID\n"
    );

    let missing = process_for(None, &md, &strings(&["--", "no-such-program"]), &app).unwrap();
    let error = command(&missing, &env, &[], "launcher").unwrap_err();
    assert!(
        error
            .message
            .contains("\"no-such-program\": executable file not found in $PATH"),
        "{}",
        error.message
    );
}

#[test]
fn shell_processes_of_old_buildpacks_run_through_bash_as_the_reference_runs_them() {
    let dir = tempfile::tempdir().unwrap();
    let layers = dir.path().join("layers");
    let app = dir.path().join("app");
    fs_err::create_dir_all(app.join("sub")).unwrap();
    write(
        &layers.join("example_web/runtime/profile.d/web/10-who.sh"),
        "export WHO=\"web profile of $0\"\n",
    );
    write(
        &layers.join("example_web/runtime/env.launch/GREETING"),
        "hello there",
    );
    let mut md = metadata();
    md.buildpacks[0].api = "0.7".into();
    let mut web = process("web", &["echo $GREETING: $WHO in $(pwd)"], &[]);
    web.direct = false;
    let mut tokens = process("tokens", &["printf"], &["%s|", "$GREETING", "$(echo a b)"]);
    tokens.direct = false;
    tokens.working_dir = Some("sub".into());
    md.processes = vec![web, tokens];
    let environ = vec![("PATH".to_string(), "/usr/bin:/bin".to_string())];
    let run = |kind: &str, user_args: &[&str]| {
        let launch = process_for(Some(kind), &md, &strings(user_args), &app).unwrap();
        assert!(!launch.direct);
        let env = launch_env(environ.clone(), &layers, &md, Some(kind)).unwrap();
        let scripts = profile_scripts(&layers, &md, Some(kind), &app).unwrap();
        let output = command(&launch, &env, &scripts, "/cnb/process/web")
            .unwrap()
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(
        run("web", &[]),
        format!(
            "hello there: web profile of /cnb/process/web in {}\n",
            app.display()
        ),
        "script mode: no arguments"
    );
    assert_eq!(
        run("tokens", &["$GREETING"]),
        "hello there|a b|hello there|",
        "token mode: each argument one word, user arguments appended below 0.9"
    );
    assert_eq!(
        bash_script(&[PathBuf::from("/l/p.sh")], Path::new("/w"), 2),
        "source \"/l/p.sh\"\ncd \"/w\"\nexec bash -c '\"$(eval echo \\\"$0\\\")\" \"$(eval echo \\\"${1}\\\")\" \"$(eval echo \\\"${2}\\\")\"' \"${@:1}\""
    );
    let launch = process_for(Some("web"), &md, &[], &app).unwrap();
    let env = launch_env(environ.clone(), &layers, &md, Some("web")).unwrap();
    let error = command_with_shell(&launch, &env, &[], "launcher", Path::new("/no/bash"))
        .unwrap()
        .spawn()
        .unwrap_err();
    assert_eq!(
        exec_error(false, &error).message,
        "failed to launch: bash exec: no such file or directory"
    );
}

#[test]
fn the_platform_api_and_buildpack_apis_are_checked() {
    let error = prepare("launcher", &[], vec![]).unwrap_err();
    assert_eq!(error.code, exit::INCOMPATIBLE_PLATFORM_API);
    let dir = tempfile::tempdir().unwrap();
    let mut md = metadata();
    md.buildpacks[1].api = "0.2".into();
    fs_err::create_dir_all(dir.path().join("config")).unwrap();
    files::write_toml(&dir.path().join("config/metadata.toml"), &md).unwrap();
    let environ = vec![
        ("CNB_PLATFORM_API".to_string(), "0.12".to_string()),
        (
            "CNB_LAYERS_DIR".to_string(),
            dir.path().display().to_string(),
        ),
    ];
    let error = prepare("/cnb/process/web", &[], environ).unwrap_err();
    assert_eq!(
        error.code,
        exit::INCOMPATIBLE_BUILDPACK_API,
        "{}",
        error.message
    );
}
