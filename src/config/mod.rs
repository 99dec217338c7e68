//! Where mmrelay keeps its files (MMRelay's layout: `$MMRELAY_HOME`, default `~/.mmrelay`) and
//! reading the parts of MMRelay's `config.yaml` implemented so far: the radio connection.
//! Errors name the file, the key, the bad value and what is allowed.

use std::fmt;
use std::path::{Path, PathBuf};

pub mod locate;
pub mod relay;

use serde::Deserialize;

use crate::mesh::transport::{Endpoint, DEFAULT_TCP_PORT};

/// The home folder: `--home`, else `$MMRELAY_HOME`, else `~/.mmrelay`.
pub fn home_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("MMRELAY_HOME").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".mmrelay")
}

/// The config file: `--config`, else `HOME/config.yaml`.
pub fn config_path(home: &Path, explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .unwrap_or_else(|| home.join("config.yaml"))
}

#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}
impl std::error::Error for ConfigError {}

/// The `meshtastic:` section, as MMRelay writes it.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct MeshtasticSection {
    pub connection_type: Option<String>,
    pub serial_port: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
}

/// `matrix.e2ee`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct E2eeSection {
    pub enabled: Option<bool>,
    pub store_path: Option<String>,
}

/// The `matrix:` section, as MMRelay writes it (the legacy password keys included).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct MatrixSection {
    pub homeserver: Option<String>,
    pub bot_user_id: Option<String>,
    pub password: Option<String>,
    pub access_token: Option<String>,
    pub e2ee: E2eeSection,
}

/// One entry of `matrix_rooms`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct RoomEntry {
    /// Room id (`!abc:server`) or alias (`#room:server`).
    pub id: String,
    pub meshtastic_channel: Option<u32>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub meshtastic: MeshtasticSection,
    pub matrix: MatrixSection,
    pub matrix_rooms: Vec<RoomEntry>,
}

/// Expands a leading `~/` to `$HOME/`.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

impl Config {
    /// Reads and parses `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let err = |message: String| ConfigError {
            file: file.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(file).map_err(|e| {
            err(match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "not found; create it with `mmrelay config generate`, or pass --config".into()
                }
                _ => format!("cannot read: {e}"),
            })
        })?;
        Config::parse(&text).map_err(err)
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        serde_yaml_ng::from_str(text).map_err(|e| e.to_string())
    }

    /// The radio's endpoint from `meshtastic.connection_type` and its keys.
    pub fn endpoint(&self) -> Result<Endpoint, String> {
        let m = &self.meshtastic;
        let kind = m.connection_type.as_deref().map(str::trim).unwrap_or("");
        match kind {
            "serial" => {
                let port = m.serial_port.as_deref().map(str::trim).unwrap_or("");
                if port.is_empty() {
                    return Err(
                        "meshtastic.serial_port is missing: set it to the radio's device, \
                                for example /dev/ttyUSB0 or /dev/ttyACM0"
                            .into(),
                    );
                }
                Ok(Endpoint::Serial(PathBuf::from(port)))
            }
            "tcp" | "network" => {
                let host = m.host.as_deref().map(str::trim).unwrap_or("");
                if host.is_empty() {
                    return Err(format!(
                        "meshtastic.host is missing: set it to the radio's address \
                         (connection_type is '{kind}')"
                    ));
                }
                Ok(Endpoint::Tcp {
                    host: host.to_string(),
                    port: m.port.unwrap_or(DEFAULT_TCP_PORT),
                })
            }
            "ble" => Err(
                "meshtastic.connection_type 'ble' is not supported by mmrelay: connect \
                          the radio by USB (serial) or over the network (tcp)"
                    .into(),
            ),
            "" => Err("meshtastic.connection_type is missing: set it to serial or tcp".into()),
            other => Err(format!(
                "meshtastic.connection_type '{other}' is not allowed: use serial or tcp"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_mmrelay_config() {
        let c =
            Config::parse("meshtastic:\n  connection_type: serial\n  serial_port: /dev/ttyACM0\n")
                .unwrap();
        assert_eq!(c.endpoint(), Ok(Endpoint::Serial("/dev/ttyACM0".into())));
        let c =
            Config::parse("meshtastic:\n  connection_type: network\n  host: 10.1.2.3\n").unwrap();
        assert_eq!(
            c.endpoint(),
            Ok(Endpoint::Tcp {
                host: "10.1.2.3".into(),
                port: 4403
            })
        );
        let c = Config::parse("meshtastic:\n  connection_type: tcp\n  host: r\n  port: 4000\n")
            .unwrap();
        assert_eq!(
            c.endpoint(),
            Ok(Endpoint::Tcp {
                host: "r".into(),
                port: 4000
            })
        );
    }

    #[test]
    fn bad_connection_settings_are_explained() {
        let e = |y: &str| Config::parse(y).unwrap().endpoint().unwrap_err();
        assert!(e("meshtastic:\n  connection_type: ble\n").contains("not supported"));
        assert!(e("meshtastic:\n  connection_type: serial\n").contains("serial_port is missing"));
        assert!(e("meshtastic:\n  connection_type: tcp\n").contains("host is missing"));
        assert!(e("meshtastic:\n  connection_type: lora\n").contains("'lora' is not allowed"));
        assert!(e("matrix: {}\n").contains("connection_type is missing"));
        let bad = Config::parse("meshtastic:\n  port: seventy\n").unwrap_err();
        assert!(
            bad.contains("meshtastic.port") && bad.contains("line 2"),
            "{bad}"
        );
    }

    #[test]
    fn home_and_config_paths() {
        let h = home_dir(Some(Path::new("/srv/mm")));
        assert_eq!(h, PathBuf::from("/srv/mm"));
        assert_eq!(config_path(&h, None), PathBuf::from("/srv/mm/config.yaml"));
        assert_eq!(
            config_path(&h, Some(Path::new("/etc/m.yaml"))),
            PathBuf::from("/etc/m.yaml")
        );
    }
}
