//! `zhzj nats-credentials`, `zhzj log init` and `zhzj verify`: the commands of the trust boundary.

use std::process::ExitCode;

use anyhow::Context;
use zhzj_store::TrustedKeys;
use zhzj_trust::nats_access::{self, NatsRole};

use crate::cli::{NatsCredentialsArgs, VerifyArgs};
use crate::connections::{connect_nats, nats_url, trusted_keys_path};

/// `zhzj nats-credentials --dir DIR`.
pub fn nats_credentials(args: &NatsCredentialsArgs) -> anyhow::Result<()> {
    nats_access::ensure_credentials(&args.dir)?;
    println!(
        "{}: the nats-server configuration admitting them (include it in the server's)",
        nats_access::authorization_file(&args.dir).display()
    );
    for role in NatsRole::ALL {
        let holder = match role {
            NatsRole::Admin => "zhzj log init only; keep it offline".to_owned(),
            NatsRole::Cli => "operators' zhzj command / status / rebuild / verify".to_owned(),
            _ => format!("zhzj run {}", role.name()),
        };
        println!(
            "{}: {holder}",
            nats_access::nkey_file(&args.dir, role).display()
        );
    }
    Ok(())
}

/// `zhzj verify`: exit code 1 when the log was tampered with.
pub async fn verify(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let options = &args.options;
    let trusted_path = trusted_keys_path(options);
    let keys = TrustedKeys::load(&trusted_path)
        .with_context(|| "the trusted keys (--trusted-keys / ZHZJ_TRUSTED_KEYS)".to_owned())?;
    let url = nats_url(options)?;
    let client = connect_nats(&url, options, NatsRole::Cli).await?;
    let log = zhzj_store::EventLog::open_existing(client).await?;
    let started = std::time::Instant::now();
    let verdict = zhzj_store::verify_log(&log, keys, &args.at).await?;
    let seconds = started.elapsed().as_secs_f64();
    match verdict {
        Ok(verified) => {
            println!(
                "verified up to position {} (已核验至日志位置 {}): {} signed commits, {} seals, {seconds:.1} s",
                verified.through, verified.through, verified.signed_commits, verified.seals
            );
            match &verified.last_seal {
                Some(seal) => println!(
                    "seal {} (封印), through position {}: {}",
                    seal.position, seal.through, seal.log_digest
                ),
                None => println!("no seal yet (尚无封印)"),
            }
            println!(
                "log digest through position {}: {}",
                verified.through, verified.log_digest
            );
            if verified.unchained_commits > 0 {
                let before = verified
                    .chain_starts_at
                    .map_or(verified.through + 1, |start| start);
                println!(
                    "unchained before position {before} (此前 {} 件提交早于签名链，无法核验)",
                    verified.unchained_commits
                );
            }
            for (position, digest) in &verified.digests_at {
                println!("log digest through position {position}: {digest}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(finding) => {
            println!("TAMPERED (日志被改动): {finding}");
            Ok(ExitCode::FAILURE)
        }
    }
}
