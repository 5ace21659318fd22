//! Raw plans -> validated [`Model`]. Each check is a small function pushing
//! its own diagnostic code; compilation carries on after a problem so that
//! every problem of every plan is reported in one run.
//!
//! One file per job: [`site`] (site, DHCP, pool), [`models`], [`devices`]
//! (uniqueness, IP placement), [`links`], [`groups`] (rollout policy) and
//! [`references`], the only part that reads the disk. [`values`] holds the
//! scalar checks several of them share; the identifier rule itself is
//! [`crate::identifier`].

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use super::diagnostic::{Diagnostics, SourceFile};
use super::model::Model;
use super::raw::RawPlan;

mod devices;
mod dhcp6;
mod groups;
mod identity;
mod links;
mod models;
mod references;
mod site;
mod values;

pub use groups::{glob_match, glob_problem, GLOB_MAX_BYTES};
pub use references::GENERATED_PATHS;

/// Where referenced templates and files live (from settings).
#[derive(Debug, Clone)]
pub struct Dirs {
    pub templates: PathBuf,
    pub files: PathBuf,
}

impl Dirs {
    pub fn device_function(&self, name: &str) -> PathBuf {
        self.templates
            .join("device_function")
            .join(format!("{name}.toml"))
    }
}

/// First place a unique value was seen: file, span, and the device (if any)
/// that used it.
type Seen = HashMap<String, (Arc<SourceFile>, Range<usize>, String)>;

pub fn compile<P: std::borrow::Borrow<RawPlan>>(
    plans: &[P],
    dirs: &Dirs,
    diags: &mut Diagnostics,
) -> Model {
    let mut keys = devices::DeviceKeys::new();
    let mut functions = references::DeviceFunctions::default();
    let mut site_names = Seen::new();
    let mut model = Model::default();
    for raw in plans {
        let raw: &RawPlan = raw.borrow();
        let Some(file) = raw.file.clone() else {
            continue;
        };
        let Some(mut site) = site::compile_site(diags, &file, raw, &mut site_names) else {
            continue;
        };
        site.models = models::compile_models(diags, &file, raw, dirs);
        site.devices = raw
            .devices
            .iter()
            .filter_map(|d| {
                devices::compile_device(diags, &file, d, &site, dirs, &mut keys, &mut functions)
                    .map(Arc::new)
            })
            .collect();
        site.links = Arc::new(links::compile_links(diags, &file, raw, &site));
        identity::check_identities(diags, &site);
        site.groups = groups::compile_groups(diags, &file, raw, &site);
        models::warn_unused_models(diags, &file, raw, &site);
        model.sites.push(site);
    }
    references::check_shadowed_files(diags, &dirs.files);
    model.device_functions = functions.into_valid();
    model
}
