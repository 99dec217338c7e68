//! Reading the YAML tree of the config: typed getters that record a problem (with the key's
//! line) instead of failing, the `MMRELAY_*` overrides, and the list of keys mmrelay ignores.

use serde_yaml_ng::{Mapping, Value};

use super::super::locate::{line_of, path as key_path};
use super::{Problem, ENV_OVERRIDES};

pub(super) struct Reader<'a> {
    pub(super) text: &'a str,
    pub(super) root: Value,
    pub(super) problems: Vec<Problem>,
    /// Keys set from the environment, with their variable.
    pub(super) from_env: Vec<(&'static str, &'static str)>,
}

fn get<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut cur = root;
    for part in path.split('.') {
        cur = cur.as_mapping()?.get(Value::String(part.to_string()))?;
    }
    Some(cur)
}

fn set(root: &mut Value, path: &str, v: Value) {
    let mut cur = root;
    for part in path.split('.') {
        if !cur.is_mapping() {
            *cur = Value::Mapping(Mapping::new());
        }
        let m = cur.as_mapping_mut().expect("mapping");
        cur = m
            .entry(Value::String(part.to_string()))
            .or_insert(Value::Null);
    }
    *cur = v;
}

pub(super) fn show(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Null => "nothing".into(),
        other => serde_yaml_ng::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
    }
}

impl Reader<'_> {
    pub(super) fn problem(&mut self, key: &str, message: String) {
        let message = match self.from_env.iter().find(|(_, k)| *k == key) {
            Some((var, _)) => format!("{message} (from ${var})"),
            None => message,
        };
        self.problems.push(Problem {
            line: line_of(self.text, &key_path(key)),
            key: key.to_string(),
            message,
        });
    }

    pub(super) fn value(&self, key: &str) -> Option<&Value> {
        get(&self.root, key).filter(|v| !v.is_null())
    }

    pub(super) fn string(&mut self, key: &str) -> Option<String> {
        match self.value(key)?.clone() {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                self.problem(key, format!("{} is not text", show(&other)));
                None
            }
        }
    }

    pub(super) fn boolean(&mut self, key: &str, default: bool) -> bool {
        match self.value(key).cloned() {
            None => default,
            Some(Value::Bool(b)) => b,
            Some(Value::String(s))
                if matches!(s.to_lowercase().as_str(), "true" | "yes" | "on" | "1") =>
            {
                true
            }
            Some(Value::String(s))
                if matches!(s.to_lowercase().as_str(), "false" | "no" | "off" | "0") =>
            {
                false
            }
            Some(other) => {
                self.problem(
                    key,
                    format!("{} is not allowed: use true or false", show(&other)),
                );
                default
            }
        }
    }

    pub(super) fn number(
        &mut self,
        key: &str,
        default: f64,
        min: f64,
        max: f64,
        what: &str,
    ) -> f64 {
        let v = match self.value(key).cloned() {
            None => return default,
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match v {
            Some(x) if (min..=max).contains(&x) => x,
            _ => {
                let shown = show(self.value(key).expect("present"));
                self.problem(
                    key,
                    format!("{shown} is not allowed: {what} from {min} to {max}"),
                );
                default
            }
        }
    }
}

/// Adds to `out` each key under `v` (at `prefix`) that mmrelay does not use.
fn walk_unknown(v: &Value, prefix: &str, known: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let Some(k) = k.as_str() else { continue };
                let path = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                if known(&path) {
                    walk_unknown(child, &path, known, out);
                } else {
                    out.push(path);
                }
            }
        }
        Value::Sequence(items) => {
            for item in items {
                walk_unknown(item, &format!("{prefix}[]"), known, out);
            }
        }
        _ => {}
    }
}

impl<'t> Reader<'t> {
    /// Parses `text` and applies the environment overrides; also lists the keys for which
    /// `known` is false (those mmrelay does not use).
    pub(super) fn new(
        text: &'t str,
        env: &dyn Fn(&str) -> Option<String>,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<(Reader<'t>, Vec<String>), Vec<Problem>> {
        let root: Value = if text.trim().is_empty() {
            Value::Mapping(Mapping::new())
        } else {
            serde_yaml_ng::from_str(text).map_err(|e| {
                vec![Problem {
                    line: e.location().map(|l| l.line()),
                    key: "(syntax)".into(),
                    message: format!("not valid YAML: {e}"),
                }]
            })?
        };
        if !root.is_mapping() {
            return Err(vec![Problem {
                line: Some(1),
                key: "(top)".into(),
                message: "the config must be a mapping of keys (matrix:, meshtastic:, ...)".into(),
            }]);
        }
        let mut ignored = Vec::new();
        walk_unknown(&root, "", known, &mut ignored);
        let mut r = Reader {
            text,
            root,
            problems: Vec::new(),
            from_env: Vec::new(),
        };
        for (var, key) in ENV_OVERRIDES {
            if let Some(v) = env(var).filter(|v| !v.is_empty()) {
                set(&mut r.root, key, Value::String(v));
                r.from_env.push((var, key));
            }
        }
        Ok((r, ignored))
    }

    /// `value` if nothing was wrong, else the problems.
    pub(super) fn done<T>(self, value: T) -> Result<T, Vec<Problem>> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(self.problems)
        }
    }
}
