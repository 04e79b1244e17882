//! Chart artifacts (upstream section 4.4): a buildpacks artifact whose image ends in `-chart`,
//! built with `--push` as the octopilot Action runs op, is a Helm chart. The fixture builder's
//! op/helm-chart buildpack (octopilot/helm's contract: `BP_HELM_OCI_REF`, `BP_HELM_OCI_OUTPUT`,
//! `/out/ref`) packages the chart and pushes it with Helm's OCI media types; `build_result.json`
//! records the chart, checked here with skopeo and crane as the Action's
//! `select(.imageName|test("-chart$"))` reads it.

use std::process::Command;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::common::cnb::{Lifecycle, Stack, crane, crane_validate, leftovers, skopeo_raw};
use crate::common::{TestContext, build_result_in, copy_dir, fixtures, tag_of};

/// A copy of `fixtures/charts` (and the app it borrows from `fixtures/apps`) built with the
/// stack's builder, its other `localhost:5001` references on the stack's registry.
fn charts(stack: &Stack) -> TestContext {
    let context = TestContext::new();
    copy_dir(&fixtures().join("charts"), &context.path().join("charts"));
    copy_dir(
        &fixtures().join("apps/greeting"),
        &context.path().join("apps/greeting"),
    );
    context.replace_in(
        "charts/skaffold.yaml",
        &[
            ("localhost:5001/op/builder:latest", &stack.builder),
            ("localhost:5001", &stack.registry.addr()),
        ],
    );
    context
}

fn the_action_s_push_publishes_the_chart_and_records_it(lifecycle: Lifecycle) {
    let stack = Stack::start(lifecycle);
    let context = charts(&stack);
    let repo = stack.registry.addr();
    let run = context.op_in("charts", &["build", "--repo", &repo, "--push"]);
    run.success();
    let result = build_result_in(&context, "charts");
    let charts: Vec<&Value> = result["builds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["imageName"].as_str().unwrap().ends_with("-chart"))
        .collect();
    assert_eq!(charts.len(), 1, "{result}");
    let tag = charts[0]["tag"].as_str().unwrap();
    let (reference, digest) = tag.split_once('@').unwrap();
    assert_eq!(
        reference,
        format!("{repo}/hello-chart/hello:0.1.0"),
        "the chart where `helm push oci://{repo}/hello-chart` puts it\n{}",
        run.report()
    );
    assert!(
        run.stderr
            .contains(&format!("Chart artifact hello-chart -> {tag}"))
            || run
                .stdout
                .contains(&format!("Chart artifact hello-chart -> {tag}")),
        "{}",
        run.report()
    );

    served_chart(reference, digest);

    // The ordinary artifact beside it is an image, as always.
    assert!(
        tag_of(&result, "greeting").starts_with(&format!("{repo}/greeting:")),
        "{result}"
    );
    assert_eq!(leftovers(&repo), Vec::<String>::new());
}

on_each_builder!(the_action_s_push_publishes_the_chart_and_records_it);

/// What the registry serves at `reference` is the fixture's Helm chart, as `helm push` makes
/// it, with `digest`: Helm's config (Chart.yaml as JSON) and one chart layer, the packaged chart.
#[track_caller]
fn served_chart(reference: &str, digest: &str) {
    let manifest_bytes = skopeo_raw(reference);
    assert_eq!(
        format!("sha256:{:x}", Sha256::digest(&manifest_bytes)),
        digest
    );
    crane_validate(reference);
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.cncf.helm.config.v1+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );
    let config = crane_output(&["config", reference]);
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["name"], "hello");
    assert_eq!(config["version"], "0.1.0");
    let blob = format!(
        "{}@{}",
        reference.rsplit_once(':').unwrap().0,
        layers[0]["digest"].as_str().unwrap()
    );
    let chart = Command::new(crane())
        .args(["blob", &blob])
        .output()
        .unwrap();
    assert!(chart.status.success(), "{chart:?}");
    let mut entries: Vec<String> =
        tar::Archive::new(flate2::read::GzDecoder::new(chart.stdout.as_slice()))
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .filter(|p| !p.ends_with('/'))
            .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            "hello/Chart.yaml",
            "hello/templates/configmap.yaml",
            "hello/values.yaml"
        ]
    );
}

fn crane_output(args: &[&str]) -> String {
    let out = Command::new(crane()).args(args).output().unwrap();
    assert!(out.status.success(), "crane {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A `-chart` artifact whose context has no Chart.yaml is refused before anything is built,
/// naming the file; without `--push` it builds as an image, with a warning.
#[test]
fn a_chart_artifact_without_a_chart_is_refused_before_building() {
    let context = TestContext::new();
    copy_dir(&fixtures().join("apps"), context.path());
    context.replace_in(
        "skaffold.yaml",
        &[("image: procfile", "image: procfile-chart")],
    );
    let run = context.op(&["build", "--push", "--repo", "127.0.0.1:9", "--dry-run"]);
    run.failure(1);
    for expected in [
        "error:",
        "procfile-chart",
        "procfile/Chart.yaml` does not exist",
        "hint: a chart artifact's context is the chart",
    ] {
        assert!(
            run.stderr.contains(expected),
            "{expected}:\n{}",
            run.report()
        );
    }
    let run = context.op(&["build", "--repo", "127.0.0.1:9", "--dry-run"]);
    run.success();
    assert!(
        run.stderr
            .contains("its chart is published with --push only"),
        "{}",
        run.report()
    );
}
