//! `zhzj bench assess`: the year-end assessment of a year with many cases — by default 100,000
//! cases and 2,000,000 events written straight into a SQLite event archive and applied to the
//! figures projection — and the month's bulletin draft, timed with each one's peak memory,
//! beside a baseline measured in the same run: the same assessment folded from the archive, as
//! it was computed before the figures projection.

use std::time::Instant;

use chrono::{NaiveDate, TimeZone, Utc};
use zhzj_deadlines::Limits;
use zhzj_figures::{Details, assessment};

use zhzj_proto::events::{UnitKind, UnitRef};
use zhzj_store::ReadStore;

mod archive;

use archive::BenchDistrict;

mod leader_view;

/// The peak resident memory of this process so far, in MiB (Linux `VmHWM`).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Resets the peak resident memory this process reports (Linux `clear_refs` 5), so that each
/// measure's peak is its own.
fn reset_peak() {
    // Without the right (an unusual kernel), the peaks are cumulative: larger, never smaller.
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
    {
        let _ = std::io::Write::write_all(&mut file, b"5");
    }
}

/// 09:00 China time on a day of 2026.
fn china_morning(month: u32, day: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, month, day, 1, 0, 0)
        .single()
        .unwrap_or_else(Utc::now)
}

fn meeting_held_at() -> chrono::DateTime<Utc> {
    china_morning(12, 10)
}

/// The push's progress read from its hard cases (p50 of 5) beside the fold of the whole
/// archive it replaced, and the agenda of a city meeting in December (the year's cases all
/// crossed off) and in June (a quarter of them open).
async fn push_and_agenda_measures(
    store: &ReadStore,
    position: i64,
    districts: &[BenchDistrict],
    limits: &Limits,
) -> anyhow::Result<()> {
    let quarter = (
        zhzj_store::china_midnight(NaiveDate::from_ymd_opt(2026, 10, 1).unwrap_or_default()),
        zhzj_store::china_midnight(NaiveDate::from_ymd_opt(2027, 1, 1).unwrap_or_default()),
    );
    let now = meeting_held_at();
    let mut push_ms = Vec::new();
    reset_peak();
    let mut progress = None;
    for _ in 0..5 {
        let started = Instant::now();
        progress =
            zhzj_figures::push_progress_at(store, "2026-Q4", quarter.0, quarter.1, now, position)
                .await?;
        push_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    push_ms.sort_by(f64::total_cmp);
    let progress = progress.ok_or_else(|| anyhow::anyhow!("the push was not found"))?;
    println!(
        "push progress of 2026-Q4 ({} hard cases, {} resolved), read from its hard cases: p50 {:.1} ms (of 5), peak memory {:.0} MiB",
        progress.total.denominator,
        progress.total.numerator,
        push_ms[2],
        peak_mib()
    );
    reset_peak();
    let started = Instant::now();
    let events =
        zhzj_figures::ArchivedEvent::read_up_to(store, &["case", "push"], position).await?;
    let folded = zhzj_figures::push_progress_from(&events, "2026-Q4", quarter.0, quarter.1, now)
        .map(|p| zhzj_figures::PushProgress {
            as_of_position: position,
            ..p
        });
    println!(
        "baseline  the same progress folded from the archive ({} events): {:.2} s, peak memory {:.0} MiB",
        events.len(),
        started.elapsed().as_secs_f64(),
        peak_mib()
    );
    drop(events);
    anyhow::ensure!(
        folded.as_ref() == Some(&progress),
        "the push's progress from its hard cases differs from the archive's"
    );
    for (held_at, when) in [(now, "10 December"), (china_morning(6, 10), "10 June")] {
        time_agenda(store, position, held_at, when, districts.len(), limits).await?;
    }
    Ok(())
}

/// Times the agenda of a city meeting held at `held_at` as of `position`: drawn from the agenda
/// projection (p50 of 5) beside the fold of the whole archive, and checks
/// both give the same agenda.
async fn time_agenda(
    store: &ReadStore,
    position: i64,
    held_at: chrono::DateTime<Utc>,
    when: &str,
    districts: usize,
    limits: &Limits,
) -> anyhow::Result<()> {
    let request = zhzj_figures::AgendaRequest {
        meeting_id: "meeting-bench".into(),
        title: "调度会".into(),
        week: "2026-W00".into(),
        unit: UnitRef {
            id: "xm".into(),
            name: "厦门市".into(),
        },
        held_at,
        as_of_position: position,
        idle_days: 30,
        limits: limits.clone(),
    };
    let mut agenda_ms = Vec::new();
    reset_peak();
    let mut agenda = None;
    for _ in 0..5 {
        let started = Instant::now();
        agenda = Some(zhzj_figures::agenda_from_projection(store, &request).await?);
        agenda_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    agenda_ms.sort_by(f64::total_cmp);
    let agenda = agenda.ok_or_else(|| anyhow::anyhow!("no agenda was drawn"))?;
    let rows: usize = agenda.sections.iter().map(|s| s.rows.len()).sum();
    println!(
        "agenda of a city meeting on {when} ({rows} rows over {districts} districts), from the agenda projection: p50 {:.1} ms (of 5), peak memory {:.0} MiB",
        agenda_ms[2],
        peak_mib()
    );
    reset_peak();
    let started = Instant::now();
    let folded = zhzj_figures::agenda_from_archive(store, &request).await?;
    println!(
        "baseline  the same agenda folded from the archive: {:.2} s, peak memory {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_mib()
    );
    anyhow::ensure!(
        folded == agenda,
        "the agenda from its projection differs from the archive's"
    );
    Ok(())
}

/// Times the bulletin of `month` as of `position` from the figures projection: p50 of 5.
async fn time_bulletin(
    store: &ReadStore,
    month: &str,
    position: i64,
    limits: &Limits,
    what: &str,
) -> anyhow::Result<()> {
    let mut bulletin_ms = Vec::new();
    reset_peak();
    for _ in 0..5 {
        let started = Instant::now();
        zhzj_figures::bulletin(store, month, position, None, limits).await?;
        bulletin_ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    bulletin_ms.sort_by(f64::total_cmp);
    println!(
        "bulletin of {month} {what}: p50 {:.0} ms (of 5), peak memory {:.0} MiB",
        bulletin_ms[2],
        peak_mib()
    );
    Ok(())
}

/// The bulletins and an assessment as of earlier positions or of earlier periods, where the
/// cases touched since are counted one by one beside the running sums (or, past a limit, every
/// case is read).
async fn as_of_measures(
    store: &ReadStore,
    scheme: &assessment::Scheme,
    events: i64,
    limits: &Limits,
) -> anyhow::Result<()> {
    time_bulletin(
        store,
        "2026-12",
        events,
        limits,
        "(draft, from the running sums)",
    )
    .await?;
    let touched_after = |moment: chrono::DateTime<Utc>| {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM figure_cases WHERE last_recorded_at >= $1",
        )
        .bind(moment.timestamp_micros())
        .fetch_one(store.pool())
    };
    let november =
        zhzj_store::china_midnight(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default());
    let touched = touched_after(november).await?;
    time_bulletin(
        store,
        "2026-10",
        events,
        limits,
        &format!("({touched} cases touched since its end, counted one by one)"),
    )
    .await?;
    let middle = events / 2;
    let (from, to) = (
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
    );
    reset_peak();
    let started = Instant::now();
    assessment::assess(
        store,
        scheme,
        UnitKind::District,
        from..=to,
        middle,
        limits,
        &Details::None,
    )
    .await?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "assessment of 2026 as of position {middle} (half the cases touched since: every case read): {:.2} s, peak memory {:.0} MiB",
        started.elapsed().as_secs_f64(),
        peak_mib()
    );
    Ok(())
}

/// Runs the benchmark.
pub async fn run(cases: usize, keep_in: Option<&std::path::Path>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (file, reused) = match keep_in {
        Some(kept) => {
            std::fs::create_dir_all(kept)?;
            let file = kept.join("bench.sqlite");
            let reused = file.exists();
            (file, reused)
        }
        None => (dir.path().join("bench.sqlite"), false),
    };
    let url = zhzj_store::sql::sqlite_url(&file);
    let store = ReadStore::connect(&url).await?;
    let (events, districts) = if reused {
        // A file an earlier run kept: measured again as it is.
        let events: Option<i64> = sqlx::query_scalar("SELECT MAX(position) FROM event_archive")
            .fetch_one(store.pool())
            .await?;
        let events = anyhow::Context::context(events, "the kept file holds no archive")?;
        println!("measuring {} again ({events} events)", file.display());
        (events, archive::bench_districts())
    } else {
        archive::write(&store, cases).await?
    };
    // The setup's writes settled — the WAL folded into the file and the file on disk — as a
    // server's are long before anyone exports: the measures below time the reads and the
    // workbook, not the kernel writing back the 1.6 GB the benchmark has just written.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(store.pool())
        .await?;
    std::fs::File::open(&file)?.sync_all()?;
    let (from, to) = (
        NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
        NaiveDate::from_ymd_opt(2026, 12, 31).unwrap_or_default(),
    );
    let scheme = assessment::parse_scheme(assessment::DEFAULT_SCHEME)?;
    let limits = Limits::statutory();

    // From the figures projection, each measure with the peak memory reset before it.
    let assess = |details: Details| {
        let (store, scheme, limits) = (&store, &scheme, &limits);
        async move {
            assessment::assess(
                store,
                scheme,
                UnitKind::District,
                from..=to,
                events,
                limits,
                &details,
            )
            .await?
            .map_err(|e| anyhow::anyhow!("{e}"))
        }
    };
    reset_peak();
    let started = Instant::now();
    let result = assess(Details::None).await?;
    let projected = started.elapsed();
    println!(
        "assessment of {} districts over 2026 from the figures projection: {:.2} s, peak memory {:.0} MiB",
        result.units.len(),
        projected.as_secs_f64(),
        peak_mib()
    );
    reset_peak();
    let started = Instant::now();
    let listed = assess(Details::Level(UnitKind::District)).await?;
    let computed = started.elapsed();
    let created = listed.created();
    let tables = listed.into_tables(&scheme);
    let tabled = started.elapsed();
    let detail_rows: usize = tables
        .iter()
        .filter(|t| t.name.starts_with("明细"))
        .map(|t| t.rows.len())
        .sum();
    let bytes = zhzj_export::to_xlsx(&tables, created)?;
    println!(
        "XLSX export with its 明细 ({detail_rows} detail rows, {:.1} MiB), computed and written: {:.2} s (counted cases listed {:.2} s, tables {:.2} s, workbook {:.2} s), peak memory {:.0} MiB",
        bytes.len() as f64 / 1_048_576.0,
        started.elapsed().as_secs_f64(),
        computed.as_secs_f64(),
        (tabled - computed).as_secs_f64(),
        (started.elapsed() - tabled).as_secs_f64(),
        peak_mib()
    );
    drop((tables, bytes));
    as_of_measures(&store, &scheme, events, &limits).await?;
    push_and_agenda_measures(&store, events, &districts, &limits).await?;
    leader_view::measure(
        &store,
        &districts,
        NaiveDate::from_ymd_opt(2026, 12, 31),
        30,
    )
    .await?;

    // Baseline in the same run: the same assessment folded from the archive, as before.
    let year = Year {
        scheme: &scheme,
        from,
        to,
        position: events,
        limits: &limits,
    };
    archive_baseline(&store, &year, projected, &result).await?;
    store.close().await;
    leader_view::measure_on_10_june(dir.path(), cases, &districts).await?;
    Ok(())
}

/// The assessment's inputs: scheme, period, log position, time limits.
struct Year<'a> {
    scheme: &'a assessment::Scheme,
    from: NaiveDate,
    to: NaiveDate,
    position: i64,
    limits: &'a Limits,
}

/// The baseline: the same assessment folded from the archive, timed, with its peak memory; fails
/// unless its figures are the projection's (`result`, computed in `projected`).
async fn archive_baseline(
    store: &ReadStore,
    year: &Year<'_>,
    projected: std::time::Duration,
    result: &assessment::Assessment,
) -> anyhow::Result<()> {
    reset_peak();
    let started = Instant::now();
    let read =
        zhzj_figures::ArchivedEvent::read_up_to(store, &["case", "unit"], year.position).await?;
    let read_count = read.len();
    let archive = assessment::assess_events(
        &read,
        year.scheme,
        UnitKind::District,
        year.from,
        year.to,
        year.position,
        year.limits,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let folded = started.elapsed();
    println!(
        "baseline  the same assessment folded from the archive ({read_count} events read and decoded): {:.2} s, peak memory {:.0} MiB; the projection takes {:.3}× its time",
        folded.as_secs_f64(),
        peak_mib(),
        projected.as_secs_f64() / folded.as_secs_f64()
    );
    drop(read);
    anyhow::ensure!(
        archive
            .units
            .iter()
            .map(|u| (&u.figures, u.counted_cases))
            .eq(result.units.iter().map(|u| (&u.figures, u.counted_cases))),
        "the projection's figures differ from the archive's"
    );
    Ok(())
}
