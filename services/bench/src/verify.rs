//! `zhzj bench verify`: `zhzj verify` over a log of signed commits against reading it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zhzj_store::EventLog;

/// `zhzj verify` of a signed log of `events` commits, against reading the same log through the
/// same ordered consumer with nothing checked.
pub(crate) async fn verify_bench(
    client: &async_nats::Client,
    log: &EventLog,
    events: usize,
    cases: usize,
) -> anyhow::Result<()> {
    println!("generating {events} signed, chained commits (one event each) over {cases} cases …");
    let signer = Arc::new(zhzj_store::CommitSigner::generate()?);
    let generated = generate_log(client, events, cases, Some(&signer)).await?;
    println!(
        "generated in {:.1}s ({:.0} commits/s signed and published)",
        generated.as_secs_f64(),
        events as f64 / generated.as_secs_f64()
    );
    let sealer = zhzj_store::Sealer::new(log.clone(), Arc::clone(&signer));
    let started = Instant::now();
    sealer.seal(None, "bench").await?;
    println!(
        "first seal of the whole log: {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let keys = signer.trusted();
    // Reference: the whole log read through an ordered consumer, nothing done with it.
    let started = Instant::now();
    let read = zhzj_store::seals::count_messages(log).await?;
    let reading = started.elapsed();
    println!(
        "reference: read the log, nothing checked     {read:>9} messages in {:>6.2}s = {:>9.0}/s",
        reading.as_secs_f64(),
        read as f64 / reading.as_secs_f64()
    );
    let started = Instant::now();
    let verdict = zhzj_store::verify_log(log, keys, &[]).await?;
    let verifying = started.elapsed();
    let verified =
        verdict.map_err(|finding| anyhow::anyhow!("the log did not verify: {finding}"))?;
    println!(
        "zhzj verify (hashes, chain, signatures)      {:>9} messages in {:>6.2}s = {:>9.0}/s ({:.2} of reading)",
        verified.through,
        verifying.as_secs_f64(),
        verified.through as f64 / verifying.as_secs_f64(),
        reading.as_secs_f64() / verifying.as_secs_f64()
    );
    println!(
        "bar: {events} events verified in <= 30 s: {}",
        if verifying.as_secs() <= 30 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

/// Generates a realistic history straight into the stream (see [`zhzj_cases::synthetic`]).
pub(crate) async fn generate_log(
    client: &async_nats::Client,
    events: usize,
    cases: usize,
    signer: Option<&zhzj_store::CommitSigner>,
) -> anyhow::Result<Duration> {
    let js = async_nats::jetstream::new(client.clone());
    let history = zhzj_cases::synthetic::SyntheticHistory {
        commits: events,
        cases,
        note_chars: 0,
        first_case: 0,
    };
    Ok(
        zhzj_cases::synthetic::write_signed_history(&js, history, signer)
            .await?
            .elapsed,
    )
}
