//! Device functions as credential data: `templates/device_function/<name>.toml`
//! converted to a JSON object carrying its `name` (SPEC §6, §9). Data only;
//! nothing here is ever executed.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The prototype's behaviour, used for `default` when the repository has no
/// `templates/device_function/default.toml` yet.
pub const BUILTIN_DEFAULT: &str = r#"interval = "1s"
fields = ["device_id", "device_name", "device_latitude", "device_longitude", "device_battery_level", "signal_date"]

[location]
latitude = [-37.36, -32.04]
longitude = [-68.22, -61.69]
precision = 6

[battery]
initial = 1.0
drain_every = 10
drain_max = 0.03
"#;

#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("device function `{name}`: expected [A-Za-z0-9._-]+ (it names a file)")]
    BadName { name: String },
    #[error("device function `{name}` not found: expected {path}")]
    NotFound { name: String, path: PathBuf },
    #[error("cannot read device function {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("device function {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
}

/// Path of device function `name` under the templates directory.
pub fn path_of(templates_dir: &Path, name: &str) -> PathBuf {
    templates_dir
        .join("device_function")
        .join(format!("{name}.toml"))
}

/// Load device function `name` as the JSON object stored in credentials.
pub fn load(templates_dir: &Path, name: &str) -> Result<Value, FunctionError> {
    if super::validate_device_id(name).is_err() {
        return Err(FunctionError::BadName { name: name.into() });
    }
    let path = path_of(templates_dir, name);
    let text = match crate::limits::read_capped_string(
        &path,
        crate::limits::DEVICE_FUNCTION_BYTES,
        "device function",
    ) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && name == "default" => {
            BUILTIN_DEFAULT.to_string()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FunctionError::NotFound {
                name: name.into(),
                path,
            })
        }
        Err(source) => return Err(FunctionError::Read { path, source }),
    };
    to_json(name, &text).map_err(|message| FunctionError::Parse { path, message })
}

/// Convert device-function TOML to a JSON object with `name` set.
pub fn to_json(name: &str, text: &str) -> Result<Value, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.message().to_string())?;
    let mut obj = Map::new();
    obj.insert("name".into(), Value::String(name.into()));
    for (k, v) in table {
        if k != "name" {
            obj.insert(k, toml_to_json(v));
        }
    }
    Ok(Value::Object(obj))
}

/// TOML dates become strings (serde would give toml's private datetime map).
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_default_converts_with_its_name() {
        let v = to_json("default", BUILTIN_DEFAULT).unwrap();
        assert_eq!(v["name"], "default");
        assert_eq!(v["interval"], "1s");
        assert_eq!(v["location"]["latitude"][0], -37.36);
        assert_eq!(v["battery"]["drain_every"], 10);
        assert_eq!(v["fields"].as_array().unwrap().len(), 6);
    }

    #[test]
    fn files_are_read_and_missing_ones_named() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("device_function")).unwrap();
        std::fs::write(
            d.path().join("device_function/fast.toml"),
            "interval = \"100ms\"\nsince = 2024-01-02T03:04:05Z\n",
        )
        .unwrap();
        let v = load(d.path(), "fast").unwrap();
        assert_eq!(v["name"], "fast");
        assert_eq!(v["since"], "2024-01-02T03:04:05Z");
        assert_eq!(load(d.path(), "default").unwrap()["interval"], "1s");
        let e = load(d.path(), "nope").unwrap_err().to_string();
        assert!(e.contains("nope.toml"), "{e}");
        assert!(matches!(
            load(d.path(), "../x"),
            Err(FunctionError::BadName { .. })
        ));
    }
}
