//! The demo's settings and tables. The tables (Xiamen's districts and towns, the city's
//! departments, names, subject categories with their typical matters and measures) are data, in
//! `data/xiamen.toml`, made constants by `build.rs`.

use uuid::Uuid;

/// Namespace of every demo UUID (case ids and command ids).
pub(crate) const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x3f6a_91c2_5b7e_4d08_a1e4_6c2d_9b83_f05e);
/// Seed of the case generator.
pub(crate) const DEMO_SEED: u64 = 0x5a48_5a4a_2026_0001;
/// How many cases the demo has.
pub(crate) const CASE_COUNT: u32 = 300;
/// How long before `now` a bulletin is published when the usual day (the 3rd) is still ahead.
pub(crate) const BULLETIN_LEAD_MINUTES: i64 = 30;
/// How long before `now` the directory is set up.
pub(crate) const DIRECTORY_AGE_DAYS: i64 = 400;
/// The city unit.
pub(crate) const CITY_ID: &str = "xm";
/// China Standard Time is UTC+8 all year.
pub(crate) const CHINA_OFFSET_MINUTES: i64 = 8 * 60;
/// Office hours open at 09:00 (minutes after local midnight).
pub(crate) const OFFICE_OPENS: i64 = 9 * 60;
/// Office hours close at 17:30.
pub(crate) const OFFICE_CLOSES: i64 = 17 * 60 + 30;

/// A town or street: `(id suffix, name)`.
pub(crate) type Town = (&'static str, &'static str);

/// A district with its towns; `weight` is its share of the cases.
#[derive(Debug)]
pub(crate) struct District {
    pub(crate) key: &'static str,
    pub(crate) name: &'static str,
    pub(crate) short: &'static str,
    pub(crate) weight: u64,
    pub(crate) towns: &'static [Town],
}

/// A subject category with the matters, responsible departments and measures typical of it.
/// Matter templates use `{place}`, `{village}`, `{company}`, `{amount}` (万元), `{years}` and
/// `{area}` (平方米).
#[derive(Debug)]
pub(crate) struct Category {
    pub(crate) name: &'static str,
    pub(crate) matters: &'static [&'static str],
    pub(crate) departments: &'static [&'static str],
    pub(crate) measures: &'static [&'static str],
    /// Whether group petitions (群体访) are common in it.
    pub(crate) group_prone: bool,
}

// The tables of data/xiamen.toml: DISTRICTS, DEPARTMENTS, CATEGORIES and the lists of names,
// titles, measures and notes.
include!(concat!(env!("OUT_DIR"), "/tables.rs"));
