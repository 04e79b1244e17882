use super::*;
use crate::kubernetes::Condition;

#[test]
fn the_build_s_image_is_matched_by_digest_else_exactly_by_name_and_tag() {
    let digest = "sha256:aaaa";
    let wanted = Wanted::of(&format!("ghcr.io/acme/web:v1.2.0@{digest}"));
    assert_eq!(
        (
            wanted.name.as_str(),
            wanted.tag.as_deref(),
            wanted.digest.as_deref()
        ),
        ("web", Some("v1.2.0"), Some(digest))
    );
    // By digest when the deployment names one, whatever the repository (a promoted copy).
    assert!(wanted.matches(&format!("europe-docker.pkg.dev/p/prod/web@{digest}")));
    assert!(wanted.matches(&format!("europe-docker.pkg.dev/p/prod/web:v1.2.0@{digest}")));
    assert!(!wanted.matches("ghcr.io/acme/web:v1.2.0@sha256:bbbb"));
    // Else by name and tag, exactly: not a substring.
    assert!(wanted.matches("registry.example/prod/web:v1.2.0"));
    assert!(!wanted.matches("ghcr.io/acme/web:v1.2.0-rc1"));
    assert!(!wanted.matches("ghcr.io/acme/web-admin:v1.2.0"));
    // Upstream's trap: `latest` matched every image containing it.
    let latest = Wanted::of("localhost:5001/web:latest@sha256:cccc");
    assert!(!latest.matches("localhost:5001/other:latest"));
    assert!(latest.matches("localhost:5001/web"), "no tag is latest");
    assert!(latest.matches("localhost:5001/web:latest"));
    let tag_only = Wanted::of("localhost:5001/web:v2");
    assert!(tag_only.matches("localhost:5001/web:v2"));
    assert!(
        !tag_only.matches("localhost:5001/web:v2@sha256:dddd"),
        "a digest the build did not record"
    );
}

fn state(generation: i64, observed: i64, counts: [i32; 4]) -> DeploymentState {
    let [desired, replicas, updated, available] = counts;
    DeploymentState {
        generation,
        observed_generation: observed,
        desired,
        replicas,
        updated,
        ready: available,
        available,
        ..DeploymentState::default()
    }
}

#[test]
fn rollouts_follow_kubectl_s_rules() {
    assert_eq!(
        rollout(&state(2, 1, [2, 2, 2, 2])),
        Rollout::SpecNotObserved
    );
    assert_eq!(
        rollout(&state(2, 2, [3, 3, 1, 1])),
        Rollout::Waiting("1 out of 3 new replicas have been updated".into())
    );
    assert_eq!(
        rollout(&state(2, 2, [2, 3, 2, 2])),
        Rollout::Waiting("1 old replicas are pending termination".into())
    );
    assert_eq!(
        rollout(&state(2, 2, [2, 2, 2, 1])),
        Rollout::Waiting("1 of 2 updated replicas are available".into())
    );
    assert_eq!(rollout(&state(2, 2, [2, 2, 2, 2])), Rollout::Done);
    let mut stuck = state(3, 3, [2, 3, 1, 0]);
    stuck.progressing = Some((
        "ProgressDeadlineExceeded".into(),
        "ReplicaSet \"web-7d\" has timed out progressing.".into(),
    ));
    assert_eq!(
        rollout(&stuck),
        Rollout::DeadlineExceeded("ReplicaSet \"web-7d\" has timed out progressing.".into())
    );
}

#[test]
fn a_reconcile_is_done_when_handled_observed_and_ready() {
    let token = "2026-12-07T06:00:00.123456789Z";
    let ready = |status: &str| Condition {
        status: status.into(),
        reason: "UpgradeSucceeded".into(),
        message: "Helm upgrade succeeded".into(),
    };
    let mut release = HelmReleaseState {
        generation: 4,
        observed_generation: 4,
        last_handled_reconcile_at: Some("earlier".into()),
        ready: Some(ready("True")),
        ..HelmReleaseState::default()
    };
    assert!(matches!(released(&release, token), Released::NotYet(_)));
    release.last_handled_reconcile_at = Some(token.into());
    assert_eq!(released(&release, token), Released::Yes);
    release.ready = Some(ready("Unknown"));
    assert!(matches!(released(&release, token), Released::NotYet(_)));
    release.stalled = Some(Condition {
        status: "True".into(),
        reason: "InstallFailed".into(),
        message: "chart not found".into(),
    });
    assert!(matches!(released(&release, token), Released::Stalled(_)));
    release.suspended = true;
    assert_eq!(released(&release, token), Released::Suspended);
}

#[test]
fn durations_read_as_upstream_writes_them() {
    assert_eq!(human(Duration::from_secs(600)), "10m");
    assert_eq!(human(Duration::from_secs(1800)), "30m");
    assert_eq!(human(Duration::from_secs(45)), "45s");
    assert_eq!(human(Duration::from_secs(5400)), "1h30m");
    assert_eq!(human(Duration::from_secs(90)), "1m30s");
}
