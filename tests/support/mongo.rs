//! The MongoDB side of telemetry tests: the nx-27017 MongoDB-wire server and
//! a real MongoDB client (the Rust driver) to read what landed.
//!
//! nx-27017 always runs with `--data-dir`: one SQLite file per database. With
//! `--db` it would keep every database in one file and ignore their names, so
//! a test could not see a wrong database name (docs: ../shared/TESTING.md).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use mongodb::bson::{doc, Bson, Document};

use super::tools::{which, ChildGuard};
use super::{poll, ports};

/// ztpd's defaults for `[telemetry] database` and `collection`.
pub const DEFAULT_DATABASE: &str = "db_elastacloud";
pub const DEFAULT_COLLECTION: &str = "collection_elastacloud";

/// nx-27017 from `NX_27017`, the project's `.venv-test`, a local venv under
/// target/, or PATH.
pub fn nx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NX_27017") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [
        ".venv-test/bin/nx-27017",
        "target/venv-telemetry/bin/nx-27017",
    ]
    .iter()
    .map(|c| root.join(c))
    .find(|p| p.is_file())
    .or_else(|| which("nx-27017"))
}

/// One nx-27017 on a free port, its data, log and pid file in its own
/// directory: it survives [`Nx::restart`], and instances never share a pid
/// file (nx-27017 refuses to start while the one it names is alive).
pub struct Nx {
    pub port: u16,
    bin: PathBuf,
    dir: PathBuf,
    child: ChildGuard,
}

impl Nx {
    pub fn start(bin: &Path, dir: &Path) -> Nx {
        std::fs::create_dir_all(dir.join("data")).expect("mkdir nx data dir");
        let mut n = Nx {
            port: ports::free_tcp(),
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            child: ChildGuard(None),
        };
        n.restart();
        n
    }

    pub fn restart(&mut self) {
        self.child.stop();
        self.child = ChildGuard::spawn(
            Command::new(&self.bin)
                .arg("--data-dir")
                .arg(self.dir.join("data"))
                .args(["-p", &self.port.to_string()])
                .arg("--pid-file")
                .arg(self.dir.join("nx.pid"))
                .arg("--log-file")
                .arg(self.dir.join("nx.log"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        assert!(
            poll::wait_tcp(SocketAddr::from(([127, 0, 0, 1], self.port))),
            "nx-27017 did not listen on {}",
            self.port
        );
    }

    pub fn stop(&mut self) {
        self.child.stop();
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nx {
    fn drop(&mut self) {
        self.child.stop();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn client(uri: &str) -> mongodb::Client {
    ztpd::telemetry::mqtt::install_crypto_provider();
    let opts = mongodb::options::ClientOptions::parse(uri)
        .await
        .expect("MongoDB URI");
    mongodb::Client::with_options(opts).expect("MongoDB client")
}

/// Documents in `db.coll`; `None` when the server does not answer.
pub fn count(uri: &str, db: &str, coll: &str) -> Option<u64> {
    rt().block_on(async {
        let c = client(uri).await.database(db).collection::<Document>(coll);
        c.count_documents(doc! {}).await.ok()
    })
}

/// Every document in `db.coll`.
pub fn docs(uri: &str, db: &str, coll: &str) -> Vec<Document> {
    use futures_util::TryStreamExt;
    rt().block_on(async {
        let c = client(uri).await.database(db).collection::<Document>(coll);
        c.find(doc! {})
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("read documents")
    })
}

/// The server's database names.
pub fn database_names(uri: &str) -> Vec<String> {
    rt().block_on(async {
        client(uri)
            .await
            .list_database_names()
            .await
            .expect("listDatabases")
    })
}

/// The collection names of `db`.
pub fn collection_names(uri: &str, db: &str) -> Vec<String> {
    rt().block_on(async {
        client(uri)
            .await
            .database(db)
            .list_collection_names()
            .await
            .expect("listCollections")
    })
}

/// nx-27017 hands small integers back as int32; MongoDB keeps int64.
pub fn int(d: &Document, key: &str) -> Option<i64> {
    match d.get(key)? {
        Bson::Int64(i) => Some(*i),
        Bson::Int32(i) => Some(i64::from(*i)),
        _ => None,
    }
}

/// Wait until `db.coll` holds `n` documents; fail with what it holds.
pub fn wait_count(uri: &str, db: &str, coll: &str, n: u64, limit: std::time::Duration) {
    let mut last = None;
    let ok = poll::poll(limit, || {
        last = count(uri, db, coll);
        (last == Some(n)).then_some(())
    });
    assert!(
        ok.is_some(),
        "{db}.{coll}: expected {n} documents, have {last:?}"
    );
}

/// `db.coll` holds exactly the `_id`s `expected`, each once.
pub fn assert_ids_exactly(uri: &str, db: &str, coll: &str, expected: &[String]) {
    use std::collections::HashSet;
    let got: Vec<String> = docs(uri, db, coll)
        .iter()
        .map(|d| d.get_str("_id").expect("string _id").to_string())
        .collect();
    let set: HashSet<&String> = got.iter().collect();
    assert_eq!(set.len(), got.len(), "duplicate ids stored");
    let want: HashSet<&String> = expected.iter().collect();
    let missing = want.difference(&set).count();
    let extra = set.difference(&want).count();
    assert!(
        missing == 0 && extra == 0,
        "stored ids differ from published ids: {missing} missing, {extra} unexpected"
    );
}
