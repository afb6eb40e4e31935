//! `zhzj bench registrations`: registrations with personal data sealed against plaintext.

use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use zhzj_cases::CasesService;
use zhzj_store::{EventLog, SystemClock};

use crate::common::*;

/// Registrations straight through the service's handler, in plaintext (the baseline) and with
/// each petitioner sealed under a data key of their own (taken from a batch stored ahead in the
/// key bucket), in `rounds` alternating rounds.
pub(crate) async fn registrations_bench(
    client: &async_nats::Client,
    log: &EventLog,
    count: usize,
    writers: usize,
    rounds: usize,
) -> anyhow::Result<()> {
    let plain = CasesService::new(log.clone(), Arc::new(SystemClock));
    seed_directory(&plain).await?;
    let master = Arc::new(zhzj_privacy::MasterKey::from_hex(
        &zhzj_privacy::MasterKey::generate_hex()?,
        zhzj_privacy::Algorithm::default(),
    )?);
    let vault = zhzj_store::PersonalDataVault::connect(client.clone(), master).await?;
    let sealed = CasesService::new(log.clone(), Arc::new(SystemClock)).with_vault(vault);
    let rounds = rounds.max(1);
    let per_round = (count / rounds).max(1);
    println!(
        "Registrations: {} per path, {writers} concurrent writers, one petitioner each; \
         {rounds} rounds of {per_round} per path, plaintext first in odd rounds and sealed first \
         in even ones (the log grows as it runs)",
        per_round * rounds
    );
    let paths = [
        ("register, plaintext (baseline)", plain),
        ("register, petitioner sealed (AES-256-GCM)", sealed),
    ];
    let mut totals = [
        (Duration::ZERO, histogram()?),
        (Duration::ZERO, histogram()?),
    ];
    let mut stored_bytes = [0_u64; 2];
    let mut round_ratios = Vec::with_capacity(rounds);
    let mut next = 0;
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut round_elapsed = [Duration::ZERO; 2];
        for path in order {
            let service = paths[path].1.clone();
            let first = next;
            next += per_round;
            let bytes_before = log_bytes(log).await?;
            let (elapsed, hist) = timed_writers(writers, per_round, move |_, i| {
                let service = service.clone();
                async move {
                    match service
                        .handle(request(registration_with_personal_data(first + i)))
                        .await
                    {
                        zhzj_proto::CommandReply::Ok(_) => Ok(()),
                        zhzj_proto::CommandReply::Error(e) => {
                            bail!("registration refused: {e:?}")
                        }
                    }
                }
            })
            .await?;
            round_elapsed[path] = elapsed;
            totals[path].0 += elapsed;
            totals[path].1.add(&hist)?;
            stored_bytes[path] += log_bytes(log).await?.saturating_sub(bytes_before);
        }
        // Same count on both paths: the rate ratio is the inverse ratio of the times.
        round_ratios.push(round_elapsed[0].as_secs_f64() / round_elapsed[1].as_secs_f64());
    }
    let total = per_round * rounds;
    let mut rates = Vec::new();
    for ((label, _), (elapsed, hist)) in paths.iter().zip(&totals) {
        rates.push(print_rate(label, total, *elapsed, hist));
    }
    let per_commit = |bytes: u64| bytes / u64::try_from(total).unwrap_or(1);
    println!(
        "stored per registration (commit with headers, as nats-server counts it): plaintext {} B, sealed {} B",
        per_commit(stored_bytes[0]),
        per_commit(stored_bytes[1])
    );
    round_ratios.sort_by(f64::total_cmp);
    let listed: Vec<String> = round_ratios.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "ratio sealed / plaintext per round, sorted: {}",
        listed.join(" ")
    );
    if let [plain, sealed] = rates[..] {
        println!(
            "ratio sealed / plaintext: {:.2} over all rounds, median of rounds {:.2}",
            sealed / plain,
            round_ratios[round_ratios.len() / 2]
        );
    }
    Ok(())
}
