//! Command-line interface: every setting is a flag and an environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The settings every subcommand takes, with their defaults, for `zhzj --help`.
const SETTINGS_HELP: &str = "\
Settings (flag / environment variable / default; `zhzj <command> --help` for each command's own):
  --data-dir / ZHZJ_DATA_DIR / ./data
  --nats-url / ZHZJ_NATS_URL / none: `up` starts a local nats-server, the others read data/nats.url
  --database-url / ZHZJ_DATABASE_URL / sqlite under the data dir (data/zhzj.sqlite)
  --stream-replicas / ZHZJ_STREAM_REPLICAS / 1
  --review-chain / ZHZJ_REVIEW_CHAIN / district,city      (up, run cases)
  --internal-limits / ZHZJ_INTERNAL_LIMITS / none: the statutory limits (up, run projector/gateway, rebuild)
  --supervision-rules / ZHZJ_SUPERVISION_RULES / none: 催办→督办→挂牌督办, 1 day overdue, 5 days to answer (up, run gateway)
  --escalation-interval-secs / ZHZJ_ESCALATION_INTERVAL_SECS / 60: escalation, warnings, notifications (up, run gateway)
  --http / ZHZJ_HTTP / 127.0.0.1:8080                      (up, run gateway)
  --body-limit / ZHZJ_BODY_LIMIT / 65536 bytes            (up, run gateway)
  --read-your-writes-ms / ZHZJ_READ_YOUR_WRITES_MS / 5000 (up, run gateway)
  --ready-max-lag / ZHZJ_READY_MAX_LAG / 10000 events     (up, run gateway)
  --session-hours / ZHZJ_SESSION_HOURS / 12               (up, run gateway)
  --duplicate-rule / ZHZJ_DUPLICATE_RULE / id-number-or-name-town-category (up, run gateway)
  --demo / ZHZJ_DEMO / off                                (up)
Security (README, \"Security\"):
  --nats-credentials / ZHZJ_NATS_CREDENTIALS / data/nats-credentials when it exists: <role>.nk per role
  --nats-nkey / ZHZJ_NATS_NKEY, --nats-creds / ZHZJ_NATS_CREDS, --nats-user / ZHZJ_NATS_USER,
  --nats-password / ZHZJ_NATS_PASSWORD / none: one role's own credential instead
  --nats-tls-ca / ZHZJ_NATS_TLS_CA, --nats-tls-cert / ZHZJ_NATS_TLS_CERT,
  --nats-tls-key / ZHZJ_NATS_TLS_KEY / none: TLS to NATS (required once a CA is given)
  --nats-inbox-prefix / ZHZJ_NATS_INBOX_PREFIX / _INBOX_zhzj_<role> when authenticated
  --signing-key / ZHZJ_SIGNING_KEY / data/signing.key, made when missing (up, run cases/campaign)
  --trusted-keys / ZHZJ_TRUSTED_KEYS / data/trusted-keys  (verify)
  --seal-interval-secs / ZHZJ_SEAL_INTERVAL_SECS / 300    (up, run cases)";

/// zhzj — 治重化积 backlog-resolution tracker.
#[derive(Debug, Parser)]
#[command(name = "zhzj", version, about, after_help = SETTINGS_HELP)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Commands,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Run every role in one process (starts a local nats-server when no NATS URL is given).
    Up(UpArgs),
    /// Run one role, for a distributed deployment.
    Run(RunArgs),
    /// Rebuild a projection from position 1 into new tables and swap them in.
    Rebuild(RebuildArgs),
    /// Show each projection's position, lag and dead letters.
    Status(CommonOptions),
    /// Send one command to the cases service and print its reply.
    Command(CommandArgs),
    /// Print the checklist view.
    Checklist(CommonOptions),
    /// Manage accounts.
    User(UserArgs),
    /// Import a ledger (台账, .xlsx or .csv in the template) through the running system.
    Import(LedgerArgs),
    /// Export the ledger (.xlsx or .csv, in the import template) from the running system.
    Export(LedgerArgs),
    /// Move the org directory (units and leaders) between instances as a TOML or JSON file.
    #[command(subcommand)]
    Org(OrgAction),
    /// Run the year-end assessment (年考核) of a period from the read store.
    Assess(AssessArgs),
    /// Run a benchmark (see BENCHMARKS.md).
    Bench(zhzj_bench::BenchArgs),
    /// Write per-role NATS credentials and the nats-server configuration that admits them.
    NatsCredentials(NatsCredentialsArgs),
    /// Administer the log's stream with the admin credential.
    #[command(subcommand)]
    Log(LogAction),
    /// Read the whole log and check every commit's signature and chain and every seal.
    Verify(VerifyArgs),
    /// The master key of petitioners' personal data.
    #[command(subcommand)]
    Keys(KeysAction),
    /// Erase one petitioner's personal data (PIPL 第四十七条): their data key is destroyed and
    /// everything shows 已删除; the case, its figures and its history stay.
    Erase(EraseArgs),
    /// The retention rule: list (`--dry-run`) or erase the petitioners of cases crossed off
    /// longer ago than the retention period, with the reason 保存期限届满.
    Retention(RetentionArgs),
}

/// `zhzj erase`.
#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The case's id (as in its address, `/cases/<id>`).
    #[arg(long = "case")]
    pub case_id: uuid::Uuid,
    /// Which petitioner, as the case lists them: 1 for the first.
    #[arg(long)]
    pub petitioner: u32,
    /// Why (kept in the case's history), e.g. 信访人申请删除.
    #[arg(long)]
    pub reason: String,
    /// The administrator erasing (recorded as the actor).
    #[arg(long, env = "ZHZJ_ACTOR", default_value = "admin")]
    pub actor: String,
    /// Settings.
    #[command(flatten)]
    pub options: CommonOptions,
}

/// `zhzj retention`.
#[derive(Debug, Args)]
pub struct RetentionArgs {
    /// How many years after crossing off (销号) a case's petitioners are kept.
    #[arg(long, env = "ZHZJ_RETENTION_YEARS")]
    pub retention_years: u32,
    /// Only print who is due; erase nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The day to count from (YYYY-MM-DD); default today.
    #[arg(long)]
    pub as_of: Option<chrono::NaiveDate>,
    /// The administrator erasing (recorded as the actor).
    #[arg(long, env = "ZHZJ_ACTOR", default_value = "admin")]
    pub actor: String,
    /// Settings.
    #[command(flatten)]
    pub options: CommonOptions,
}

/// `zhzj keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Write a new random master key (64 hex digits, mode 0600) to a file that must not exist.
    NewMasterKey {
        /// The file to write.
        path: PathBuf,
    },
    /// Wrap every data key again with a new master key (the admin credential): the sealed data
    /// in the log does not change. Afterwards start every role with the new key
    /// (`--master-key-file`) and destroy the old one.
    Rotate(Box<RotateArgs>),
}

/// `zhzj keys rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The new master key's file (`zhzj keys new-master-key`); the current one is
    /// `--master-key-file` (default `<data dir>/master.key`).
    #[arg(long)]
    pub new_master_key_file: PathBuf,
    #[command(flatten)]
    pub options: CommonOptions,
}

/// `zhzj nats-credentials`.
#[derive(Debug, Args)]
pub struct NatsCredentialsArgs {
    /// Where to write `<role>.nk` (0600) and `authorization.conf`; existing keys are kept.
    #[arg(long)]
    pub dir: PathBuf,
}

/// `zhzj log …`.
#[derive(Debug, Subcommand)]
pub enum LogAction {
    /// Create the stream, or bring one an earlier version made up to date (deny deletes and
    /// purges, take seals). Needs the admin credential (`--nats-nkey admin.nk`).
    Init(CommonOptions),
}

/// `zhzj verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also print the log digest through these positions (to check a printed export).
    #[arg(long, value_delimiter = ',')]
    pub at: Vec<u64>,
    /// Settings.
    #[command(flatten)]
    pub options: CommonOptions,
}

/// `zhzj up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Load the demo organisation (Xiamen), about 300 cases and the demo accounts; loading it
    /// again adds nothing. Off by default.
    #[arg(long, env = "ZHZJ_DEMO")]
    pub demo: bool,
    /// HTTP settings.
    #[command(flatten)]
    pub http: HttpOptions,
    /// Settings.
    #[command(flatten)]
    pub options: CommonOptions,
}

/// Settings of the HTTP gateway.
#[derive(Debug, Clone, Args)]
pub struct HttpOptions {
    /// Address the HTTP gateway listens on.
    #[arg(long = "http", env = "ZHZJ_HTTP", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "ZHZJ_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    /// How long a write's reply waits for the read views to show it, in milliseconds.
    #[arg(long, env = "ZHZJ_READ_YOUR_WRITES_MS", default_value_t = 5_000)]
    pub read_your_writes_ms: u64,
    /// `/readyz` fails when a projection is more events behind than this.
    #[arg(long, env = "ZHZJ_READY_MAX_LAG", default_value_t = 10_000)]
    pub ready_max_lag: u64,
    /// How long a login lasts, in hours.
    #[arg(long, env = "ZHZJ_SESSION_HOURS", default_value_t = 12)]
    pub session_hours: i64,
    /// How registrations are checked for duplicates: by ID number only, or also by the same
    /// name in the same town and category.
    #[arg(
        long,
        env = "ZHZJ_DUPLICATE_RULE",
        value_enum,
        default_value = "id-number-or-name-town-category"
    )]
    pub duplicate_rule: DuplicateRuleArg,
    /// Duplicate checks (lookups of a petitioner by ID number or name) one user may make a
    /// minute; more are answered 429.
    #[arg(long, env = "ZHZJ_DUPLICATE_CHECKS_PER_MINUTE", default_value_t = std::num::NonZeroU32::new(30).unwrap_or(std::num::NonZeroU32::MIN))]
    pub duplicate_checks_per_minute: std::num::NonZeroU32,
    /// A session unused this many minutes ends (beside `--session-hours`).
    #[arg(long, env = "ZHZJ_SESSION_IDLE_MINUTES", default_value_t = 30)]
    pub session_idle_minutes: i64,
    /// Failed logins of one account within the lockout window that lock it.
    #[arg(long, env = "ZHZJ_LOGIN_MAX_FAILURES", default_value_t = 5)]
    pub login_max_failures: u32,
    /// Failed logins from one client address within the lockout window that lock it.
    #[arg(
        long,
        env = "ZHZJ_LOGIN_MAX_FAILURES_PER_ADDRESS",
        default_value_t = 30
    )]
    pub login_max_failures_per_address: u32,
    /// How long failed logins are counted, and a lock lasts, in minutes.
    #[arg(long, env = "ZHZJ_LOGIN_LOCKOUT_MINUTES", default_value_t = 15)]
    pub login_lockout_minutes: i64,
    /// The address users reach the gateway at (`https://…` makes the session cookie `Secure`).
    #[arg(long, env = "ZHZJ_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Trust `X-Forwarded-For` and `X-Forwarded-Proto` (set only behind a reverse proxy that
    /// overwrites them).
    #[arg(long, env = "ZHZJ_TRUST_FORWARDED_HEADERS")]
    pub trust_forwarded_headers: bool,
    /// Where `/metrics` is served, apart from the application (default 127.0.0.1:9464, or a
    /// free loopback port when that one is taken; written to `<data dir>/metrics.url`).
    #[arg(long, env = "ZHZJ_METRICS_ADDR")]
    pub metrics_addr: Option<String>,
    /// Password rules.
    #[command(flatten)]
    pub accounts: AccountOptions,
}

/// `--duplicate-rule`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DuplicateRuleArg {
    /// The same petitioner ID number.
    IdNumber,
    /// The same ID number, or the same name in the same town and category.
    IdNumberOrNameTownCategory,
}

/// `zhzj assess`.
#[derive(Debug, Args)]
pub struct AssessArgs {
    /// The scheme: `default`, `dachuan`, or the path of a scheme file (TOML).
    #[arg(long, default_value = "default")]
    pub scheme: String,
    /// The level assessed: district, town or department.
    #[arg(long, default_value = "district")]
    pub level: String,
    /// The first day of the period (YYYY-MM-DD).
    #[arg(long)]
    pub from: chrono::NaiveDate,
    /// The last day of the period (YYYY-MM-DD).
    #[arg(long)]
    pub to: chrono::NaiveDate,
    /// The log position to compute at (default: the archive's last).
    #[arg(long)]
    pub position: Option<i64>,
    /// Also write the workbook (.xlsx) or the ranking (.csv) here.
    #[arg(long)]
    pub output: Option<String>,
    /// Settings.
    #[command(flatten)]
    pub options: CommonOptions,
}

/// `zhzj import` / `zhzj export`.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// The file: `.xlsx` or `.csv` for a ledger, `.toml` or `.json` for a directory.
    pub file: PathBuf,
    /// The account to act as (the import is checked against its scope).
    #[arg(long, env = "ZHZJ_USERNAME")]
    pub username: String,
    /// Its password.
    #[arg(long, env = "ZHZJ_PASSWORD")]
    pub password: String,
    /// The gateway's URL; default: the one the running `zhzj up` wrote to `<data dir>/http.url`.
    #[arg(long, env = "ZHZJ_URL")]
    pub url: Option<String>,
    /// Where `zhzj up` keeps its data.
    #[arg(long, env = "ZHZJ_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// `zhzj org …`: the directory through the running system, as an administrator.
#[derive(Debug, Subcommand)]
pub enum OrgAction {
    /// Write the whole directory to a `.toml` or `.json` file, parents before children.
    Export(LedgerArgs),
    /// Add the units and leaders of a `.toml` or `.json` directory file: checked whole first
    /// (nothing is written if any entry is wrong); entries already present are skipped.
    Import(LedgerArgs),
}

/// `zhzj user …`.
#[derive(Debug, Args)]
pub struct UserArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: UserAction,
}

/// Account actions (用户管理 from the command line; the same rules as the API and the page).
#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account. Its password must be changed at the first login unless
    /// `--ready-to-use` (an account its own holder set up).
    Add {
        /// Login name (letters, digits, `-`, `_`, `.`).
        #[arg(long)]
        username: String,
        /// Password, by the password rules (default: 10+ characters, three of lower-case,
        /// upper-case, digits and other symbols, not containing the username).
        #[arg(long, env = "ZHZJ_NEW_PASSWORD")]
        password: String,
        /// Name shown in the interface; the username when absent.
        #[arg(long)]
        display_name: Option<String>,
        /// Roles, comma-separated: admin, auditor (the audit trail only), coordinator, reviewer,
        /// leader, viewer (read-only).
        #[arg(long, default_value = "coordinator", value_delimiter = ',')]
        roles: Vec<String>,
        /// The org unit the user works in (bounds what they see and do); must be in the
        /// directory.
        #[arg(long)]
        unit: Option<String>,
        /// The leader (from the directory) the user is, for the `leader` role.
        #[arg(long)]
        leader: Option<String>,
        /// The password need not be changed at the first login.
        #[arg(long)]
        ready_to_use: bool,
        /// Settings.
        #[command(flatten)]
        options: CommonOptions,
        /// Password rules.
        #[command(flatten)]
        rules: AccountOptions,
    },
    /// List every account with its roles, unit and state (disabled, locked, password to change).
    List {
        /// Settings.
        #[command(flatten)]
        options: CommonOptions,
    },
    /// Change an account's roles, unit and leader (checked against the directory).
    Set {
        /// The account.
        username: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// The org unit.
        #[arg(long)]
        unit: Option<String>,
        /// The leader the user is.
        #[arg(long)]
        leader: Option<String>,
        /// Settings.
        #[command(flatten)]
        options: CommonOptions,
    },
    /// Set a new password that must be changed at the next login; ends the account's sessions.
    ResetPassword {
        /// The account.
        username: String,
        /// The new password (by the password rules).
        #[arg(long, env = "ZHZJ_NEW_PASSWORD")]
        password: String,
        /// Settings.
        #[command(flatten)]
        options: CommonOptions,
        /// Password rules.
        #[command(flatten)]
        rules: AccountOptions,
    },
    /// Lift a lockout by failed logins.
    Unlock {
        /// The account.
        username: String,
        /// Settings.
        #[command(flatten)]
        options: CommonOptions,
    },
    /// Disable an account (its sessions end; it can no longer log in).
    Disable {
        /// The account.
        username: String,
        /// Settings.
        #[command(flatten)]
        options: CommonOptions,
    },
    /// Enable a disabled account.
    Enable {
        /// The account.
        username: String,
        /// Settings.
        #[command(flatten)]
        options: CommonOptions,
    },
    /// End every session of an account (强制下线).
    EndSessions {
        /// The account.
        username: String,
        /// Settings.
        #[command(flatten)]
        options: CommonOptions,
    },
}

/// Password, lockout and session rules (the gateway's, and `zhzj user`'s password rules).
#[derive(Debug, Clone, Args)]
pub struct AccountOptions {
    /// Fewest characters of a password.
    #[arg(long, env = "ZHZJ_PASSWORD_MIN_LENGTH", default_value_t = 10)]
    pub password_min_length: usize,
    /// Fewest character classes of a password (of lower-case, upper-case, digits, others).
    #[arg(long, env = "ZHZJ_PASSWORD_MIN_CLASSES", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub password_min_classes: u8,
    /// A password older than this many days must be changed at the next login (default: no
    /// maximum age).
    #[arg(long, env = "ZHZJ_PASSWORD_MAX_AGE_DAYS")]
    pub password_max_age_days: Option<u32>,
}

impl AccountOptions {
    /// The password rules.
    pub fn password_policy(&self) -> zhzj_gateway::PasswordPolicy {
        zhzj_gateway::PasswordPolicy {
            min_length: self.password_min_length,
            min_classes: usize::from(self.password_min_classes),
        }
    }
}

/// Settings shared by the commands that talk to a running system.
#[derive(Debug, Clone, Args)]
pub struct CommonOptions {
    /// Directory for the SQLite database and the local nats-server's store.
    #[arg(long, env = "ZHZJ_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// NATS server URL, or a comma-separated list of a cluster's URLs
    /// (`nats://a:4222,nats://b:4222`). When absent, `up` starts a local nats-server (from PATH)
    /// on a free port with its store under the data dir; other commands use the URL `up` wrote
    /// there.
    #[arg(long, env = "ZHZJ_NATS_URL")]
    pub nats_url: Option<String>,
    /// How long a request to NATS (a command, a write's acknowledgement, a stream lookup) waits
    /// before it fails, in milliseconds: with NATS down or without a stream leader, writes fail
    /// with 503 and Retry-After within this bound.
    #[arg(long, env = "ZHZJ_NATS_REQUEST_TIMEOUT_MS", default_value_t = 3_000)]
    pub nats_request_timeout_ms: u64,
    /// Read-store URL: `sqlite://PATH` or `postgres://…`. Default: SQLite file `zhzj.sqlite`
    /// under the data dir.
    #[arg(long, env = "ZHZJ_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Replicas of the event stream when it is created (3 on a NATS cluster).
    #[arg(long, env = "ZHZJ_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// The levels that review a resolution claim, in order; the last one's acceptance crosses
    /// the case off (销号).
    #[arg(
        long,
        env = "ZHZJ_REVIEW_CHAIN",
        value_enum,
        value_delimiter = ',',
        default_value = "district,city"
    )]
    pub review_chain: Vec<ReviewLevelArg>,
    /// The bureau's stricter internal time limits, e.g. `handling=45,acceptance_notice=10,
    /// first_review_answer=20` (days; `3wd` for working days). Changing them rebuilds the
    /// lifecycle view when the projector starts.
    #[arg(long, env = "ZHZJ_INTERNAL_LIMITS", default_value = "")]
    pub internal_limits: String,
    /// The supervision rules file (TOML, `deploy/supervision-rules.toml` is an example): when
    /// an overdue supervision order escalates and how long the addressee then has to answer,
    /// the early warnings' thresholds, the daily digest's hour, the SMTP server and each unit's
    /// outbound channels (mail, WeCom and DingTalk robots).
    #[arg(long, env = "ZHZJ_SUPERVISION_RULES")]
    pub supervision_rules: Option<std::path::PathBuf>,
    /// Seconds between the supervision watch's passes: escalation, warnings, notifications.
    #[arg(long, env = "ZHZJ_ESCALATION_INTERVAL_SECS", default_value_t = 60)]
    pub escalation_interval_secs: u64,
    /// Credentials and keys.
    #[command(flatten)]
    pub security: SecurityOptions,
}

/// How a process authenticates to NATS, and the keys that sign and verify commits.
#[derive(Debug, Clone, Args)]
pub struct SecurityOptions {
    /// Directory of per-role NATS credentials (`<role>.nk`, as `zhzj nats-credentials` and
    /// `zhzj up` write them); each role connects with its own. Default: `<data dir>/nats-credentials`
    /// when it exists.
    #[arg(long, env = "ZHZJ_NATS_CREDENTIALS")]
    pub nats_credentials: Option<PathBuf>,
    /// An NKey seed file to connect with, instead of the role's file in the credentials directory.
    #[arg(long, env = "ZHZJ_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,
    /// A JWT credentials file (operator mode) to connect with.
    #[arg(long, env = "ZHZJ_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// A NATS user name to connect with (with `--nats-password`).
    #[arg(long, env = "ZHZJ_NATS_USER")]
    pub nats_user: Option<String>,
    /// The NATS user's password.
    #[arg(long, env = "ZHZJ_NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<String>,
    /// CA certificate the NATS servers' certificates chain to; TLS is then required.
    #[arg(long, env = "ZHZJ_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// Client certificate for servers that verify clients.
    #[arg(long, env = "ZHZJ_NATS_TLS_CERT")]
    pub nats_tls_cert: Option<PathBuf>,
    /// The client certificate's private key.
    #[arg(long, env = "ZHZJ_NATS_TLS_KEY")]
    pub nats_tls_key: Option<PathBuf>,
    /// Prefix of reply inboxes; default `_INBOX_zhzj_<role>` when authenticated (what the
    /// generated permissions allow), NATS's own `_INBOX` otherwise.
    #[arg(long, env = "ZHZJ_NATS_INBOX_PREFIX")]
    pub nats_inbox_prefix: Option<String>,
    /// The command services' commit signing key (Ed25519 seed in hex, mode 0600). Default:
    /// `<data dir>/signing.key`, made on first start (a path given here must exist).
    #[arg(long, env = "ZHZJ_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// The public keys `zhzj verify` accepts, one `ed25519 <hex>` per line (keep old ones after
    /// a rotation). Default: `<data dir>/trusted-keys`, to which a new signing key adds itself.
    #[arg(long, env = "ZHZJ_TRUSTED_KEYS")]
    pub trusted_keys: Option<PathBuf>,
    /// The master key that wraps petitioners' data keys (64 hex digits, mode 0600). Default:
    /// `<data dir>/master.key`, made by `zhzj up` on first start; keep a copy offline — without it
    /// no petitioner's personal data can be read.
    #[arg(long, env = "ZHZJ_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The cipher of petitioners' personal data: `aes-256-gcm` or `sm4-gcm` (国密 SM4).
    #[arg(long, env = "ZHZJ_PERSONAL_DATA_CIPHER", default_value = "aes-256-gcm")]
    pub personal_data_cipher: String,
    /// Seconds between the seals a command service appends while the log grows.
    #[arg(long, env = "ZHZJ_SEAL_INTERVAL_SECS", default_value_t = 300)]
    pub seal_interval_secs: u64,
}

/// A level of the review chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReviewLevelArg {
    /// 区联席办.
    District,
    /// 市信访局.
    City,
}

/// `zhzj run <role>`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The role.
    #[arg(value_enum)]
    pub role: Role,
    /// HTTP settings (for the gateway).
    #[command(flatten)]
    pub http: HttpOptions,
    /// Settings.
    #[command(flatten)]
    pub options: CommonOptions,
}

impl Commands {
    /// Whether the command runs on a single-threaded runtime. The command services (`run cases`,
    /// `run campaign`, and the benchmark's reference responder that mirrors them) only move
    /// messages and decide in microseconds: one event loop serves them with fewer wake-ups across
    /// threads and batches their writes to NATS (`zhzj bench commits` measured 36–37 µs of CPU
    /// per command on the multi-threaded runtime, 16–21 µs on one thread). They scale out as
    /// more processes in the service's queue group. Everything else uses every core.
    pub fn single_threaded(&self) -> bool {
        match self {
            Commands::Run(args) => matches!(args.role, Role::Cases | Role::Campaign),
            Commands::Bench(args) => args.is_forwarder(),
            _ => false,
        }
    }
}

/// Roles of a distributed deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// The cases command service (any number of instances share the queue group).
    Cases,
    /// The campaign command service: dispatch meetings and instructions (any number of
    /// instances share its queue group).
    Campaign,
    /// The projector (one active instance per read store).
    Projector,
    /// The HTTP gateway (any number of instances on one read store).
    Gateway,
}

/// `zhzj command '<json>'`.
#[derive(Debug, Args)]
pub struct CommandArgs {
    /// The command as JSON, e.g. `{"type":"record_note","case_id":"…","text":"…"}`.
    pub command: String,
    /// The acting user id.
    #[arg(long, env = "ZHZJ_ACTOR", default_value = "coordinator-1")]
    pub actor: String,
    /// Apply only if the aggregate is still at this version.
    #[arg(long)]
    pub expected_version: Option<u64>,
    /// The acting user's roles (an operator with NATS access acts as city administrator).
    #[arg(long, default_value = "admin", value_delimiter = ',')]
    pub roles: Vec<String>,
    /// The acting user's org unit.
    #[arg(long)]
    pub unit: Option<String>,
    /// Settings.
    #[command(flatten)]
    pub options: CommonOptions,
}

/// `zhzj rebuild <projection>`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// The projection.
    #[arg(value_parser = projection_names())]
    pub projection: String,
    /// Settings.
    #[command(flatten)]
    pub options: CommonOptions,
}

/// Every projection's name, as `zhzj rebuild` accepts and its help lists them.
fn projection_names() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(zhzj_projector::Projection::ALL.map(|p| p.name()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Commands, SETTINGS_HELP};

    /// The defaults `zhzj --help` lists are the ones clap applies.
    #[test]
    fn the_settings_help_states_the_real_defaults() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from(["zhzj", "up"])?;
        let Commands::Up(up) = cli.command else {
            panic!("parsed `up` as another command");
        };
        for default in [
            format!(
                "--data-dir / ZHZJ_DATA_DIR / {}",
                up.options.data_dir.display()
            ),
            format!(
                "--stream-replicas / ZHZJ_STREAM_REPLICAS / {}",
                up.options.stream_replicas
            ),
            format!("--http / ZHZJ_HTTP / {}", up.http.listen),
            format!(
                "--body-limit / ZHZJ_BODY_LIMIT / {} bytes",
                up.http.body_limit
            ),
            format!(
                "--read-your-writes-ms / ZHZJ_READ_YOUR_WRITES_MS / {}",
                up.http.read_your_writes_ms
            ),
            format!(
                "--ready-max-lag / ZHZJ_READY_MAX_LAG / {} events",
                up.http.ready_max_lag
            ),
            format!(
                "--session-hours / ZHZJ_SESSION_HOURS / {}",
                up.http.session_hours
            ),
            format!(
                "--review-chain / ZHZJ_REVIEW_CHAIN / {}",
                up.options
                    .review_chain
                    .iter()
                    .map(|l| format!("{l:?}").to_lowercase())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        ] {
            assert!(SETTINGS_HELP.contains(&default), "{default}");
        }
        assert!(!up.demo && up.options.nats_url.is_none() && up.options.database_url.is_none());
        assert!(up.options.internal_limits.is_empty());
        Ok(())
    }

    /// `zhzj rebuild` takes every projection of the registry by name, and no other.
    #[test]
    fn rebuild_takes_every_projection_and_no_other() -> Result<(), clap::Error> {
        for projection in zhzj_projector::Projection::ALL {
            let cli = Cli::try_parse_from(["zhzj", "rebuild", projection.name()])?;
            let Commands::Rebuild(args) = cli.command else {
                panic!("parsed `rebuild` as another command");
            };
            assert_eq!(args.projection, projection.name());
        }
        assert!(Cli::try_parse_from(["zhzj", "rebuild", "nonsense"]).is_err());
        Ok(())
    }
}
