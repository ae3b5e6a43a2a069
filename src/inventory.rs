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
    /// `root`, `intermediate` or `leaf`.
    pub kind: String,
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
    /// `valid`, `superseded` or `revoked`.
    pub status: String,
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
                params![r.name, r.kind],
            )
            .map_err(|e| db_err(&path, e))?;
            tx.execute(
                "INSERT OR REPLACE INTO certificates
                 (serial, name, kind, subject, sans, profile, not_before, not_after, sha256, issuer_serial, paths, status, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, strftime('%s','now'))",
                params![
                    r.serial,
                    r.name,
                    r.kind,
                    r.subject,
                    serde_json::to_string(&r.sans).expect("strings serialize"),
                    r.profile,
                    r.not_before,
                    r.not_after,
                    r.sha256,
                    r.issuer_serial,
                    serde_json::to_string(&r.paths).expect("strings serialize"),
                    r.status,
                ],
            )
            .map_err(|e| db_err(&path, e))?;
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    /// Certificates, newest expiry last. With `expiring_before` (Unix seconds), only valid
    /// certificates whose not-after falls before it; with `all`, superseded ones too.
    pub fn list(&self, expiring_before: Option<i64>, all: bool) -> Result<Vec<Record>> {
        let mut sql = String::from(
            "SELECT serial, name, kind, subject, sans, profile, not_before, not_after, sha256, issuer_serial, paths, status
             FROM certificates WHERE 1=1",
        );
        if expiring_before.is_some() || !all {
            sql.push_str(" AND status = 'valid'");
        }
        if expiring_before.is_some() {
            sql.push_str(" AND not_after < ?1");
        }
        sql.push_str(" ORDER BY not_after, name");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| db_err(&self.path, e))?;
        let map = |row: &rusqlite::Row<'_>| -> rusqlite::Result<Record> {
            let sans: String = row.get(4)?;
            let paths: String = row.get(10)?;
            Ok(Record {
                serial: row.get(0)?,
                name: row.get(1)?,
                kind: row.get(2)?,
                subject: row.get(3)?,
                sans: serde_json::from_str(&sans).unwrap_or_default(),
                profile: row.get(5)?,
                not_before: row.get(6)?,
                not_after: row.get(7)?,
                sha256: row.get(8)?,
                issuer_serial: row.get(9)?,
                paths: serde_json::from_str(&paths).unwrap_or_default(),
                status: row.get(11)?,
            })
        };
        let rows = match expiring_before {
            Some(t) => stmt.query_map(params![t], map),
            None => stmt.query_map([], map),
        }
        .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_err(&self.path, e))
    }

    /// The current (valid) record of a name, if any.
    pub fn current(&self, name: &str, kind: &str) -> Result<Option<Record>> {
        let serial: Option<String> = self
            .conn
            .query_row(
                "SELECT serial FROM certificates WHERE name = ?1 AND kind = ?2 AND status = 'valid'
                 ORDER BY not_after DESC LIMIT 1",
                params![name, kind],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err(&self.path, e))?;
        Ok(match serial {
            Some(s) => self.list(None, true)?.into_iter().find(|r| r.serial == s),
            None => None,
        })
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
            kind: "leaf".into(),
            subject: format!("CN={name}"),
            sans: vec![name.into()],
            profile: "server".into(),
            not_before: 0,
            not_after,
            sha256: "AA".into(),
            issuer_serial: "01".into(),
            paths: vec![],
            status: "valid".into(),
        }
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
        assert_eq!(inv.current("a", "leaf").unwrap().unwrap().serial, "03");
    }
}
