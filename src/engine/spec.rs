//! What a container is, in op's own terms (no bollard types), so that the code that decides what
//! to run can be tested without an engine.

use std::collections::BTreeMap;
use std::fmt;

/// A container to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerSpec {
    /// The container's name; the engine picks one when `None`.
    pub name: Option<String>,
    pub image: String,
    /// Replaces the image's entrypoint when set (`Some(vec![String::new()])` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// Replaces the image's command when set.
    pub cmd: Option<Vec<String>>,
    /// Environment, in order.
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: Vec<PortMapping>,
    /// `source:target[:options]`, where source is an absolute host path or a volume name.
    pub binds: Vec<String>,
    pub network_mode: Option<String>,
    pub security_opt: Vec<String>,
    /// Let the engine remove the container when it stops. Its exit code may then be gone before
    /// anyone asks for it: to know it, leave this off and remove the container after waiting.
    pub auto_remove: bool,
    /// The platform (`os/arch[/variant]`) the container is for, when it is not the engine's own:
    /// the engine checks that the image is that platform's, and runs it under emulation.
    pub platform: Option<String>,
}

/// Credentials the engine uses to pull an image (the `X-Registry-Auth` of the Engine API).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PullAuth {
    /// The registry, as the engine names it (`https://index.docker.io/v1/` for Docker Hub).
    pub server: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub identity_token: Option<String>,
    pub registry_token: Option<String>,
}

impl fmt::Debug for PullAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullAuth")
            .field("server", &self.server)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A published port (`docker run -p`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    /// The host address to bind; all addresses when `None`.
    pub host_ip: Option<String>,
    /// The host port; the engine picks a free one when `None`.
    pub host_port: Option<u16>,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

impl PortMapping {
    /// Parses a `docker run -p` spec: `[ip:][host_port:]container_port[/protocol]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = || {
            format!("`{spec}` is not a port mapping (`[ip:][host_port:]container_port[/tcp|udp]`)")
        };
        let (mapping, protocol) = match spec.rsplit_once('/') {
            Some((mapping, protocol @ ("tcp" | "udp"))) => (mapping, protocol),
            Some(_) => return Err(bad()),
            None => (spec, "tcp"),
        };
        let port = |text: &str| text.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(bad);
        let parts: Vec<&str> = mapping.rsplitn(3, ':').collect();
        let (host_ip, host_port, container_port) = match parts.as_slice() {
            [container] => (None, None, port(container)?),
            [container, host] => (None, Some(port(host)?), port(container)?),
            [container, host, ip] => {
                let host_port = if host.is_empty() {
                    None
                } else {
                    Some(port(host)?)
                };
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                (
                    Some(ip.to_string()).filter(|i| !i.is_empty()),
                    host_port,
                    port(container)?,
                )
            }
            _ => return Err(bad()),
        };
        Ok(Self {
            host_ip,
            host_port,
            container_port,
            protocol: protocol.to_string(),
        })
    }
}

impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(ip) = &self.host_ip {
            write!(f, "{ip}:")?;
        }
        match (self.host_port, &self.host_ip) {
            (Some(host), _) => write!(f, "{host}:")?,
            (None, Some(_)) => write!(f, ":")?,
            (None, None) => {}
        }
        write!(f, "{}", self.container_port)?;
        if self.protocol != "tcp" {
            write!(f, "/{}", self.protocol)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_port_specs() {
        let cases = [
            ("8080", None, None, 8080, "tcp"),
            ("8081:8080", None, Some(8081), 8080, "tcp"),
            (
                "127.0.0.1:8081:8080",
                Some("127.0.0.1"),
                Some(8081),
                8080,
                "tcp",
            ),
            ("127.0.0.1::8080", Some("127.0.0.1"), None, 8080, "tcp"),
            ("5353:53/udp", None, Some(5353), 53, "udp"),
        ];
        for (spec, ip, host, container, protocol) in cases {
            let parsed = PortMapping::parse(spec).unwrap();
            assert_eq!(parsed.host_ip.as_deref(), ip, "{spec}");
            assert_eq!(parsed.host_port, host, "{spec}");
            assert_eq!(parsed.container_port, container, "{spec}");
            assert_eq!(parsed.protocol, protocol, "{spec}");
            assert_eq!(parsed.to_string(), spec);
        }
        for bad in ["", "x", "8080:", "0", "70000:80", "80/sctp", "a:b:c:d"] {
            assert!(PortMapping::parse(bad).is_err(), "{bad}");
        }
    }
}
