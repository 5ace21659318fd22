//! Reading a deployed device's LLDP neighbours over SNMP v2c or v3 (SPEC §12):
//! LLDP-MIB (IEEE 802.1AB) `lldpRemTable` 1.0.8802.1.1.2.1.4.1 and
//! `lldpLocPortTable` 1.0.8802.1.1.2.1.3.7 through the `snmp2` crate. The
//! neighbour columns are walked side by side with GETBULK, then the local
//! port names of the ports they are on are read with GET: only what the
//! neighbour list needs, since each value costs a switch's slow agent. The
//! result is the neighbour list a hello would carry.
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
/// The `lldpRemEntry` columns a neighbour is read from, walked side by side
/// (one GETBULK carries a slice of every column). The others (system
/// description, capabilities) are never asked for: a switch's agent is slow
/// and every value costs it.
const REM_COLUMNS: [u64; 6] = [
    REM_CHASSIS_SUBTYPE,
    REM_CHASSIS_ID,
    REM_PORT_SUBTYPE,
    REM_PORT_ID,
    REM_PORT_DESC,
    REM_SYS_NAME,
];
/// Values per request: a 48-port switch's neighbours in a dozen GETBULKs, a
/// reply that stays well under a UDP datagram.
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

/// A varbind of a reply, owned; `None` where the agent has no (more) value.
type Owned = (Vec<u64>, Option<Val>);

fn oid(arcs: &[u64]) -> Result<Oid<'static>, WalkError> {
    Oid::from(arcs).map_err(|e| WalkError::Snmp(format!("{e:?}")))
}

/// Walk the table columns `roots` side by side with GETBULK: each request
/// asks for the next values of every column not yet ended. A column ends
/// where its values leave it (or do not grow: an agent that loops).
async fn walk(
    s: &mut AsyncSession,
    roots: &[&[u64]],
    per_request: Duration,
) -> Result<Vec<(Vec<u64>, Val)>, WalkError> {
    let mut out = Vec::new();
    let mut cursors: Vec<Option<Vec<u64>>> = roots.iter().map(|r| Some(r.to_vec())).collect();
    for _ in 0..MAX_REQUESTS {
        let open: Vec<usize> = (0..roots.len()).filter(|&c| cursors[c].is_some()).collect();
        if open.is_empty() {
            break;
        }
        let oids = open
            .iter()
            .map(|&c| oid(cursors[c].as_deref().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?;
        let repetitions = (BULK / open.len() as u32).max(1);
        let reply = within(per_request, request(s, Request::Bulk(&oids, repetitions))).await?;
        if reply.is_empty() {
            break;
        }
        // Varbind i of a GETBULK reply is the next value of column i % open.
        for (i, (arcs, v)) in reply.into_iter().enumerate() {
            let c = open[i % open.len()];
            let Some(cursor) = &cursors[c] else { continue };
            match v {
                Some(v) if arcs.starts_with(roots[c]) && arcs > *cursor => {
                    cursors[c] = Some(arcs.clone());
                    out.push((arcs, v));
                }
                _ => cursors[c] = None,
            }
        }
    }
    Ok(out)
}

/// `f`'s result, or [`WalkError::Timeout`] when it takes longer than `limit`.
async fn within<T>(
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, WalkError>>,
) -> Result<T, WalkError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| WalkError::Timeout(limit))?
}

enum Request<'a> {
    /// GETBULK from these OIDs, this many repetitions.
    Bulk(&'a [Oid<'a>], u32),
    /// GET of these OIDs.
    Get(&'a [Oid<'a>]),
}

/// One request, its reply owned. An SNMP v3 agent answers a request with
/// stale engine time by a report that updates it (`AuthUpdated`): the
/// request is sent again.
async fn request(s: &mut AsyncSession, r: Request<'_>) -> Result<Vec<Owned>, WalkError> {
    match send(s, &r).await {
        Err(snmp2::Error::AuthUpdated) => send(s, &r).await,
        other => other,
    }
    .map_err(|e| WalkError::Snmp(format!("{e:?}")))
}

async fn send(s: &mut AsyncSession, r: &Request<'_>) -> Result<Vec<Owned>, snmp2::Error> {
    let pdu = match r {
        Request::Bulk(oids, n) => {
            let refs: Vec<&Oid> = oids.iter().collect();
            s.getbulk(&refs, 0, *n).await?
        }
        Request::Get(oids) => {
            let refs: Vec<&Oid> = oids.iter().collect();
            s.get_many(&refs).await?
        }
    };
    let mut rows = Vec::new();
    for (name, value) in pdu.varbinds {
        let arcs = name
            .iter()
            .map(|i| i.collect::<Vec<u64>>())
            .unwrap_or_default();
        let v = match value {
            Value::OctetString(b) => Some(Val::Bytes(b.to_vec())),
            Value::Integer(i) => Some(Val::Int(i)),
            Value::EndOfMibView | Value::NoSuchObject | Value::NoSuchInstance => None,
            _ => Some(Val::Bytes(Vec::new())),
        };
        rows.push((arcs, v));
    }
    Ok(rows)
}

/// `lldpLocPortId` of the local port numbers `ports` (those neighbours were
/// seen on), by GET: a switch's other ports are never read.
async fn local_ports(
    s: &mut AsyncSession,
    ports: &[u64],
    per_request: Duration,
) -> Result<BTreeMap<u64, String>, WalkError> {
    let mut names = BTreeMap::new();
    for chunk in ports.chunks(BULK as usize) {
        let oids = chunk
            .iter()
            .map(|&p| oid(&[LOC_PORT_ID, &[p]].concat()))
            .collect::<Result<Vec<_>, _>>()?;
        let reply = within(per_request, request(s, Request::Get(&oids))).await?;
        for (arcs, v) in reply {
            if let (Some(&[n]), Some(Val::Bytes(b))) = (arcs.strip_prefix(LOC_PORT_ID), v) {
                names.insert(n, text(&b, false));
            }
        }
    }
    Ok(names)
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

/// How long a device's agent is waited for.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// For each request: an agent that does not answer one is unreachable.
    pub request: Duration,
    /// For the whole read: a big table from an agent that answers every
    /// request, slowly, is still read, within this.
    pub walk: Duration,
}

/// The neighbours `addr`'s agent reports. The peer is its system name, else
/// its chassis id; its port the port id, else the port description.
pub async fn neighbours(
    addr: SocketAddr,
    access: &SnmpAccess,
    patience: Patience,
) -> Result<Vec<Neighbor>, WalkError> {
    let per_request = patience.request;
    let read = async {
        let mut s = within(per_request, session(addr, access)).await?;
        let columns: Vec<Vec<u64>> = REM_COLUMNS
            .iter()
            .map(|&c| [REM_ENTRY, &[c]].concat())
            .collect();
        let roots: Vec<&[u64]> = columns.iter().map(Vec::as_slice).collect();
        let rem = walk(&mut s, &roots, per_request).await?;
        let mut ports: Vec<u64> = rem
            .iter()
            .filter_map(|(arcs, _)| arcs.get(REM_ENTRY.len() + 2).copied())
            .collect();
        ports.sort_unstable();
        ports.dedup();
        let local = local_ports(&mut s, &ports, per_request).await?;
        Ok::<_, WalkError>((local, rem))
    };
    let (local, rem) = within(patience.walk, read).await?;
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
