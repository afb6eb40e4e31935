//! The figures projection checked against the archive computation: for periods and log
//! positions, the projection's figures (every area's numerators, denominators, ranks and counted
//! cases) must be those the fold of the archive gives.

use anyhow::ensure;
use chrono::{DateTime, NaiveDate, Utc};
use zhzj_deadlines::Limits;
use zhzj_figures::{
    AgendaRequest, ArchivedEvent, Details, PushProgress, agenda_from, agenda_from_projection,
    facts, period_figures, push_progress_at, push_progress_from,
};
use zhzj_proto::events::UnitRef;
use zhzj_store::{ReadStore, china_midnight};

/// The archived events of `types` up to the archive's last position, once the figures projection
/// has reached it (an error if not), and the positions compared at: all of them when there are
/// few, else every `positions / 60`-th, and the last.
async fn archive_and_positions(
    store: &ReadStore,
    types: &[&str],
) -> anyhow::Result<(Vec<ArchivedEvent>, Vec<i64>)> {
    let last: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM event_archive")
        .fetch_one(store.pool())
        .await?;
    ensure!(
        facts::projection_reached(store, last).await?,
        "the figures projection has not reached the archive's position {last}"
    );
    let events = ArchivedEvent::read_up_to(store, types, last).await?;
    let mut positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    positions.dedup();
    let step = (positions.len() / 60).max(1);
    let mut chosen: Vec<i64> = positions.iter().copied().step_by(step).collect();
    chosen.push(last);
    Ok((events, chosen))
}

/// Compares, for each period and each log position of the archive (all of them when there are
/// few, else every `positions / 60`-th and the last), the figures from the projection with the
/// archive's (listing the counted cases, from the running sums, and summed in SQL); fails
/// naming the first period, position and area that differ. Returns how many
/// comparisons counted at least one case.
pub async fn assert_projection_matches_archive(
    store: &ReadStore,
    periods: &[(NaiveDate, NaiveDate)],
) -> anyhow::Result<usize> {
    let (events, chosen) = archive_and_positions(store, &["case", "unit"]).await?;
    let limits = Limits::default();
    let mut counted = 0;
    for &(first, next) in periods {
        for &position in &chosen {
            let upto = events.partition_point(|e| e.position <= position);
            let archive = period_figures(&events[..upto], first, next, &limits);
            let projected =
                facts::from_projection(store, first, next, position, &Details::All, &limits)
                    .await?;
            for (a, p) in archive
                .districts
                .iter()
                .chain(&archive.towns)
                .chain(&archive.departments)
                .zip(
                    projected
                        .districts
                        .iter()
                        .chain(&projected.towns)
                        .chain(&projected.departments),
                )
            {
                ensure!(
                    a == p,
                    "{first}..{next} at position {position}: {} differs\n archive:    {a:?}\n projection: {p:?}",
                    a.name
                );
            }
            ensure!(
                archive == projected,
                "{first}..{next} at position {position}: the counted cases differ\n archive:    {:?}\n projection: {:?}",
                archive.details,
                projected.details
            );
            // Without the counted cases listed, the figures and their counts are the same.
            let unlisted =
                facts::from_projection(store, first, next, position, &Details::None, &limits)
                    .await?;
            ensure!(
                unlisted.details.is_empty()
                    && (&unlisted.districts, &unlisted.towns, &unlisted.departments)
                        == (&archive.districts, &archive.towns, &archive.departments)
                    && unlisted.counted == archive.counted,
                "{first}..{next} at position {position}: the figures without the counted cases differ\n archive:    {:?} {:?}\n projection: {:?} {:?}",
                archive.districts,
                archive.counted,
                unlisted.districts,
                unlisted.counted
            );
            // The running sums with every case touched since counted one by one.
            let summed = facts::from_running_sums(store, first, next, position, &limits).await?;
            ensure!(
                (&summed.districts, &summed.towns, &summed.departments)
                    == (&archive.districts, &archive.towns, &archive.departments)
                    && summed.counted == archive.counted,
                "{first}..{next} at position {position}: the running sums differ\n archive:    {:?} {:?}\n sums:       {:?} {:?}",
                archive.districts,
                archive.counted,
                summed.districts,
                summed.counted
            );
            // Summed in SQL from every case's state, the route taken when many were touched.
            let in_sql = facts::from_sql_sums(store, first, next, position, &limits).await?;
            ensure!(
                (&in_sql.districts, &in_sql.towns, &in_sql.departments)
                    == (&archive.districts, &archive.towns, &archive.departments)
                    && in_sql.counted == archive.counted,
                "{first}..{next} at position {position}: the sums in SQL differ\n archive:    {:?} {:?}\n in SQL:     {:?} {:?}",
                archive.districts,
                archive.counted,
                in_sql.districts,
                in_sql.counted
            );
            if archive.details.values().any(|cases| !cases.is_empty()) {
                counted += 1;
            }
        }
    }
    Ok(counted)
}

/// Compares a push's progress read from its hard cases only ([`push_progress_at`]) with the
/// fold of the whole archive, at every log position of the archive (every `positions / 60`-th
/// when there are many) and at each of `nows`; fails naming the first that differs. Returns how
/// many comparisons found the push launched.
pub async fn assert_push_matches_archive(
    store: &ReadStore,
    quarter: &str,
    nows: &[DateTime<Utc>],
) -> anyhow::Result<usize> {
    let (first, next, _) = zhzj_deadlines::periods::quarter_bounds(quarter)
        .ok_or_else(|| anyhow::anyhow!("{quarter} is not a quarter"))?;
    let (start, end) = (china_midnight(first), china_midnight(next));
    let events = ArchivedEvent::read_up_to(store, &["case", "push"], i64::MAX).await?;
    let mut positions: Vec<i64> = events.iter().map(|e| e.position).collect();
    positions.dedup();
    let step = (positions.len() / 60).max(1);
    let mut chosen: Vec<i64> = positions.iter().copied().step_by(step).collect();
    chosen.extend(positions.last());
    let mut launched = 0;
    for &position in &chosen {
        let upto = events.partition_point(|e| e.position <= position);
        for &now in nows {
            let archive = push_progress_from(&events[..upto], quarter, start, end, now).map(|p| {
                PushProgress {
                    as_of_position: position,
                    ..p
                }
            });
            let read = push_progress_at(store, quarter, start, end, now, position).await?;
            ensure!(
                archive == read,
                "{quarter} at position {position}, now {now}: the push's progress differs\n archive: {archive:?}\n read:    {read:?}"
            );
            launched += usize::from(read.is_some());
        }
    }
    Ok(launched)
}

/// [`assert_agenda_matches_archive`] for meetings of 思明区, of which more than `at_least`
/// must list a case.
pub async fn assert_siming_agenda_matches_archive(
    store: &ReadStore,
    held_ats: &[DateTime<Utc>],
    at_least: usize,
) -> anyhow::Result<()> {
    let siming = UnitRef {
        id: "xm-siming".into(),
        name: "思明区".into(),
    };
    let listed = assert_agenda_matches_archive(store, &siming, held_ats).await?;
    ensure!(listed > at_least, "only {listed} agendas listed a case");
    Ok(())
}

/// Compares the agenda of a meeting of `unit` drawn from the cases the figures projection
/// names ([`agenda_from_projection`]) with the fold of the whole archive, at each log position
/// of the archive (every `positions / 60`-th when there are many, and the last) and for a
/// meeting held at each of `held_ats` (idle after 10 and after 30 days); fails naming the first
/// that differs. Returns how many comparisons listed at least one case.
pub async fn assert_agenda_matches_archive(
    store: &ReadStore,
    unit: &UnitRef,
    held_ats: &[DateTime<Utc>],
) -> anyhow::Result<usize> {
    let (events, chosen) =
        archive_and_positions(store, &["case", "meeting", "unit", "supervision"]).await?;
    let mut listed = 0;
    for &position in &chosen {
        let upto = events.partition_point(|e| e.position <= position);
        for &held_at in held_ats {
            for idle_days in [10, 30] {
                let request = AgendaRequest {
                    meeting_id: "agenda-check".into(),
                    title: "调度会".into(),
                    week: "2026-W00".into(),
                    unit: unit.clone(),
                    held_at,
                    as_of_position: position,
                    idle_days,
                    limits: Limits::default(),
                };
                let archive = agenda_from(&events[..upto], &request);
                let read = agenda_from_projection(store, &request).await?;
                ensure!(
                    archive == read,
                    "agenda of {} held at {held_at}, position {position}, idle after {idle_days} days: differs\n archive: {archive:?}\n read:    {read:?}",
                    unit.name
                );
                listed += usize::from(read.sections.iter().any(|s| !s.rows.is_empty()));
            }
        }
    }
    Ok(listed)
}
