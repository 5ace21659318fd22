//! `ztpd device simulate --switch ... --agent`: after its ZTP flow a
//! simulated switch stays running, long-polls its actions and carries them
//! out (SPEC §8): an `upgrade` downloads the image, reports `downloading`,
//! `installing`, `rebooting`, says hello again with the new version and its
//! neighbours, and reports `deployed` with `version`; a `reconfigure`
//! re-fetches the config and reports `deployed`. Every report names its
//! action. While ztpd is unreachable (a restart) the agent keeps retrying.
//!
//! Faults: `upgrade-fails` reports `failed`; `upgrade-silent` never reports
//! after rebooting; `upgrade-miscabled` comes back with a port moved.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use super::sim_device::{rebase, Fault, Switch, SIM_VERSION};
use crate::http_client;

/// Long-poll length; below the client's timeout.
const WAIT_SECS: u64 = 20;
const POLL_TIMEOUT: Duration = Duration::from_secs(WAIT_SECS + 10);
const STEP_TIMEOUT: Duration = Duration::from_secs(30);
/// Retry delay while ztpd is unreachable or busy.
const RETRY: Duration = Duration::from_millis(200);
/// Simulated install time: well under a second.
const INSTALL_TIME: Duration = Duration::from_millis(20);

/// One request, retried until ztpd answers with anything but 503.
async fn call(
    method: &str,
    url: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> http_client::Response {
    let text = body.map(|b| b.to_string());
    loop {
        let r = http_client::request(
            method,
            url,
            &[],
            text.as_deref().map(str::as_bytes),
            timeout,
        )
        .await;
        match r {
            Ok(r) if r.status != 503 => return r,
            Ok(_) => {}
            Err(e) => tracing::debug!("{method} {url}: {e:#}; retrying"),
        }
        tokio::time::sleep(RETRY).await;
    }
}

struct Agent<'a> {
    server: &'a str,
    sw: &'a Switch,
    version: String,
    /// Actions carried out (silent ones are never acknowledged, so the
    /// server keeps serving them).
    done: HashSet<String>,
}

impl Agent<'_> {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.trim_end_matches('/'))
    }

    async fn report(&self, stage: &str, action: &str, message: &str) -> u16 {
        let mut body = json!({"stage": stage, "action": action, "message": message});
        if stage == "deployed" || stage == "failed" {
            body["version"] = self.version.clone().into();
        }
        let url = self.url(&format!("/ztp/v1/devices/{}/progress", self.sw.serial));
        call("POST", &url, Some(&body), STEP_TIMEOUT).await.status
    }

    async fn hello(&self, neighbors: &[Value]) -> u16 {
        let body = json!({
            "serial": self.sw.serial, "mac": self.sw.mac, "model": self.sw.model,
            "version": self.version, "neighbors": neighbors,
        });
        call(
            "POST",
            &self.url("/ztp/v1/hello"),
            Some(&body),
            STEP_TIMEOUT,
        )
        .await
        .status
    }

    async fn fetch(&self, url: &str) -> Result<usize, String> {
        let r = call("GET", &rebase(url, self.server), None, STEP_TIMEOUT).await;
        if r.status == 200 {
            Ok(r.body.len())
        } else {
            Err(format!("GET {url}: HTTP {}", r.status))
        }
    }

    fn has(&self, f: Fault) -> bool {
        self.sw.faults.contains(&f)
    }

    async fn upgrade(&mut self, id: &str, a: &Value) {
        self.report("downloading", id, "fetching the image").await;
        let mut got = 0;
        for key in ["image_url", "patch_url"] {
            if let Some(u) = a[key].as_str() {
                match self.fetch(u).await {
                    Ok(n) => got += n,
                    Err(e) => {
                        self.report("failed", id, &e).await;
                        return;
                    }
                }
            }
        }
        self.report("installing", id, &format!("{got} bytes fetched"))
            .await;
        tokio::time::sleep(INSTALL_TIME).await;
        if self.has(Fault::UpgradeFails) {
            self.report("failed", id, "simulated install failure (upgrade-fails)")
                .await;
            return;
        }
        self.report("rebooting", id, "reloading").await;
        if self.has(Fault::UpgradeSilent) {
            return;
        }
        if let Some(v) = a["image_version"].as_str() {
            self.version = v.to_string();
        }
        let neighbors = match (&self.sw.miscabled, self.has(Fault::UpgradeMiscabled)) {
            (Some(moved), true) => moved.clone(),
            _ => self.sw.neighbors.clone(),
        };
        self.hello(&neighbors).await;
        self.report("deployed", id, "simulated upgrade done").await;
    }

    async fn reconfigure(&mut self, id: &str, a: &Value) {
        self.report("downloading", id, "fetching the config").await;
        match a["config_url"].as_str() {
            Some(u) => match self.fetch(u).await {
                Ok(_) => {
                    self.report("deployed", id, "config applied").await;
                }
                Err(e) => {
                    self.report("failed", id, &e).await;
                }
            },
            None => {
                self.report("failed", id, "reconfigure without config_url")
                    .await;
            }
        }
    }
}

/// Carry out actions until the process ends.
pub async fn run(server: &str, sw: &Switch) {
    let mut agent = Agent {
        server,
        sw,
        version: SIM_VERSION.to_string(),
        done: HashSet::new(),
    };
    let poll = agent.url(&format!(
        "/ztp/v1/devices/{}/actions?wait={WAIT_SECS}",
        sw.serial
    ));
    loop {
        let r = call("GET", &poll, None, POLL_TIMEOUT).await;
        if r.status != 200 {
            tracing::warn!(switch = %sw.name, "actions: HTTP {}", r.status);
            tokio::time::sleep(RETRY * 5).await;
            continue;
        }
        let actions = r.json()["actions"].as_array().cloned().unwrap_or_default();
        let fresh: Vec<Value> = actions
            .into_iter()
            .filter(|a| a["id"].as_str().is_some_and(|id| !agent.done.contains(id)))
            .collect();
        if fresh.is_empty() {
            // Only actions already carried out (a silent agent's): do not spin.
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        for a in fresh {
            let id = a["id"].as_str().unwrap_or_default().to_string();
            agent.done.insert(id.clone());
            match a["type"].as_str() {
                Some("upgrade") => agent.upgrade(&id, &a).await,
                Some("reconfigure") => agent.reconfigure(&id, &a).await,
                // refresh_credential: switches have no credential.
                _ => tracing::debug!(switch = %sw.name, "action {id} not simulated"),
            }
        }
    }
}
