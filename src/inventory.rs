//! The inventory: a transactional record (SQLite) of every certificate a store issued,
//! so "what expires within 30 days" is a query, not a walk over thousands of files.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::{Error, Result};

/// One issued certificate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Record {
    /// Lower-case hex serial.
    pub serial: String,
    /// The name it was issued under (`issue NAME`, the CA id, or the CSR's CN).
    pub name: String,
    pub kind: Kind,
    pub subject: String,
    pub sans: Vec<String>,
    /// `server`, `client`, `peer`, or empty for CAs.
    pub profile: String,
    /// Unix seconds.
    pub not_before: i64,
    /// Unix seconds.
    pub not_after: i64,
    /// SHA-256 fingerprint of the DER certificate, colon hex.
    pub sha256: String,
    /// Serial of the issuing CA (its own for a root).
    pub issuer_serial: String,
    pub paths: Vec<String>,
    pub status: Status,
}

/// What a recorded certificate is; stored and shown as `root`, `intermediate`, `leaf`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Root,
    Intermediate,
    Leaf,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Root => "root",
            Kind::Intermediate => "intermediate",
            Kind::Leaf => "leaf",
        }
    }

    /// A root or an intermediate.
    pub fn is_ca(self) -> bool {
        self != Kind::Leaf
    }
}

/// Where a recorded certificate stands; stored and shown as `valid`, `superseded`,
/// `revoked`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The current certificate of its name.
    Valid,
    /// Replaced by a newer certificate of the same name (renewed, re-issued).
    Superseded,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Valid => "valid",
            Status::Superseded => "superseded",
            Status::Revoked => "revoked",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// Reads a text column as one of `values`: a database edited by hand gets an error naming
/// the value, not a guess.
fn column_enum<T: Copy>(
    row: &rusqlite::Row<'_>,
    i: usize,
    values: &[T],
    name: fn(T) -> &'static str,
) -> rusqlite::Result<T> {
    let text: String = row.get(i)?;
    values
        .iter()
        .copied()
        .find(|v| name(*v) == text)
        .ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                i,
                rusqlite::types::Type::Text,
                format!("unknown value '{}'", crate::error::shorten(&text)).into(),
            )
        })
}

/// The inventory database of a store.
pub struct Inventory {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS certificates (
    serial        TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    subject       TEXT NOT NULL,
    sans          TEXT NOT NULL,
    profile       TEXT NOT NULL,
    not_before    INTEGER NOT NULL,
    not_after     INTEGER NOT NULL,
    sha256        TEXT NOT NULL,
    issuer_serial TEXT NOT NULL,
    paths         TEXT NOT NULL,
    status        TEXT NOT NULL,
    recorded_at   INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_not_after ON certificates(status, not_after);
CREATE INDEX IF NOT EXISTS certificates_name ON certificates(name);
";

impl Inventory {
    /// Opens (creating if needed) the inventory at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        // Several threads of one run may record at once; let them queue, not fail.
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| db_err(path, e))?;
        conn.execute_batch(SCHEMA).map_err(|e| db_err(path, e))?;
        migrate(&conn).map_err(|e| db_err(path, e))?;
        Ok(Inventory {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Records a newly issued certificate; any earlier valid certificate of the same
    /// name and kind becomes `superseded`, in the same transaction.
    pub fn record(&mut self, r: &Record) -> Result<()> {
        self.record_all(std::slice::from_ref(r))
    }

    /// Records many newly issued certificates in one transaction (one commit, so a run
    /// issuing thousands waits for the disk once, not thousands of times).
    pub fn record_all(&mut self, records: &[Record]) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
        for r in records {
            tx.execute(
                "UPDATE certificates SET status = 'superseded' WHERE name = ?1 AND kind = ?2 AND status = 'valid'",
                params![r.name, r.kind.as_str()],
            )
            .map_err(|e| db_err(&path, e))?;
            tx.execute(
                "INSERT OR REPLACE INTO certificates
                 (serial, name, kind, subject, sans, profile, not_before, not_after, sha256, issuer_serial, paths, status, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, strftime('%s','now'))",
                params![
                    r.serial,
                    r.name,
                    r.kind.as_str(),
                    r.subject,
                    serde_json::to_string(&r.sans).expect("strings serialize"),
                    r.profile,
                    r.not_before,
                    r.not_after,
                    r.sha256,
                    r.issuer_serial,
                    serde_json::to_string(&r.paths).expect("strings serialize"),
                    r.status.as_str(),
                ],
            )
            .map_err(|e| db_err(&path, e))?;
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    /// Certificates, newest expiry last. With `expiring_before` (Unix seconds), only valid
    /// certificates whose not-after falls before it; with `all`, superseded ones too.
    pub fn list(&self, expiring_before: Option<i64>, all: bool) -> Result<Vec<Record>> {
        let mut filter = String::new();
        if expiring_before.is_some() || !all {
            filter.push_str(" AND status = 'valid'");
        }
        match expiring_before {
            Some(t) => {
                filter.push_str(" AND not_after < ?1");
                self.select(&filter, params![t])
            }
            None => self.select(&filter, []),
        }
    }

    /// The records matching `filter` (SQL appended to the WHERE clause, with `params`),
    /// newest expiry last.
    fn select(&self, filter: &str, params: impl rusqlite::Params) -> Result<Vec<Record>> {
        let sql = format!(
            "SELECT serial, name, kind, subject, sans, profile, not_before, not_after, sha256, issuer_serial, paths, status
             FROM certificates WHERE 1=1{filter} ORDER BY not_after, name"
        );
        let mut stmt = self.conn.prepare(&sql).map_err(|e| db_err(&self.path, e))?;
        let map = |row: &rusqlite::Row<'_>| -> rusqlite::Result<Record> {
            let sans: String = row.get(4)?;
            let paths: String = row.get(10)?;
            Ok(Record {
                serial: row.get(0)?,
                name: row.get(1)?,
                kind: column_enum(
                    row,
                    2,
                    &[Kind::Root, Kind::Intermediate, Kind::Leaf],
                    Kind::as_str,
                )?,
                subject: row.get(3)?,
                sans: serde_json::from_str(&sans).unwrap_or_default(),
                profile: row.get(5)?,
                not_before: row.get(6)?,
                not_after: row.get(7)?,
                sha256: row.get(8)?,
                issuer_serial: row.get(9)?,
                paths: serde_json::from_str(&paths).unwrap_or_default(),
                status: column_enum(
                    row,
                    11,
                    &[Status::Valid, Status::Superseded, Status::Revoked],
                    Status::as_str,
                )?,
            })
        };
        let rows = stmt
            .query_map(params, map)
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_err(&self.path, e))
    }

    /// The current (valid) record of a name, if any.
    pub fn current(&self, name: &str, kind: Kind) -> Result<Option<Record>> {
        let serial: Option<String> = self
            .conn
            .query_row(
                "SELECT serial FROM certificates WHERE name = ?1 AND kind = ?2 AND status = 'valid'
                 ORDER BY not_after DESC LIMIT 1",
                params![name, kind.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err(&self.path, e))?;
        Ok(match serial {
            Some(s) => self.by_serial(&s)?,
            None => None,
        })
    }
}

/// Columns and tables added after the first schema; added in place to older databases.
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare("PRAGMA table_info(certificates)")?;
    let columns = stmt
        .query_map([], |r| r.get::<_, String>(1))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (column, decl) in [("revoked_at", "INTEGER"), ("revocation_reason", "TEXT")] {
        if !columns.iter().any(|c| c == column) {
            conn.execute_batch(&format!(
                "ALTER TABLE certificates ADD COLUMN {column} {decl}"
            ))?;
        }
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS crl_numbers (
            issuer_serial TEXT PRIMARY KEY,
            last          INTEGER NOT NULL
        );",
    )
}

/// A revoked certificate, as a CRL lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Revocation {
    pub serial: String,
    pub name: String,
    /// Unix seconds.
    pub revoked_at: i64,
    /// RFC 5280 reason name (`keyCompromise`, ...).
    pub reason: String,
}

impl Inventory {
    /// A certificate by serial (lower-case hex, no leading zeros).
    pub fn by_serial(&self, serial: &str) -> Result<Option<Record>> {
        Ok(self
            .select(" AND serial = ?1", params![serial])?
            .into_iter()
            .next())
    }

    /// Every record of a name, newest expiry last.
    pub fn by_name(&self, name: &str) -> Result<Vec<Record>> {
        self.select(" AND name = ?1", params![name])
    }

    /// Marks a certificate revoked at `at` (Unix seconds) for `reason`. Returns false when
    /// it already was.
    pub fn revoke(&mut self, serial: &str, at: i64, reason: &str) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE certificates SET status = 'revoked', revoked_at = ?2, revocation_reason = ?3
                 WHERE serial = ?1 AND status != 'revoked'",
                params![serial, at, reason],
            )
            .map_err(|e| db_err(&self.path, e))?;
        Ok(n > 0)
    }

    /// The SHA-256 fingerprints (as recorded: colon-separated hex) of every certificate
    /// an issuer signed, whatever its status.
    pub fn fingerprints_by(&self, issuer_serial: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT sha256 FROM certificates WHERE issuer_serial = ?1")
            .map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map(params![issuer_serial], |r| r.get(0))
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_err(&self.path, e))
    }

    /// The revoked certificates an issuer signed, oldest revocation first.
    pub fn revoked_by(&self, issuer_serial: &str) -> Result<Vec<Revocation>> {
        self.revoked(Some(issuer_serial))
    }

    /// Every revoked certificate, whoever signed it.
    pub fn revocations(&self) -> Result<Vec<Revocation>> {
        self.revoked(None)
    }

    fn revoked(&self, issuer_serial: Option<&str>) -> Result<Vec<Revocation>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT serial, name, COALESCE(revoked_at, recorded_at), COALESCE(revocation_reason, 'unspecified')
                 FROM certificates WHERE status = 'revoked' AND (?1 IS NULL OR issuer_serial = ?1)
                 ORDER BY revoked_at, serial",
            )
            .map_err(|e| db_err(&self.path, e))?;
        let rows = stmt
            .query_map(params![issuer_serial], |r| {
                Ok(Revocation {
                    serial: r.get(0)?,
                    name: r.get(1)?,
                    revoked_at: r.get(2)?,
                    reason: r.get(3)?,
                })
            })
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_err(&self.path, e))
    }

    /// The next CRL number for an issuer (1, 2, ...), kept in the inventory so that it only
    /// ever increases.
    pub fn next_crl_number(&mut self, issuer_serial: &str) -> Result<u64> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
        tx.execute(
            "INSERT INTO crl_numbers (issuer_serial, last) VALUES (?1, 1)
             ON CONFLICT(issuer_serial) DO UPDATE SET last = last + 1",
            params![issuer_serial],
        )
        .map_err(|e| db_err(&path, e))?;
        let n: i64 = tx
            .query_row(
                "SELECT last FROM crl_numbers WHERE issuer_serial = ?1",
                params![issuer_serial],
                |r| r.get(0),
            )
            .map_err(|e| db_err(&path, e))?;
        tx.commit().map_err(|e| db_err(&path, e))?;
        Ok(n as u64)
    }

    /// Makes `serial` the valid certificate of `name` again (for rollback): any other
    /// valid certificate of the name becomes `superseded`; a revoked one stays revoked.
    pub fn make_current(&mut self, name: &str, serial: &str) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| db_err(&path, e))?;
        tx.execute(
            "UPDATE certificates SET status = 'superseded'
             WHERE name = ?1 AND kind = 'leaf' AND status = 'valid' AND serial != ?2",
            params![name, serial],
        )
        .map_err(|e| db_err(&path, e))?;
        tx.execute(
            "UPDATE certificates SET status = 'valid' WHERE serial = ?1 AND status != 'revoked'",
            params![serial],
        )
        .map_err(|e| db_err(&path, e))?;
        tx.commit().map_err(|e| db_err(&path, e))
    }
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::bad_file(path, format!("inventory database: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(serial: &str, name: &str, not_after: i64) -> Record {
        Record {
            serial: serial.into(),
            name: name.into(),
            kind: Kind::Leaf,
            subject: format!("CN={name}"),
            sans: vec![name.into()],
            profile: "server".into(),
            not_before: 0,
            not_after,
            sha256: "AA".into(),
            issuer_serial: "01".into(),
            paths: vec![],
            status: Status::Valid,
        }
    }

    #[test]
    fn lookups_by_name_and_serial_select_in_the_database() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&dir.path().join("inv.sqlite")).unwrap();
        for r in [
            rec("02", "a", 300),
            rec("03", "b", 100),
            rec("04", "a", 200),
        ] {
            inv.record(&r).unwrap();
        }
        let serials = |v: Vec<Record>| v.into_iter().map(|r| r.serial).collect::<Vec<_>>();
        // Newest expiry last, superseded records included, other names left out.
        assert_eq!(serials(inv.by_name("a").unwrap()), ["04", "02"]);
        assert_eq!(serials(inv.by_name("b").unwrap()), ["03"]);
        assert!(
            inv.by_name("A").unwrap().is_empty(),
            "names compare exactly"
        );
        assert_eq!(inv.by_serial("03").unwrap().unwrap().name, "b");
        assert!(inv.by_serial("05").unwrap().is_none());
        assert_eq!(
            inv.current("a", Kind::Leaf).unwrap().unwrap().serial,
            "04",
            "the last recorded supersedes the one before"
        );
        assert!(inv.current("c", Kind::Leaf).unwrap().is_none());
    }

    #[test]
    fn fingerprints_by_lists_what_one_issuer_signed_whatever_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&dir.path().join("inv.sqlite")).unwrap();
        let mut a = rec("02", "a", 100);
        a.sha256 = "A1".into();
        let mut b = rec("03", "a", 200);
        b.sha256 = "B2".into();
        let mut other = rec("04", "c", 100);
        other.sha256 = "C3".into();
        other.issuer_serial = "09".into();
        for r in [&a, &b, &other] {
            inv.record(r).unwrap();
        }
        // a is superseded by b, and still listed: it was signed all the same.
        let mut got = inv.fingerprints_by("01").unwrap();
        got.sort();
        assert_eq!(got, ["A1", "B2"]);
        assert_eq!(inv.fingerprints_by("09").unwrap(), ["C3"]);
        assert!(inv.fingerprints_by("0A").unwrap().is_empty());
    }

    #[test]
    fn kinds_and_states_are_stored_as_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inv.sqlite");
        let mut inv = Inventory::open(&path).unwrap();
        let mut root = rec("01", "root", 100);
        root.kind = Kind::Root;
        inv.record(&root).unwrap();
        inv.record(&rec("02", "a", 100)).unwrap();
        inv.record(&rec("03", "a", 200)).unwrap();
        let (kind, status): (String, String) = inv
            .conn
            .query_row(
                "SELECT kind, status FROM certificates WHERE serial = '02'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((kind.as_str(), status.as_str()), ("leaf", "superseded"));
        let all = inv.list(None, true).unwrap();
        let by = |serial: &str| all.iter().find(|r| r.serial == serial).unwrap();
        assert_eq!(by("01").kind, Kind::Root);
        assert!(by("01").kind.is_ca() && !by("02").kind.is_ca());
        assert_eq!(
            serde_json::to_value(by("02")).unwrap()["status"],
            "superseded"
        );
        assert_eq!(format!("[{:<6}]", Status::Valid), "[valid ]");
        // A value edited in by hand is an error naming it.
        inv.conn
            .execute(
                "UPDATE certificates SET status = 'bogus' WHERE serial = '01'",
                [],
            )
            .unwrap();
        let e = inv.list(None, true).unwrap_err().to_string();
        assert!(e.contains("unknown value 'bogus'"), "{e}");
    }

    #[test]
    fn supersedes_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = Inventory::open(&dir.path().join("inv.sqlite")).unwrap();
        inv.record(&rec("01", "a", 100)).unwrap();
        inv.record(&rec("02", "b", 1000)).unwrap();
        inv.record(&rec("03", "a", 2000)).unwrap();
        let valid = inv.list(None, false).unwrap();
        assert_eq!(
            valid.iter().map(|r| r.serial.as_str()).collect::<Vec<_>>(),
            ["02", "03"]
        );
        assert_eq!(inv.list(None, true).unwrap().len(), 3);
        let soon = inv.list(Some(1500), false).unwrap();
        assert_eq!(soon.len(), 1);
        assert_eq!(soon[0].name, "b");
        assert_eq!(inv.current("a", Kind::Leaf).unwrap().unwrap().serial, "03");
    }

    #[test]
    fn migrates_an_old_database_and_revokes_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        // The first schema, without the revocation columns.
        Connection::open(&path)
            .unwrap()
            .execute_batch(SCHEMA)
            .unwrap();
        let mut inv = Inventory::open(&path).unwrap();
        inv.record(&rec("01", "a", 100)).unwrap();
        assert!(inv.revoke("01", 50, "keyCompromise").unwrap());
        assert!(!inv.revoke("01", 60, "superseded").unwrap());
        let r = inv.revoked_by("01").unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].revoked_at, r[0].reason.as_str()),
            (50, "keyCompromise")
        );
        drop(inv);
        let mut inv = Inventory::open(&path).unwrap();
        assert_eq!(inv.next_crl_number("01").unwrap(), 1);
        assert_eq!(inv.next_crl_number("01").unwrap(), 2);
        assert_eq!(
            inv.by_serial("01").unwrap().unwrap().status,
            Status::Revoked
        );
    }
}
