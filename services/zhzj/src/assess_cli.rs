//! `zhzj assess`: the year-end assessment (年考核) from the command line, computed straight from
//! the read store's event archive with a shipped scheme or a scheme file — the way to try a new
//! scheme before it is used, and to produce the workbook for a period.

use std::path::Path;

use anyhow::{Context, bail};
use zhzj_figures::Details;
use zhzj_figures::assessment::{self, Scheme};
use zhzj_proto::events::UnitKind;
use zhzj_store::ReadStore;

use crate::cli::AssessArgs;
use crate::connections::database_url;
use crate::roles::bureau_settings;

fn scheme(name: &str) -> anyhow::Result<Scheme> {
    let text = match name {
        "default" => assessment::DEFAULT_SCHEME.to_owned(),
        "dachuan" => assessment::DACHUAN_SCHEME.to_owned(),
        path => std::fs::read_to_string(path).with_context(|| format!("reading scheme {path}"))?,
    };
    assessment::parse_scheme(&text).with_context(|| format!("scheme {name}"))
}

/// `zhzj assess`.
pub async fn assess(args: AssessArgs) -> anyhow::Result<()> {
    let scheme = scheme(&args.scheme)?;
    let level = match args.level.as_str() {
        "district" => UnitKind::District,
        "town" => UnitKind::Town,
        "department" => UnitKind::Department,
        other => bail!("--level must be district, town or department, not {other}"),
    };
    let limits = bureau_settings(&args.options)?.projector.limits.clone();
    let store = ReadStore::connect(&database_url(&args.options)).await?;
    let position = match args.position {
        Some(position) => position,
        None => sqlx::query_scalar::<_, Option<i64>>("SELECT MAX(position) FROM event_archive")
            .fetch_one(store.pool())
            .await?
            .unwrap_or(0),
    };
    let result = assessment::assess(
        &store,
        &scheme,
        level,
        args.from..=args.to,
        position,
        &limits,
        // The workbook lists the counted cases of the units it ranks; the ranking alone none.
        &if args.output.is_some() {
            Details::Level(level)
        } else {
            Details::None
        },
    )
    .await?
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{}（{}） {} 至 {}，日志位置 {}",
        result.scheme, result.scheme_version, result.from, result.to, result.as_of_position
    );
    for unit in &result.units {
        println!("{:>3}  {:<12} {:>7.2}", unit.rank, unit.name, unit.total);
    }
    if let Some(output) = &args.output {
        let created = result.created();
        let tables = result.into_tables(&scheme);
        let bytes = match Path::new(output).extension().and_then(|e| e.to_str()) {
            Some("xlsx") => zhzj_export::to_xlsx(&tables, created)?,
            Some("csv") => zhzj_export::to_csv(
                tables
                    .get(1)
                    .context("an assessment always has its ranking sheet")?,
            )?,
            _ => bail!("--output must end in .xlsx or .csv"),
        };
        std::fs::write(output, bytes).with_context(|| format!("writing {output}"))?;
        println!("已写入 {output}");
    }
    store.close().await;
    Ok(())
}
