//! A read store that cannot be written for a while (a full disk): the projections report the
//! fault, keep retrying with backoff, and catch up by themselves once the disk has room again,
//! ending identical to a rebuild.
//!
//! An outside chaos drill found every SQLite projection stuck after such an outage, logging
//! "attempted to call begin_with at non-zero transaction depth" once a second until restarted:
//! SQLite had rolled the failed transaction back itself, the driver's own rollback then failed,
//! and the pool kept handing out a connection it believed was still inside a transaction.
//!
//! The full disk is a 16 MB tmpfs mounted for the test (the tests run as root, as CI does).

use std::path::Path;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use zhzj_tests::{
    Projecting, TestDb, dump_view, init_tracing, record_note, register_case, seeded_stack,
};

/// A tmpfs mounted at a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let status = Process::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .context("running mount")?;
        ensure!(
            status.success(),
            "could not mount a tmpfs (the test needs root): {status}"
        );
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk to the last byte with a file.
    fn fill(&self) -> anyhow::Result<()> {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.path().join("filler"))?;
        let block = vec![0_u8; 64 * 1024];
        loop {
            match filler.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => return Err(e.into()),
            }
        }
        // Smaller writes until not one byte fits.
        while filler.write(&[0_u8; 512]).map(|n| n > 0).unwrap_or(false) {}
        Ok(())
    }

    fn free(&self) -> anyhow::Result<()> {
        Ok(std::fs::remove_file(self.path().join("filler"))?)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Process::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn projections_recover_by_themselves_after_the_disk_was_full() -> anyhow::Result<()> {
    init_tracing();
    let disk = SmallDisk::mount(16)?;
    let (_nats, services) = seeded_stack().await?;
    let db = TestDb::sqlite_at(&disk.path().join("zhzj.sqlite"));
    let projecting = Projecting::start_on(&services.log, db).await?;
    let store = projecting.store.clone();
    let mut cases = Vec::new();
    for n in 0..20 {
        let accepted = services.ok(register_case(n)).await?;
        cases.push(accepted.aggregate_id.parse()?);
    }
    zhzj_tests::wait_caught_up(&services.log, &store).await?;

    // The disk fills up; writes go on in the log.
    disk.fill()?;
    let long_note = "已与信访人电话沟通，".repeat(200);
    for round in 0..5 {
        for case in &cases {
            services
                .ok(record_note(*case, &format!("{round}: {long_note}")))
                .await?;
        }
    }
    let last = services.log.last_position().await?;
    // The projections notice, report it, and keep trying.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let faults = store.projection_faults().current();
        if faults.contains_key("archive") {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "no projection reported a fault with the disk full: {:?}",
                zhzj_projector::status(&services.log, &store).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Room again: every projection catches up without a restart.
    disk.free()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = zhzj_projector::status(&services.log, &store).await?;
        if status.iter().all(|s| s.position >= last)
            && store.projection_faults().current().is_empty()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "projections did not recover after the disk had room again: {status:?}, faults {:?}",
                store.projection_faults().current()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // And they hold what a rebuild holds.
    let live = dump_view(&store, "checklist_rows", "case_id").await?;
    let notes: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM event_archive WHERE event_type = 'NoteRecorded'")
            .fetch_one(store.pool())
            .await?;
    ensure!(notes == 100, "the archive holds {notes} of the 100 notes");
    for projection in zhzj_projector::Projection::ALL {
        zhzj_projector::rebuild(&services.log, &store, projection).await?;
    }
    ensure!(
        dump_view(&store, "checklist_rows", "case_id").await? == live,
        "the recovered checklist differs from a rebuild"
    );
    projecting.stop().await?;
    Ok(())
}
