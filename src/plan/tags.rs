//! A planned device's `tags = {...}` (SPEC §3, §13): the read-only twin
//! tags the hub shows beside `{site, name, model}` and routing reads as
//! `$twin.tags.*`. A table of scalars; the three names ztpd sets itself are
//! refused rather than silently shadowed.

use serde_json::{Map, Value};
use toml::de::DeValue;

use super::raw::to_json;
use super::reader::{type_name, Ctx, Val};

/// Tags ztpd gives every planned device from the plan itself.
pub const FROM_PLAN: [&str; 3] = ["site", "name", "model"];

/// Read `<path>.tags`; every problem is reported, the good tags kept.
pub fn read(ctx: &mut Ctx, path: &str, v: Option<&Val>) -> Map<String, Value> {
    let mut tags = Map::new();
    let Some(v) = v else {
        return tags;
    };
    let DeValue::Table(t) = v.get_ref() else {
        ctx.error(
            "plan::wrong_type",
            v.span(),
            format!(
                "`{path}.tags` must be a table, found {}",
                type_name(v.get_ref())
            ),
        )
        .label("expected a table")
        .help("write tags = { rack = \"r12\", row = \"b\" }");
        return tags;
    };
    for (key, value) in t.iter() {
        let (key, key_span) = (key.get_ref(), key.span());
        if FROM_PLAN.contains(&key.as_ref()) {
            ctx.error(
                "plan::reserved_tag",
                key_span,
                format!("`{path}.tags.{key}`: ztpd sets this tag from the plan"),
            )
            .label("set by ztpd")
            .help("the tags site, name and model come from the plan: rename this one");
            continue;
        }
        match value.get_ref() {
            DeValue::Table(_) | DeValue::Array(_) => {
                ctx.error(
                    "plan::wrong_type",
                    value.span(),
                    format!(
                        "`{path}.tags.{key}` must be a string, a number or a boolean, found {}",
                        type_name(value.get_ref())
                    ),
                )
                .label("expected a single value")
                .help(format!("write {key} = \"...\""));
            }
            scalar => {
                tags.insert(key.to_string(), to_json(scalar));
            }
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::settings::{Resolved, Settings};

    const PLAN: &str = r#"
[site]
name = "lab"
server_ip = "10.10.0.1"
[models.sensor]
vendor = "generic"
match = "esp32-gps"
[[devices]]
name = "s1"
model = "sensor"
serial = "s1-serial"
tags = { rack = "r12", row = 3, cold = true }
[[devices]]
name = "s2"
model = "sensor"
serial = "s2-serial"
tags = "r12"
[[devices]]
name = "s3"
model = "sensor"
serial = "s3-serial"
tags = { rack = ["r1"], name = "x", floor = 2 }
"#;

    fn load(text: &str) -> crate::plan::Loaded {
        let dir = tempfile::tempdir().unwrap();
        let resolved = Resolved {
            root: dir.path().to_path_buf(),
            file: None,
            settings: Settings::default(),
        };
        crate::plan::load_texts(&resolved, [(Path::new("plans/lab.toml"), text)])
    }

    #[test]
    fn a_table_of_scalars_is_read_and_every_bad_tag_reported() {
        let loaded = load(PLAN);
        let d = &loaded.diagnostics;
        let found: Vec<(&str, &str)> = d
            .errors
            .iter()
            .map(|e| (e.code.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "ztpd::plan::wrong_type",
                    "`devices[1].tags` must be a table, found a string"
                ),
                (
                    "ztpd::plan::reserved_tag",
                    "`devices[2].tags.name`: ztpd sets this tag from the plan"
                ),
                (
                    "ztpd::plan::wrong_type",
                    "`devices[2].tags.rack` must be a string, a number or a boolean, found an array"
                ),
            ],
            "{d:?}"
        );
        let good = load(&PLAN.replace("tags = \"r12\"", "").replace(
            "tags = { rack = [\"r1\"], name = \"x\", floor = 2 }",
            "tags = { floor = 2 }",
        ));
        assert!(!good.diagnostics.has_errors(), "{:?}", good.diagnostics);
        let model = good.model;
        let tags = |n: &str| model.device(n).unwrap().1.tags.clone();
        assert_eq!(
            serde_json::Value::Object(tags("s1")),
            serde_json::json!({"rack": "r12", "row": 3, "cold": true})
        );
        assert!(tags("s2").is_empty());
        assert_eq!(
            serde_json::Value::Object(tags("s3")),
            serde_json::json!({"floor": 2})
        );
    }
}
