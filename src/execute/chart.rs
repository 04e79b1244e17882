//! Chart artifacts (upstream section 4.4): a buildpacks artifact whose image ends in `-chart`,
//! built with `--push`, is a Helm chart. The builder's chart buildpack (production:
//! octopilot/helm) packages it and pushes it as an OCI artifact to `oci://$BP_HELM_OCI_REF`, then
//! writes the reference it pushed to `$BP_HELM_OCI_OUTPUT/ref`. op gives it those variables and a
//! `/out` directory the build user owns, reads `/out/ref` out of the creator's container
//! (through the Engine API: no host directory, so it works the same with a remote engine or op
//! in a container), and records the chart, with the digest the registry serves, in
//! `build_result.json`.

use super::Shared;
use super::artifact::Error;
use super::publish::{Finished, served_digest};
use crate::plan::{ChartPlan, EnvVar};
#[cfg(test)]
use op_oci::Reference;

/// Where the chart buildpack writes `ref` (`BP_HELM_OCI_OUTPUT`).
pub(super) const OUT_DIR: &str = "/out";

/// The variables the chart buildpack reads: where to push (the artifact's target without its
/// tag), where to write the reference, and whether the registry speaks plain HTTP (an insecure
/// or loopback registry, as later upstream sets it).
pub(super) fn env(chart: &ChartPlan, insecure_registries: &[String]) -> Vec<EnvVar> {
    let var = |name: &str, value: &str| EnvVar {
        name: name.to_string(),
        value: value.to_string(),
    };
    let mut env = vec![
        var("BP_HELM_OCI_REF", &chart.repository.to_string()),
        var("BP_HELM_OCI_OUTPUT", OUT_DIR),
    ];
    let host = chart.repository.registry();
    if insecure_registries.iter().any(|r| r == host) || chart.repository.is_loopback() {
        env.push(var("BP_HELM_OCI_PLAIN_HTTP", "true"));
    }
    env
}

/// What the chart buildpack wrote to `/out/ref`: the reference it pushed, with a digest when it
/// names one. octopilot/helm writes `<BP_HELM_OCI_REF>:<version>@<digest>` although `helm
/// push` puts the chart at `<BP_HELM_OCI_REF>/<name>:<version>`, so, as later upstream does,
/// the reference recorded is always the chart's own ([`ChartPlan::reference`]); its digest,
/// when written, must be the one the registry serves there.
pub(super) fn written_digest(written: &str) -> Result<Option<String>, String> {
    let written = written.trim();
    if written.is_empty() {
        return Err("it is empty".into());
    }
    match written.rsplit_once('@') {
        Some((_, digest)) if is_digest(digest) => Ok(Some(digest.to_string())),
        Some((_, digest)) => Err(format!(
            "`{written}` ends in `@{digest}`, which is not a sha256 digest"
        )),
        None => Ok(None),
    }
}

fn is_digest(text: &str) -> bool {
    text.strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// After the creator succeeded: the chart's reference, with the digest the registry serves
/// (checked against the one the buildpack wrote), read from where the creator ran.
pub(super) async fn published(
    shared: &Shared,
    name: &str,
    chart: &ChartPlan,
    finished: &Finished<'_>,
) -> Result<(String, String), Error> {
    let path = format!("{OUT_DIR}/ref");
    let tar = finished
        .download(shared, &path)
        .await?
        .ok_or(Error::NoChartRef)?;
    let text = crate::cnb::app::single_file(&tar).map_err(Error::BadChartRef)?;
    let written = written_digest(&text).map_err(Error::BadChartRef)?;
    let reference = chart.reference();
    let served = served_digest(shared, &reference).await?;
    let digest = match (served, written) {
        (Some(served), Some(written)) if served != written => {
            return Err(Error::DigestMismatch {
                target: reference.to_string(),
                reported: written,
                served,
            });
        }
        (Some(digest), _) | (None, Some(digest)) => digest,
        (None, None) => {
            return Err(Error::BadChartRef(format!(
                "`{}` names no digest, and the registry refuses op's credentials for `{reference}`",
                text.trim()
            )));
        }
    };
    shared.reporter.line(
        name,
        &format!("Chart artifact {name} -> {reference}@{digest}"),
    );
    Ok((reference.to_string(), digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> ChartPlan {
        ChartPlan {
            name: "hello".into(),
            version: "0.1.0+build.1".into(),
            repository: Reference::parse("127.0.0.1:5000/team/hello-chart").unwrap(),
        }
    }

    #[test]
    fn the_buildpack_gets_where_to_push_and_how() {
        let names = |env: Vec<EnvVar>| {
            env.into_iter()
                .map(|v| format!("{}={}", v.name, v.value))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(env(&chart(), &[])),
            [
                "BP_HELM_OCI_REF=127.0.0.1:5000/team/hello-chart",
                "BP_HELM_OCI_OUTPUT=/out",
                "BP_HELM_OCI_PLAIN_HTTP=true"
            ]
        );
        let remote = ChartPlan {
            repository: Reference::parse("ghcr.io/team/hello-chart").unwrap(),
            ..chart()
        };
        assert_eq!(env(&remote, &[]).len(), 2, "TLS unless insecure");
        assert_eq!(env(&remote, &["ghcr.io".into()]).len(), 3);
        assert_eq!(
            chart().reference(),
            "127.0.0.1:5000/team/hello-chart/hello:0.1.0_build.1"
        );
    }

    #[test]
    fn the_written_reference_gives_its_digest_or_a_clear_error() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            written_digest(&format!("127.0.0.1:5000/team/hello-chart:0.1.0@{digest}\n")),
            Ok(Some(digest))
        );
        assert_eq!(written_digest("reg/team/hello-chart/hello:0.1.0"), Ok(None));
        assert!(written_digest(" \n").unwrap_err().contains("empty"));
        assert!(
            written_digest("reg/x:1@sha256:zz")
                .unwrap_err()
                .contains("not a sha256 digest")
        );
    }
}
