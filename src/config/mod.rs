//! Where mmrelay keeps its files (MMRelay's layout: `$MMRELAY_HOME`, default `~/.mmrelay`) and
//! its config: MMRelay's `config.yaml`, read and checked by [`relay`] (all of it for the relay,
//! or only the part a command needs), with [`locate`] finding the line of a key for errors.

use std::path::{Path, PathBuf};

pub mod locate;
pub mod relay;

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

/// Reads the config file, explaining a missing one.
pub fn read_text(file: &Path) -> Result<String, String> {
    std::fs::read_to_string(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{}: not found; create it with `mmrelay config generate`, or pass --config",
            file.display()
        ),
        _ => format!("{}: cannot read: {e}", file.display()),
    })
}

/// The process environment, for the `MMRELAY_*` overrides.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// Expands a leading `~/` to `$HOME/`.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
