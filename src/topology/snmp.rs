//! Reading a deployed device's LLDP neighbours over SNMP v2c or v3 (SPEC §12):
//! LLDP-MIB (IEEE 802.1AB) `lldpRemTable` 1.0.8802.1.1.2.1.4.1 and
//! `lldpLocPortTable` 1.0.8802.1.1.2.1.3.7, walked with GETBULK through the
//! `snmp2` crate. The result is the neighbour list a hello would carry.
//!
//! An agent that does not answer is an error, never "no neighbours": a
//! silent agent must not make every planned link look missing.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use snmp2::v3::{Auth, AuthProtocol, Cipher, Security};
use snmp2::{AsyncSession, Oid, Value};

use super::Neighbor;
use crate::plan::model::{SnmpAccess, SnmpAuth};

/// `lldpLocPortId`, indexed by local port number.
const LOC_PORT_ID: &[u64] = &[1, 0, 8802, 1, 1, 2, 1, 3, 7, 1, 3];
/// `lldpRemEntry`, indexed by TimeMark.LocalPortNum.Index.
const REM_ENTRY: &[u64] = &[1, 0, 8802, 1, 1, 2, 1, 4, 1, 1];
const REM_CHASSIS_SUBTYPE: u64 = 4;
const REM_CHASSIS_ID: u64 = 5;
const REM_PORT_SUBTYPE: u64 = 6;
const REM_PORT_ID: u64 = 7;
const REM_PORT_DESC: u64 = 8;
const REM_SYS_NAME: u64 = 9;
/// Rows per GETBULK: a 48-port switch's neighbour table in a few requests,
/// and a reply that stays well under a UDP datagram.
const BULK: u32 = 24;
/// Requests per walk at most: a broken agent that never ends its table
/// (or loops) cannot keep a poll busy.
const MAX_REQUESTS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("SNMP: {0}")]
    Snmp(String),
}

/// One varbind, owned: (OID arcs, value as bytes or integer).
#[derive(Debug, Clone)]
enum Val {
    Bytes(Vec<u8>),
    Int(i64),
}

async fn walk(
    s: &mut AsyncSession,
    root: &[u64],
    per_request: Duration,
) -> Result<Vec<(Vec<u64>, Val)>, WalkError> {
    let mut out = Vec::new();
    let mut next: Vec<u64> = root.to_vec();
    for _ in 0..MAX_REQUESTS {
        let oid = Oid::from(&next).map_err(|e| WalkError::Snmp(format!("{e:?}")))?;
        let bulk = async {
            // An SNMP v3 agent answers a request with stale engine time by a
            // report that updates it (`AuthUpdated`): the request is sent again.
            match bulk_owned(s, &oid, root).await {
                Err(snmp2::Error::AuthUpdated) => bulk_owned(s, &oid, root).await,
                r => r,
            }
        };
        let (rows, mut done) = tokio::time::timeout(per_request, bulk)
            .await
            .map_err(|_| WalkError::Timeout(per_request))?
            .map_err(|e| WalkError::Snmp(format!("{e:?}")))?;
        let mut last = None;
        for (arcs, v) in rows {
            last = Some(arcs.clone());
            out.push((arcs, v));
        }
        if last.is_none() {
            done = true;
        }
        match last {
            Some(l) if !done && l > next => next = l,
            _ => return Ok(out),
        }
    }
    Ok(out)
}

/// One GETBULK from `oid`: the rows still under `root`, owned, and whether
/// the table ended within this reply.
async fn bulk_owned(
    s: &mut AsyncSession,
    oid: &Oid<'_>,
    root: &[u64],
) -> Result<(Vec<(Vec<u64>, Val)>, bool), snmp2::Error> {
    let pdu = s.getbulk(&[oid], 0, BULK).await?;
    let mut rows = Vec::new();
    for (name, value) in pdu.varbinds {
        let Some(arcs) = name.iter().map(|i| i.collect::<Vec<u64>>()) else {
            return Ok((rows, true));
        };
        if !arcs.starts_with(root) {
            return Ok((rows, true));
        }
        let v = match value {
            Value::OctetString(b) => Val::Bytes(b.to_vec()),
            Value::Integer(i) => Val::Int(i),
            Value::EndOfMibView | Value::NoSuchObject | Value::NoSuchInstance => {
                return Ok((rows, true));
            }
            _ => Val::Bytes(Vec::new()),
        };
        rows.push((arcs, v));
    }
    Ok((rows, false))
}

/// A session to `addr` with the site's credentials; for v3, after the
/// engine discovery USM needs before the first request.
async fn session(addr: SocketAddr, access: &SnmpAccess) -> Result<AsyncSession, WalkError> {
    match access {
        SnmpAccess::V2c { community } => AsyncSession::new_v2c(addr, community.as_bytes(), 0)
            .await
            .map_err(|e| WalkError::Snmp(e.to_string())),
        SnmpAccess::V3(v3) => {
            let mut security = Security::new(v3.user.as_bytes(), v3.auth_key.as_bytes())
                .with_auth_protocol(match v3.auth {
                    SnmpAuth::Sha => AuthProtocol::Sha1,
                    SnmpAuth::Sha256 => AuthProtocol::Sha256,
                });
            security = match &v3.priv_key {
                Some(p) => security.with_auth(Auth::AuthPriv {
                    cipher: Cipher::Aes128,
                    privacy_password: p.as_bytes().to_vec(),
                }),
                None => security.with_auth(Auth::AuthNoPriv),
            };
            let mut s = AsyncSession::new_v3(addr, 0, security)
                .await
                .map_err(|e| WalkError::Snmp(e.to_string()))?;
            s.init()
                .await
                .map_err(|e| WalkError::Snmp(format!("SNMP v3 engine discovery: {e:?}")))?;
            Ok(s)
        }
    }
}

/// Text of an LLDP id: a MAC when the subtype says so (chassis 4, port 3),
/// else the string as sent.
fn text(bytes: &[u8], is_mac: bool) -> String {
    if is_mac && bytes.len() == 6 {
        let m: [u8; 6] = bytes.try_into().unwrap_or_default();
        crate::mac::Mac::new(m).to_string()
    } else {
        String::from_utf8_lossy(bytes).trim().to_string()
    }
}

/// The neighbours `addr`'s agent reports, within `timeout` for the whole
/// walk. The peer is its system name, else its chassis id; its port the
/// port id, else the port description.
pub async fn neighbours(
    addr: SocketAddr,
    access: &SnmpAccess,
    timeout: Duration,
) -> Result<Vec<Neighbor>, WalkError> {
    let read = async {
        let mut s = session(addr, access).await?;
        let ports = walk(&mut s, LOC_PORT_ID, timeout).await?;
        let rem = walk(&mut s, REM_ENTRY, timeout).await?;
        Ok::<_, WalkError>((ports, rem))
    };
    let (ports, rem) = tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| WalkError::Timeout(timeout))??;
    let local: BTreeMap<u64, String> = ports
        .into_iter()
        .filter_map(|(arcs, v)| match (arcs.last(), v) {
            (Some(&n), Val::Bytes(b)) => Some((n, text(&b, false))),
            _ => None,
        })
        .collect();
    // Rows by (TimeMark, LocalPortNum, Index): column -> value.
    let mut rows: BTreeMap<(u64, u64, u64), BTreeMap<u64, Val>> = BTreeMap::new();
    for (arcs, v) in rem {
        let [.., col, tm, port, idx] = arcs[..] else {
            continue;
        };
        rows.entry((tm, port, idx)).or_default().insert(col, v);
    }
    let bytes = |r: &BTreeMap<u64, Val>, c: u64| match r.get(&c) {
        Some(Val::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    };
    let int = |r: &BTreeMap<u64, Val>, c: u64| match r.get(&c) {
        Some(Val::Int(i)) => *i,
        _ => 0,
    };
    let mut out = Vec::new();
    for ((_, port, _), r) in &rows {
        let Some(local_port) = local.get(port).filter(|p| !p.is_empty()) else {
            continue;
        };
        let name = text(&bytes(r, REM_SYS_NAME), false);
        let chassis = text(&bytes(r, REM_CHASSIS_ID), int(r, REM_CHASSIS_SUBTYPE) == 4);
        let remote_device = if name.is_empty() { chassis } else { name };
        let mut remote_port = text(&bytes(r, REM_PORT_ID), int(r, REM_PORT_SUBTYPE) == 3);
        if remote_port.is_empty() {
            remote_port = text(&bytes(r, REM_PORT_DESC), false);
        }
        if remote_device.is_empty() || remote_port.is_empty() {
            continue;
        }
        out.push(Neighbor {
            local_port: local_port.clone(),
            remote_device,
            remote_port,
        });
    }
    Ok(out)
}
