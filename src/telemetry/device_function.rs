//! Device functions (`templates/device_function/<name>.toml`, SPEC §9): what a
//! simulated or real device measures and how often it sends it, as data.
//!
//! The file is read like a plan: every problem is reported at once with its
//! span, through the plan's reader and diagnostics. The same reader is used
//! for the JSON object a credential carries (it is converted back to TOML
//! text first), so there is exactly one definition of a valid function.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use toml::de::DeValue;

use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::reader::{type_name, Ctx, Sp, Table};

/// A reading's fields, in the order a message lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    DeviceId,
    DeviceName,
    Latitude,
    Longitude,
    Battery,
    SignalDate,
}

impl Field {
    pub const ALL: [Field; 6] = [
        Field::DeviceId,
        Field::DeviceName,
        Field::Latitude,
        Field::Longitude,
        Field::Battery,
        Field::SignalDate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::DeviceId => "device_id",
            Field::DeviceName => "device_name",
            Field::Latitude => "device_latitude",
            Field::Longitude => "device_longitude",
            Field::Battery => "device_battery_level",
            Field::SignalDate => "signal_date",
        }
    }

    pub fn from_name(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub latitude: (f64, f64),
    pub longitude: (f64, f64),
    /// Decimals kept in each coordinate.
    pub precision: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Battery {
    pub initial: f64,
    /// Every this many messages the level drops.
    pub drain_every: u32,
    /// The drop is uniform in `[0, drain_max]`, rounded to 2 decimals.
    pub drain_max: f64,
}

/// A validated device function.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceFunction {
    pub name: String,
    pub interval: Duration,
    pub fields: Vec<Field>,
    pub location: Location,
    pub battery: Battery,
    /// Readings per message; above 1 a message is a JSON array.
    pub batch: u32,
}

/// Most readings one message may carry: a reading is at most ~300 bytes of
/// JSON, so 500 stays well under IoT Hub's 256 KB message limit.
pub const MAX_BATCH: i64 = 500;
/// More decimals than this is below a float's resolution for coordinates.
pub const MAX_PRECISION: i64 = 10;

const TOP_KEYS: [&str; 5] = ["interval", "fields", "location", "battery", "batch"];

impl Default for DeviceFunction {
    /// The prototype's behaviour (SPEC §9).
    fn default() -> Self {
        DeviceFunction {
            name: "default".into(),
            interval: Duration::from_secs(1),
            fields: Field::ALL.to_vec(),
            location: Location {
                latitude: (-37.36, -32.04),
                longitude: (-68.22, -61.69),
                precision: 6,
            },
            battery: Battery {
                initial: 1.0,
                drain_every: 10,
                drain_max: 0.03,
            },
            batch: 1,
        }
    }
}

/// Read and check one device-function file; `None` when it has errors (all
/// of them pushed to `diags`). Missing keys take the prototype's values.
pub fn read(file: &Arc<SourceFile>, name: &str, diags: &mut Diagnostics) -> Option<DeviceFunction> {
    let before = diags.errors.len();
    let doc = crate::plan::reader::parse_toml(
        file,
        "device_function::toml_syntax",
        "fix the TOML syntax; see SPEC §9 for a device function's keys",
        diags,
    );
    let mut ctx = Ctx { file, diags };
    let mut top = Table::from_detable(doc.get_ref(), doc.span(), "");
    let mut f = DeviceFunction {
        name: name.to_string(),
        ..DeviceFunction::default()
    };
    if let Some(v) = top.str(&mut ctx, "interval") {
        match crate::duration::parse(&v.v) {
            Ok(d) if d.is_zero() => {
                ctx.error(
                    "device_function::bad_interval",
                    v.span,
                    "`interval` must be longer than zero",
                )
                .label("zero")
                .help("write e.g. interval = \"1s\" or \"100ms\"");
            }
            Ok(d) => f.interval = d,
            Err(e) => {
                ctx.error("device_function::bad_interval", v.span, e)
                    .label("not a duration")
                    .help("write e.g. interval = \"1s\" or \"100ms\"");
            }
        }
    }
    if let Some(list) = top.str_list(&mut ctx, "fields") {
        f.fields = read_fields(&mut ctx, list, top.key_span("fields").unwrap_or(0..0));
    }
    if let Some(mut t) = top.table(&mut ctx, "location") {
        read_location(&mut ctx, &mut t, &mut f.location);
        t.finish(&mut ctx, &["latitude", "longitude", "precision"]);
    }
    if let Some(mut t) = top.table(&mut ctx, "battery") {
        read_battery(&mut ctx, &mut t, &mut f.battery);
        t.finish(&mut ctx, &["initial", "drain_every", "drain_max"]);
    }
    if let Some(b) = top.int(&mut ctx, "batch") {
        if (1..=MAX_BATCH).contains(&b.v) {
            f.batch = b.v as u32;
        } else {
            ctx.error(
                "device_function::bad_batch",
                b.span,
                format!(
                    "`batch` is {}; expected 1 to {MAX_BATCH} readings per message",
                    b.v
                ),
            )
            .label("out of range")
            .help(format!(
                "a message must stay under 256 KB; use at most {MAX_BATCH}"
            ));
        }
    }
    top.finish(&mut ctx, &TOP_KEYS);
    (diags.errors.len() == before).then_some(f)
}

fn read_fields(
    ctx: &mut Ctx,
    list: Vec<Sp<String>>,
    key_span: std::ops::Range<usize>,
) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let names: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
    for item in list {
        match Field::from_name(&item.v) {
            Some(field) if out.contains(&field) => {
                ctx.error(
                    "device_function::duplicate_field",
                    item.span,
                    format!("field `{}` is listed twice", item.v),
                )
                .label("again here")
                .help("list each field once");
            }
            Some(field) => out.push(field),
            None => {
                let mut help = format!("valid fields: {}", names.join(", "));
                if let Some(s) = crate::plan::reader::closest(&item.v, &names) {
                    help = format!("did you mean `{s}`? {help}");
                }
                ctx.error(
                    "device_function::unknown_field",
                    item.span,
                    format!("unknown field `{}`", item.v),
                )
                .label("not a telemetry field")
                .help(help);
            }
        }
    }
    for needed in [Field::DeviceId, Field::SignalDate] {
        if !out.contains(&needed) {
            ctx.error(
                "device_function::missing_field",
                key_span.clone(),
                format!("`fields` must include `{}`", needed.name()),
            )
            .label("in this list")
            .help("the bridge identifies a reading by device_id and signal_date");
        }
    }
    out.sort_by_key(|f| Field::ALL.iter().position(|x| x == f));
    out
}

/// A number (integer or float) with its span.
fn number(ctx: &mut Ctx, t: &mut Table, key: &str) -> Option<Sp<f64>> {
    let v = t.take(key)?;
    match as_f64(v.get_ref()) {
        Some(n) => Some(Sp::new(n, v.span())),
        None => {
            ctx.error(
                "plan::wrong_type",
                v.span(),
                format!(
                    "`{}.{key}` must be a number, found {}",
                    t.path,
                    type_name(v.get_ref())
                ),
            )
            .label("expected a number");
            None
        }
    }
}

fn as_f64(v: &DeValue) -> Option<f64> {
    match v {
        DeValue::Float(f) => f.as_str().replace('_', "").parse().ok(),
        DeValue::Integer(i) => i64::from_str_radix(&i.as_str().replace('_', ""), i.radix())
            .ok()
            .map(|n| n as f64),
        _ => None,
    }
}

/// `[min, max]` inside `[-limit, limit]`.
fn range(ctx: &mut Ctx, t: &mut Table, key: &str, limit: f64) -> Option<(f64, f64)> {
    let v = t.take(key)?;
    let help = format!("write {key} = [min, max] with -{limit} <= min <= max <= {limit}");
    let pair = match v.get_ref() {
        DeValue::Array(a) if a.len() == 2 => as_f64(a[0].get_ref()).zip(as_f64(a[1].get_ref())),
        _ => None,
    };
    match pair {
        Some((lo, hi))
            if lo.is_finite() && hi.is_finite() && -limit <= lo && lo <= hi && hi <= limit =>
        {
            Some((lo, hi))
        }
        Some(_) => {
            ctx.error(
                "device_function::bad_range",
                v.span(),
                format!(
                    "`{}.{key}` must lie within -{limit}..{limit} with min <= max",
                    t.path
                ),
            )
            .label("out of range")
            .help(help);
            None
        }
        None => {
            ctx.error(
                "device_function::bad_range",
                v.span(),
                format!("`{}.{key}` must be an array of two numbers", t.path),
            )
            .label("expected [min, max]")
            .help(help);
            None
        }
    }
}

fn read_location(ctx: &mut Ctx, t: &mut Table, loc: &mut Location) {
    if let Some(r) = range(ctx, t, "latitude", 90.0) {
        loc.latitude = r;
    }
    if let Some(r) = range(ctx, t, "longitude", 180.0) {
        loc.longitude = r;
    }
    if let Some(p) = t.int(ctx, "precision") {
        if (0..=MAX_PRECISION).contains(&p.v) {
            loc.precision = p.v as u32;
        } else {
            ctx.error(
                "device_function::bad_precision",
                p.span,
                format!(
                    "`location.precision` is {}; expected 0 to {MAX_PRECISION} decimals",
                    p.v
                ),
            )
            .label("out of range")
            .help("the prototype uses 6 decimals (about 0.1 m)");
        }
    }
}

fn read_battery(ctx: &mut Ctx, t: &mut Table, b: &mut Battery) {
    for (key, slot) in [("initial", &mut b.initial), ("drain_max", &mut b.drain_max)] {
        if let Some(v) = number(ctx, t, key) {
            if (0.0..=1.0).contains(&v.v) {
                *slot = v.v;
            } else {
                ctx.error(
                    "device_function::bad_battery",
                    v.span,
                    format!(
                        "`battery.{key}` is {}; expected a level between 0 and 1",
                        v.v
                    ),
                )
                .label("out of range")
                .help("battery levels are fractions: 1.0 is full, 0.0 is empty");
            }
        }
    }
    if let Some(v) = t.int(ctx, "drain_every") {
        if (1..=i64::from(u32::MAX)).contains(&v.v) {
            b.drain_every = v.v as u32;
        } else {
            ctx.error(
                "device_function::bad_battery",
                v.span,
                format!(
                    "`battery.drain_every` is {}; expected a positive number of messages",
                    v.v
                ),
            )
            .label("out of range")
            .help("the prototype drains every 10 messages");
        }
    }
}

/// Read a device-function file from disk (diagnostics point into it).
pub fn read_file(path: &Path, name: &str, diags: &mut Diagnostics) -> Option<DeviceFunction> {
    match crate::limits::read_capped_string(
        path,
        crate::limits::DEVICE_FUNCTION_BYTES,
        "device function",
    ) {
        Ok(text) => read(&SourceFile::new(path, text), name, diags),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    "device_function::unreadable",
                    format!("cannot read device function {}: {e}", path.display()),
                )
                .help("create it under templates/device_function/"),
            );
            None
        }
    }
}

/// The device function a credential carries (a JSON object with `name`).
pub fn from_json(v: &serde_json::Value) -> Result<DeviceFunction, String> {
    let serde_json::Value::Object(obj) = v else {
        return Err("`device_function` must be a JSON object".into());
    };
    let name = obj
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or("credential")
        .to_string();
    let mut rest = obj.clone();
    rest.remove("name");
    let text = toml::to_string(&rest)
        .map_err(|e| format!("`device_function` cannot be read as a device function: {e}"))?;
    let file = SourceFile::new(Path::new(&format!("device_function `{name}`")), text);
    let mut diags = Diagnostics::default();
    read(&file, &name, &mut diags).ok_or_else(|| {
        let msgs: Vec<String> = diags.errors.iter().map(|d| d.message.clone()).collect();
        format!("invalid device function `{name}`: {}", msgs.join("; "))
    })
}

#[cfg(test)]
#[path = "device_function_tests.rs"]
mod tests;
