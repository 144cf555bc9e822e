//! The closed-window store: the state of every group of every closed window
//! of the partitions this processor holds, in a SQLite file on local disk
//! (off the heap, bounded by the retention rather than by memory).
//!
//! The file is a cache of the changelog topic (see [`crate::changelog`]):
//! it is created empty for each run, a partition's rows are restored from
//! its changelog partition when the processor first reads the partition, and
//! nothing in it needs to survive a crash, so it is written without syncing.
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::window::{ClosedGroup, ClosedWindows, Closing};

/// The store of one processor run: one SQLite file in its own temporary
/// directory, removed when the store is dropped.
pub struct ClosedStore {
    connection: Arc<Mutex<Connection>>,
    _dir: tempfile::TempDir,
}

impl ClosedStore {
    /// A new, empty store in a fresh directory under `parent` (the system's
    /// temporary directory when `None`).
    pub fn create(parent: Option<&Path>) -> anyhow::Result<Self> {
        let parent: PathBuf = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create the state directory {}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix("tributary-processor-")
            .tempdir_in(&parent)
            .with_context(|| format!("cannot create a directory in {}", parent.display()))?;
        let path = dir.path().join("closed-windows.sqlite");
        let connection = Connection::open(&path)
            .with_context(|| format!("cannot open the closed-window store {}", path.display()))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = OFF;
                 CREATE TABLE closed (
                     topic        TEXT    NOT NULL,
                     partition    INTEGER NOT NULL,
                     group_key    TEXT    NOT NULL,
                     window_start INTEGER NOT NULL,
                     window_end   INTEGER NOT NULL,
                     state        BLOB    NOT NULL,
                     PRIMARY KEY (topic, partition, group_key, window_start)
                 ) WITHOUT ROWID;
                 CREATE INDEX closed_by_end ON closed (topic, partition, window_end);",
            )
            .context("cannot create the closed-window table")?;
        tracing::info!(path = %path.display(), "closed-window store created");
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            _dir: dir,
        })
    }

    /// The rows of one source partition.
    pub fn partition(&self, topic: &str, partition: i32) -> PartitionStore {
        PartitionStore {
            connection: self.connection.clone(),
            topic: topic.to_string(),
            partition,
        }
    }
}

/// One source partition's closed windows in a [`ClosedStore`].
#[derive(Clone)]
pub struct PartitionStore {
    connection: Arc<Mutex<Connection>>,
    topic: String,
    partition: i32,
}

impl PartitionStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent.
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Forgets every row of the partition (before a restore).
    pub fn clear(&self) -> anyhow::Result<()> {
        self.lock().execute(
            "DELETE FROM closed WHERE topic = ?1 AND partition = ?2",
            params![self.topic, self.partition],
        )?;
        Ok(())
    }

    /// Applies changelog records in order: `(group key, window start,
    /// window end, state)`, where a `None` state deletes the row.
    pub fn apply(
        &self,
        records: impl IntoIterator<Item = (String, i64, i64, Option<Vec<u8>>)>,
    ) -> anyhow::Result<()> {
        let mut connection = self.lock();
        let tx = connection.transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT OR REPLACE INTO closed VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            let mut delete = tx.prepare_cached(
                "DELETE FROM closed WHERE topic = ?1 AND partition = ?2 AND group_key = ?3 AND window_start = ?4",
            )?;
            for (group_key, start, end, state) in records {
                match state {
                    Some(state) => insert.execute(params![
                        self.topic,
                        self.partition,
                        group_key,
                        start,
                        end,
                        state
                    ])?,
                    None => {
                        delete.execute(params![self.topic, self.partition, group_key, start])?
                    }
                };
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Rows of the partition.
    #[cfg(test)]
    fn len(&self) -> anyhow::Result<usize> {
        let count: i64 = self.lock().query_row(
            "SELECT count(*) FROM closed WHERE topic = ?1 AND partition = ?2",
            params![self.topic, self.partition],
            |row| row.get(0),
        )?;
        Ok(count as usize)
    }

    /// Whether the partition has no rows.
    #[cfg(test)]
    fn is_empty(&self) -> anyhow::Result<bool> {
        Ok(self.len()? == 0)
    }
}

impl ClosedWindows for PartitionStore {
    fn get(&self, group_key: &str, window_start_ms: i64) -> anyhow::Result<Option<ClosedGroup>> {
        let state: Option<Vec<u8>> = self
            .lock()
            .prepare_cached(
                "SELECT state FROM closed WHERE topic = ?1 AND partition = ?2 AND group_key = ?3 AND window_start = ?4",
            )?
            .query_row(
                params![self.topic, self.partition, group_key, window_start_ms],
                |row| row.get(0),
            )
            .optional()?;
        state
            .map(|bytes| serde_json::from_slice(&bytes))
            .transpose()
            .context("a closed window's state does not parse")
    }

    fn put(&mut self, groups: &[Closing]) -> anyhow::Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let mut connection = self.lock();
        let tx = connection.transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT OR REPLACE INTO closed VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
            for group in groups {
                insert.execute(params![
                    self.topic,
                    self.partition,
                    group.group_key,
                    group.window_start_ms,
                    group.window_end_ms,
                    serde_json::to_vec(&group.state)?
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn forget_until(&mut self, window_end_ms: i64) -> anyhow::Result<()> {
        self.lock().execute(
            "DELETE FROM closed WHERE topic = ?1 AND partition = ?2 AND window_end <= ?3",
            params![self.topic, self.partition, window_end_ms],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::window::{KeySet, Totals};

    fn closing(key: &str, start: i64, count: i64) -> Closing {
        Closing {
            group_key: key.into(),
            window_start_ms: start,
            window_end_ms: start + 60_000,
            state: ClosedGroup {
                totals: Totals::Clicks {
                    count,
                    ips: HashSet::from(["10.0.0.1".to_string()]),
                },
                seen: KeySet::from_iter(["a".to_string()]),
                through_offset: 7,
                revision: 1,
            },
        }
    }

    #[test]
    fn keeps_replaces_and_forgets_closed_windows_per_partition() -> anyhow::Result<()> {
        let store = ClosedStore::create(None)?;
        let mut p0 = store.partition("t", 0);
        let mut p1 = store.partition("t", 1);
        p0.put(&[closing("k", 0, 1), closing("k", 60_000, 2)])?;
        p1.put(&[closing("k", 0, 9)])?;
        p0.put(&[closing("k", 0, 3)])?;
        assert_eq!(p0.get("k", 0)?.unwrap(), closing("k", 0, 3).state);
        assert_eq!(
            p1.get("k", 0)?.unwrap().totals,
            closing("k", 0, 9).state.totals
        );
        assert_eq!(p0.get("other", 0)?, None);
        p0.forget_until(60_000)?;
        assert_eq!(p0.get("k", 0)?, None);
        assert!(p0.get("k", 60_000)?.is_some());
        assert_eq!(p1.len()?, 1, "another partition's rows stay");
        p1.clear()?;
        assert!(p1.is_empty()?);
        p1.apply([
            ("x".to_string(), 0, 60_000, Some(b"{}".to_vec())),
            ("x".to_string(), 0, 60_000, None),
            (
                "y".to_string(),
                0,
                60_000,
                Some(serde_json::to_vec(&closing("y", 0, 1).state)?),
            ),
        ])?;
        assert_eq!(p1.len()?, 1, "the later record of a key wins");
        assert!(p1.get("y", 0)?.is_some());
        assert_eq!(p0.len()?, 1, "another partition's rows stay");
        Ok(())
    }

    #[test]
    fn the_directory_is_removed_with_the_store() -> anyhow::Result<()> {
        let parent = tempfile::tempdir()?;
        let store = ClosedStore::create(Some(parent.path()))?;
        assert_eq!(std::fs::read_dir(parent.path())?.count(), 1);
        drop(store);
        assert_eq!(std::fs::read_dir(parent.path())?.count(), 0);
        Ok(())
    }
}
