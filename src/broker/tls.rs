//! TLS for `[broker] tls_listen` (SPEC §9).
//!
//! With `tls_cert`/`tls_key` set, those PEM files are served. Otherwise a
//! local CA is kept in `state/`: `hub-ca.pem` (public, 0644, also served as
//! `bootstrap/hub-ca.pem`) and `hub-ca.key` (0600). The server certificate
//! it signs is made in memory at every start, for the hub hostname,
//! `localhost` and every site's `server_ip`, and made again when a reload
//! changes those names. The CA's subject and key identifier are fixed here,
//! so a certificate issued after a restart chains to the stored CA.

use std::path::Path;
use std::sync::{Arc, RwLock};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::settings::Resolved;
use crate::snapshot::Snapshot;

/// The local CA's certificate, under `paths.state`; public.
pub const CA_CERT_FILE: &str = "hub-ca.pem";
/// The local CA's private key, under `paths.state`; 0600.
pub const CA_KEY_FILE: &str = "hub-ca.key";
/// Largest certificate or key file read.
const MAX_PEM: u64 = 1024 * 1024;

/// The names the hub's certificate must carry for this snapshot.
pub fn names(snap: &Snapshot, hub_hostname: Option<&str>) -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if let Some(h) = hub_hostname {
        names.push(h.to_ascii_lowercase());
    }
    for site in &snap.model.sites {
        names.extend(site.server_ip.map(|ip| ip.to_string()));
        names.extend(site.server_ip6.map(|ip| ip.to_string()));
    }
    names.push("127.0.0.1".into());
    names.sort();
    names.dedup();
    names
}

/// The certificate the TLS listener presents: fixed files, or the local
/// CA's, swapped when the names change.
pub struct HubCert {
    ca: Option<LocalCa>,
    current: RwLock<(Vec<String>, Arc<CertifiedKey>)>,
}

struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for HubCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HubCert(<key redacted>)")
    }
}

impl HubCert {
    /// From the settings: the configured files, or the local CA in
    /// `state/` (created when absent) issuing a certificate for `names`.
    pub fn load(resolved: &Resolved, names: Vec<String>) -> anyhow::Result<HubCert> {
        let b = &resolved.settings.broker;
        match (&b.tls_cert, &b.tls_key) {
            (Some(cert), Some(key)) => {
                let (cert, key) = (resolved.resolve(cert), resolved.resolve(key));
                let ck = from_files(&cert, &key)?;
                Ok(HubCert {
                    ca: None,
                    current: RwLock::new((names, Arc::new(ck))),
                })
            }
            (None, None) => {
                let ca = LocalCa::open(&resolved.state_dir())?;
                let ck = ca.issue(&names)?;
                Ok(HubCert {
                    ca: Some(ca),
                    current: RwLock::new((names, Arc::new(ck))),
                })
            }
            _ => anyhow::bail!(
                "[broker] tls_cert and tls_key go together: set both (PEM files), or neither for a local CA in paths.state"
            ),
        }
    }

    /// Issue a new certificate when the names changed (a reload added a
    /// site or changed the hub hostname). Fixed files are never replaced.
    pub fn update_names(&self, names: Vec<String>) {
        let Some(ca) = &self.ca else { return };
        if self.current.read().map(|c| c.0 == names).unwrap_or(true) {
            return;
        }
        match ca.issue(&names) {
            Ok(ck) => {
                tracing::info!(names = %names.join(","), "hub TLS certificate issued for new names");
                if let Ok(mut c) = self.current.write() {
                    *c = (names, Arc::new(ck));
                }
            }
            Err(e) => {
                tracing::warn!("hub TLS: cannot issue a certificate for the new names: {e:#}")
            }
        }
    }

    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the default protocol versions are supported")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Arc::new(config)
    }
}

impl ResolvesServerCert for HubCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.1.clone())
    }
}

impl LocalCa {
    fn params() -> CertificateParams {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ztpd local hub CA");
        dn.push(DnType::OrganizationName, "ztpd");
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(3650);
        p
    }

    /// Read `hub-ca.pem` and `hub-ca.key`, or make both.
    fn open(state: &Path) -> anyhow::Result<LocalCa> {
        crate::secret_file::private_dir(state)
            .with_context(|| format!("cannot create paths.state = {}", state.display()))?;
        let (cert_path, key_path) = (state.join(CA_CERT_FILE), state.join(CA_KEY_FILE));
        if key_path.exists() && cert_path.exists() {
            let pem = read_capped(&key_path)?;
            let key = KeyPair::from_pem(&pem).map_err(|e| {
                anyhow::anyhow!("{}: not a PEM private key: {e}", key_path.display())
            })?;
            return Ok(LocalCa {
                issuer: Issuer::new(Self::params(), key),
            });
        }
        let key = KeyPair::generate().context("cannot generate the hub CA key")?;
        let cert = Self::params()
            .self_signed(&key)
            .context("cannot make the hub CA certificate")?;
        crate::secret_file::write(&key_path, key.serialize_pem().as_bytes())
            .with_context(|| format!("cannot write {}", key_path.display()))?;
        crate::secret_file::write_public(&cert_path, cert.pem().as_bytes())
            .with_context(|| format!("cannot write {}", cert_path.display()))?;
        tracing::info!(ca = %cert_path.display(), "created the local hub CA");
        Ok(LocalCa {
            issuer: Issuer::new(Self::params(), key),
        })
    }

    fn issue(&self, names: &[String]) -> anyhow::Result<CertifiedKey> {
        let mut p = CertificateParams::new(names.to_vec()).context("hub certificate names")?;
        p.distinguished_name = DistinguishedName::new();
        p.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        p.use_authority_key_identifier_extension = true;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        p.not_before = now - time::Duration::days(1);
        p.not_after = now + time::Duration::days(365);
        let key = KeyPair::generate().context("cannot generate the hub TLS key")?;
        let cert = p
            .signed_by(&key, &self.issuer)
            .context("cannot sign the hub certificate")?;
        let der = PrivateKeyDer::try_from(key.serialize_der())
            .map_err(|e| anyhow::anyhow!("hub TLS key: {e}"))?;
        certified(vec![cert.der().clone()], der)
    }
}

fn certified(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<CertifiedKey> {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| anyhow::anyhow!("hub TLS key: {e}"))
}

fn from_files(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let text = read_capped(cert)?;
    let chain = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("broker.tls_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!(
            "broker.tls_cert {}: no PEM certificate in it",
            cert.display()
        );
    }
    let text = read_capped(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("broker.tls_key {}: {e}", key.display()))?;
    certified(chain, key_der).with_context(|| {
        format!(
            "broker.tls_cert {} and tls_key {}",
            cert.display(),
            key.display()
        )
    })
}

fn read_capped(path: &Path) -> anyhow::Result<String> {
    crate::limits::read_capped_string(path, MAX_PEM, "PEM certificate or key")
        .with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::danger::ServerCertVerifier;

    #[test]
    fn a_certificate_issued_after_a_restart_chains_to_the_stored_ca() {
        let d = tempfile::tempdir().unwrap();
        let first = LocalCa::open(d.path()).unwrap();
        let ca_pem = std::fs::read_to_string(d.path().join(CA_CERT_FILE)).unwrap();
        drop(first);
        let again = LocalCa::open(d.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join(CA_CERT_FILE)).unwrap(),
            ca_pem
        );
        let ck = again
            .issue(&["localhost".into(), "10.0.0.1".into()])
            .unwrap();

        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        for name in ["localhost", "10.0.0.1"] {
            let server = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(
                    &ck.cert[0],
                    &[],
                    &server,
                    &[],
                    rustls::pki_types::UnixTime::now(),
                )
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let other = rustls::pki_types::ServerName::try_from("example.com").unwrap();
        assert!(verifier
            .verify_server_cert(
                &ck.cert[0],
                &[],
                &other,
                &[],
                rustls::pki_types::UnixTime::now()
            )
            .is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            std::fs::metadata(d.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(CA_CERT_FILE), 0o644);
        assert_eq!(mode(CA_KEY_FILE), 0o600);
    }
}
