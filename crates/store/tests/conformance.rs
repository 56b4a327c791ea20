//! openraft's own storage conformance suite run against the sled store.

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use switchyard_store::{LogStore, StateMachine, TypeConfig};
use tempfile::TempDir;

struct SledBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for SledBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<TypeConfig>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let (log, sm) = switchyard_store::open(dir.path()).expect("open store");
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_passes_openraft_suite() {
    Suite::test_all(SledBuilder)
        .await
        .expect("storage conformance suite");
}

struct MemBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, ()> for MemBuilder {
    async fn build(&self) -> Result<((), LogStore, StateMachine), StorageError<TypeConfig>> {
        let disk = std::sync::Arc::new(switchyard_store::MemDisk::new());
        let (log, sm) = switchyard_store::open_on(disk).expect("open store");
        Ok(((), log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_disk_store_passes_openraft_suite() {
    // The simulation runs the same store on an in-memory disk; it must be just as correct.
    Suite::test_all(MemBuilder)
        .await
        .expect("storage conformance suite");
}
