//! What `op run` runs, and how: the image, the published ports, the environment, the volumes.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;

use super::infer::{self, Inferred};
use super::{Error, RunContext};
use crate::build_result::{self, BuildResult};
use crate::config::{Config, ContextOptions};
use crate::engine::PortMapping;
use crate::paths::normalize;

/// The first host port op tries when it publishes a port itself, and how many it tries.
pub const FIRST_HOST_PORT: u16 = 8080;
const HOST_PORT_TRIES: u16 = 100;

/// The image to run for `context`, and a note when the choice deserves one.
///
/// The entry of `build_result.json` for the context's artifact wins; without the file (or
/// without an entry) it is `<default repository>/<image>:<tag>`, as a build would name it.
pub fn resolve_image(
    context: &RunContext,
    config: &Config,
) -> Result<(String, Option<String>), Error> {
    let path = config.cwd().join(build_result::FILE_NAME);
    let fallback = || -> Result<String, Error> {
        let repo = config.default_repo(None)?;
        let tags = config.tags(None)?;
        Ok(format!(
            "{}:{}",
            crate::plan::target_name(&repo.value, &context.image),
            tags.value[0]
        ))
    };
    match BuildResult::read(&path) {
        Ok(result) => {
            if let Some(build) = result.find(&context.image) {
                return Ok((build.tag.clone(), None));
            }
            let image = fallback()?;
            let names: Vec<String> = result
                .builds
                .iter()
                .map(|b| format!("`{}`", b.name()))
                .collect();
            let note = format!(
                "`{}` has no entry for `{}` (it has {}); running `{image}`",
                build_result::FILE_NAME,
                context.image,
                names.join(", ")
            );
            Ok((image, Some(note)))
        }
        Err(build_result::Error::NotFound { .. }) => Ok((fallback()?, None)),
        Err(other) => Err(other.into()),
    }
}

/// How the container of one context runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOptions {
    /// The port the application listens on, and where op learnt it.
    pub inferred: Inferred,
    pub ports: Vec<PortMapping>,
    /// Whether op chose the host ports (the settings name none).
    pub ports_chosen: bool,
    /// `PORT` first, then the configured variables by name.
    pub env: Vec<(String, String)>,
    /// `source:target[:options]` with absolute host paths.
    pub binds: Vec<String>,
}

/// The options of `context`: the port inferred from its files, then `contexts.<name>` of the
/// settings files. Without configured ports, the container port is published on the first
/// free host port from 8080 that is not in `avoid`.
pub fn run_options(
    context: &RunContext,
    config: &Config,
    avoid: &[u16],
) -> Result<RunOptions, Error> {
    let inferred = infer::infer(&context.dir).map_err(|source| Error::Infer {
        dir: context.dir.clone(),
        source,
    })?;
    let configured = config.context_options(&context.name);
    let file = configured
        .map(|(_, path)| config.display(path))
        .unwrap_or_default();
    let options = configured.map(|(o, _)| o.clone()).unwrap_or_default();
    Ok(RunOptions {
        inferred,
        ports: ports(context, &options, &file, inferred.port, |p| {
            !avoid.contains(&p) && port_is_free(p)
        })?,
        ports_chosen: options.ports.is_empty(),
        env: env(inferred.port, &options),
        binds: binds(context, &options, &file, config.cwd())?,
    })
}

fn ports(
    context: &RunContext,
    options: &ContextOptions,
    file: &str,
    container_port: u16,
    is_free: impl Fn(u16) -> bool,
) -> Result<Vec<PortMapping>, Error> {
    if options.ports.is_empty() {
        let last = FIRST_HOST_PORT + HOST_PORT_TRIES - 1;
        let host = (FIRST_HOST_PORT..=last)
            .find(|p| is_free(*p))
            .ok_or(Error::NoFreePort {
                first: FIRST_HOST_PORT,
                last,
            })?;
        return Ok(vec![PortMapping {
            host_ip: None,
            host_port: Some(host),
            container_port,
            protocol: "tcp".into(),
        }]);
    }
    options
        .ports
        .iter()
        .map(|spec| {
            PortMapping::parse(&spec.0).map_err(|message| Error::BadPort {
                context: context.name.clone(),
                file: file.to_string(),
                message,
            })
        })
        .collect()
}

fn env(port: u16, options: &ContextOptions) -> Vec<(String, String)> {
    let mut env: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in &options.env {
        env.insert(k.as_str(), v.0.clone());
    }
    let port = env.remove("PORT").unwrap_or_else(|| port.to_string());
    std::iter::once(("PORT".to_string(), port))
        .chain(env.into_iter().map(|(k, v)| (k.to_string(), v)))
        .collect()
}

fn binds(
    context: &RunContext,
    options: &ContextOptions,
    file: &str,
    cwd: &Path,
) -> Result<Vec<String>, Error> {
    options
        .volumes
        .iter()
        .map(|spec| {
            let bad = || Error::BadVolume {
                context: context.name.clone(),
                file: file.to_string(),
                spec: spec.clone(),
            };
            let (source, rest) = spec.split_once(':').ok_or_else(bad)?;
            if source.is_empty() || rest.is_empty() || !rest.starts_with('/') {
                return Err(bad());
            }
            // A path (relative ones from the directory op runs in, as the docker CLI does), or
            // the name of a volume.
            let source = if source.starts_with(['.', '/']) || source.contains('/') {
                normalize(&cwd.join(source)).display().to_string()
            } else {
                source.to_string()
            };
            Ok(format!("{source}:{rest}"))
        })
        .collect()
}

/// Whether nothing listens on `port` (on any address, as the engine publishes there).
fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("0.0.0.0", port)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::ScalarString;

    fn context() -> RunContext {
        RunContext {
            name: "api".into(),
            image: "app-api".into(),
            dir: "/r/api".into(),
        }
    }

    fn options(ports: &[&str], env: &[(&str, &str)], volumes: &[&str]) -> ContextOptions {
        ContextOptions {
            ports: ports.iter().map(|p| ScalarString((*p).into())).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).into(), ScalarString((*v).into())))
                .collect(),
            volumes: volumes.iter().map(|v| (*v).to_string()).collect(),
        }
    }

    #[test]
    fn configured_ports_are_used_as_written() {
        let o = options(&["8081:8080", "127.0.0.1:9090:9090"], &[], &[]);
        let mapped = ports(&context(), &o, "f", 3000, |_| panic!("no search")).unwrap();
        let shown: Vec<String> = mapped.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["8081:8080", "127.0.0.1:9090:9090"]);
        let err = ports(&context(), &options(&["80:x"], &[], &[]), "f", 3000, |_| {
            true
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`contexts.api.ports` of `f`: `80:x` is not a port mapping"),
            "{err}"
        );
    }

    #[test]
    fn without_ports_the_first_free_host_port_from_8080_is_used() {
        let mapped = ports(&context(), &ContextOptions::default(), "", 3000, |p| {
            p >= 8082
        })
        .unwrap();
        assert_eq!(mapped[0].to_string(), "8082:3000");
        let err = ports(&context(), &ContextOptions::default(), "", 3000, |_| false).unwrap_err();
        assert_eq!(err.to_string(), "No free host port between 8080 and 8179");
    }

    #[test]
    fn configured_env_overrides_the_inferred_port() {
        assert_eq!(
            env(3000, &ContextOptions::default()),
            [("PORT".to_string(), "3000".to_string())]
        );
        let e = env(
            3000,
            &options(&[], &[("PORT", "8080"), ("B", "2"), ("A", "1")], &[]),
        );
        let e: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(e, [("PORT", "8080"), ("A", "1"), ("B", "2")]);
    }

    #[test]
    fn volume_paths_are_made_absolute_and_names_kept() {
        let o = options(
            &[],
            &[],
            &["./public:/app/public", "cache:/cache:rw", "/abs:/x:ro"],
        );
        let binds = binds(&context(), &o, "f", Path::new("/repo")).unwrap();
        assert_eq!(
            binds,
            ["/repo/public:/app/public", "cache:/cache:rw", "/abs:/x:ro"]
        );
        for bad in ["nocolon", ":/x", "src:relative", "src:"] {
            assert!(
                super::binds(&context(), &options(&[], &[], &[bad]), "f", Path::new("/r")).is_err(),
                "{bad}"
            );
        }
    }
}
