//! The bureau's supervision rules, as a TOML file (`--supervision-rules`,
//! `deploy/supervision-rules.toml`): which level an overdue order escalates to, how many days
//! after its due date, and how long the addressee then has to answer; the thresholds of the early
//! warnings (预警); the outbound channels of notifications, per unit (SMTP mail, WeCom and
//! DingTalk group robots). Without a file the defaults apply: 催办 → 督办 → 挂牌督办, each the day
//! after the due date with five days to answer, the default thresholds, and the in-app inbox only.

use serde::Deserialize;
use zhzj_proto::events::SupervisionLevel;

/// One escalation rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscalationRule {
    /// The level an overdue order has.
    pub from: SupervisionLevel,
    /// The level it escalates to.
    pub to: SupervisionLevel,
    /// Days after the due date it escalates on (1: the day after).
    pub overdue_days: u32,
    /// Days the addressee then has to answer.
    pub answer_within_days: u32,
}

impl EscalationRule {
    /// The rule as the escalation event records it.
    pub fn describe(&self) -> String {
        format!(
            "{}逾期{}日未办结反馈，升级为{}，限{}日内反馈",
            self.from.label(),
            self.overdue_days,
            self.to.label(),
            self.answer_within_days
        )
    }
}

/// The thresholds of the early warnings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarningRules {
    /// A case's next statutory deadline within this many days (期限临近).
    pub deadline_within_days: u32,
    /// An owning leader with no activity on the case for this many days (包案领导未开展工作).
    pub leader_idle_days: u32,
    /// A town whose repeat petitions this month exceed the previous three months' average by
    /// this factor (重复信访激增) …
    pub town_surge_factor: f64,
    /// … and number at least this many.
    pub town_surge_min_petitions: u32,
    /// A supervision order's answer due within this many days (督办即将逾期).
    pub order_due_within_days: u32,
}

impl Default for WarningRules {
    fn default() -> Self {
        Self {
            deadline_within_days: 3,
            leader_idle_days: 30,
            town_surge_factor: 1.5,
            town_surge_min_petitions: 3,
            order_due_within_days: 2,
        }
    }
}

/// The SMTP server mail is sent through.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// Host name or address.
    pub host: String,
    /// Port (25, 587 …).
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// The sender address.
    pub from: String,
    /// Upgrade the connection with STARTTLS (required by most relays outside the intranet).
    #[serde(default)]
    pub starttls: bool,
    /// A PEM file of the certificate authority that signed the relay's certificate, trusted beside
    /// the public roots (an intranet relay under the bureau's own CA); only with `starttls`.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// User name, when the relay asks for one.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password.
    #[serde(default)]
    pub password: Option<String>,
}

fn smtp_port() -> u16 {
    25
}

/// How a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// Mail through the SMTP server, to the addresses in `to`.
    Email,
    /// A WeCom (企业微信) group robot webhook at `url`.
    Wecom,
    /// A DingTalk (钉钉) group robot webhook at `url`.
    Dingtalk,
}

impl ChannelKind {
    /// Its code in the deliveries table.
    pub fn code(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Wecom => "wecom",
            Self::Dingtalk => "dingtalk",
        }
    }
}

/// An outbound channel of one unit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channel {
    /// The unit whose notifications it carries.
    pub unit_id: String,
    /// How.
    pub kind: ChannelKind,
    /// For mail: the addresses.
    #[serde(default)]
    pub to: Vec<String>,
    /// For a robot: the webhook URL.
    #[serde(default)]
    pub url: Option<String>,
}

impl Channel {
    /// Where it delivers, as the deliveries table records it (a webhook's query string, which
    /// holds its key, is left out).
    pub fn target(&self) -> String {
        match self.kind {
            ChannelKind::Email => self.to.join(","),
            ChannelKind::Wecom | ChannelKind::Dingtalk => self
                .url
                .as_deref()
                .map(|url| url.split('?').next().unwrap_or(url).to_owned())
                .unwrap_or_default(),
        }
    }
}

/// The supervision rules.
#[derive(Debug, Clone, PartialEq)]
pub struct SupervisionRules {
    /// Escalation rules, at most one per level.
    pub escalation: Vec<EscalationRule>,
    /// Warning thresholds.
    pub warnings: WarningRules,
    /// The hour (China time, 0–23) from which the day's digest is made.
    pub digest_hour: u32,
    /// The SMTP server, when mail is sent.
    pub smtp: Option<SmtpSettings>,
    /// Outbound channels per unit.
    pub channels: Vec<Channel>,
}

impl Default for SupervisionRules {
    fn default() -> Self {
        Self {
            escalation: default_escalation(),
            warnings: WarningRules::default(),
            digest_hour: 8,
            smtp: None,
            channels: Vec::new(),
        }
    }
}

fn default_escalation() -> Vec<EscalationRule> {
    use SupervisionLevel::{Listed, Order, Reminder};
    {
        {
            vec![
                EscalationRule {
                    from: Reminder,
                    to: Order,
                    overdue_days: 1,
                    answer_within_days: 5,
                },
                EscalationRule {
                    from: Order,
                    to: Listed,
                    overdue_days: 1,
                    answer_within_days: 5,
                },
            ]
        }
    }
}

/// Why a rules file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// Not TOML, or not the expected shape (the message names the line).
    #[error("督办规则文件格式错误: {0}")]
    Syntax(#[from] toml::de::Error),
    /// A warning threshold or a channel that cannot be used.
    #[error("督办规则文件: {0}")]
    Setting(String),
    /// A rule that cannot be applied.
    #[error("督办规则第 {rule} 条: {message}")]
    Rule {
        /// The rule's number, from 1.
        rule: usize,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    /// Absent: the default rules; an empty list: no escalation.
    #[serde(default)]
    escalation: Option<Vec<RuleEntry>>,
    #[serde(default)]
    warnings: WarningRules,
    #[serde(default)]
    notify: NotifyEntry,
    #[serde(default)]
    smtp: Option<SmtpSettings>,
    #[serde(default)]
    channel: Vec<Channel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct NotifyEntry {
    digest_hour: u32,
}

impl Default for NotifyEntry {
    fn default() -> Self {
        Self { digest_hour: 8 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    from: String,
    to: String,
    #[serde(default = "one")]
    overdue_days: u32,
    answer_within_days: u32,
}

fn one() -> u32 {
    1
}

impl SupervisionRules {
    /// Reads rules from TOML text.
    pub fn parse(text: &str) -> Result<Self, RulesError> {
        let mut file: RulesFile = toml::from_str(text)?;
        let Some(entries) = file.escalation.take() else {
            return Self::checked(default_escalation(), file);
        };
        let mut escalation: Vec<EscalationRule> = Vec::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let rule = i + 1;
            let level = |name: &str| {
                SupervisionLevel::parse(name).ok_or_else(|| RulesError::Rule {
                    rule,
                    message: format!("未知的督办级别 `{name}`（催办、督办、挂牌督办）"),
                })
            };
            let (from, to) = (level(&entry.from)?, level(&entry.to)?);
            let problem = if to <= from {
                Some("只能升级到更高的级别")
            } else if !(1..=365).contains(&entry.overdue_days) {
                Some("overdue_days 须为 1 至 365（1 = 反馈期限次日）")
            } else if !(1..=365).contains(&entry.answer_within_days) {
                Some("answer_within_days 须为 1 至 365")
            } else if escalation.iter().any(|r| r.from == from) {
                Some("同一级别只能有一条升级规则")
            } else {
                None
            };
            if let Some(message) = problem {
                return Err(RulesError::Rule {
                    rule,
                    message: message.to_owned(),
                });
            }
            escalation.push(EscalationRule {
                from,
                to,
                overdue_days: entry.overdue_days,
                answer_within_days: entry.answer_within_days,
            });
        }
        Self::checked(escalation, file)
    }

    /// The rules with `escalation`, the rest of `file` checked.
    fn checked(escalation: Vec<EscalationRule>, file: RulesFile) -> Result<Self, RulesError> {
        let setting = |message: String| RulesError::Setting(message);
        let warnings = file.warnings;
        if !(warnings.town_surge_factor.is_finite() && warnings.town_surge_factor >= 1.0) {
            return Err(setting("warnings.town_surge_factor 须不小于 1".into()));
        }
        if file.notify.digest_hour > 23 {
            return Err(setting("notify.digest_hour 须为 0 至 23".into()));
        }
        if let Some(smtp) = &file.smtp
            && let Some(ca_file) = &smtp.ca_file
        {
            if !smtp.starttls {
                return Err(setting("smtp.ca_file 只在 starttls = true 时使用".into()));
            }
            crate::channels::read_ca_file(ca_file)
                .map_err(|e| setting(format!("smtp.ca_file: {e}")))?;
        }
        for (i, channel) in file.channel.iter().enumerate() {
            let n = i + 1;
            let usable = match channel.kind {
                ChannelKind::Email => !channel.to.is_empty() && file.smtp.is_some(),
                ChannelKind::Wecom | ChannelKind::Dingtalk => channel
                    .url
                    .as_deref()
                    .is_some_and(|url| url.starts_with("http://") || url.starts_with("https://")),
            };
            if !usable {
                return Err(setting(format!(
                    "第 {n} 个 [[channel]]：邮件须有 to 且配置 [smtp]，机器人须有 http(s) 的 url"
                )));
            }
        }
        Ok(Self {
            escalation,
            warnings,
            digest_hour: file.notify.digest_hour,
            smtp: file.smtp,
            channels: file.channel,
        })
    }

    /// Reads rules from a file.
    pub fn load(path: &std::path::Path) -> Result<Self, std::io::Error> {
        let text = std::fs::read_to_string(path)?;
        Self::parse(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_with_labels_or_codes_and_bad_ones_are_named() {
        let rules = SupervisionRules::parse(
            "[[escalation]]\nfrom = \"催办\"\nto = \"order\"\noverdue_days = 2\nanswer_within_days = 3\n",
        )
        .expect("parses");
        assert_eq!(
            rules.escalation,
            vec![EscalationRule {
                from: SupervisionLevel::Reminder,
                to: SupervisionLevel::Order,
                overdue_days: 2,
                answer_within_days: 3,
            }]
        );
        assert_eq!(
            rules.escalation[0].describe(),
            "催办逾期2日未办结反馈，升级为督办，限3日内反馈"
        );
        for (text, says) in [
            (
                "[[escalation]]\nfrom = \"督办\"\nto = \"催办\"\nanswer_within_days = 3\n",
                "更高",
            ),
            (
                "[[escalation]]\nfrom = \"督\"\nto = \"催办\"\nanswer_within_days = 3\n",
                "未知",
            ),
            (
                "[[escalation]]\nfrom = \"催办\"\nto = \"督办\"\noverdue_days = 0\nanswer_within_days = 3\n",
                "overdue_days",
            ),
            (
                "[[escalation]]\nfrom = \"催办\"\nto = \"督办\"\n",
                "answer_within_days",
            ),
            (
                "[[escalation]]\nfrom = \"催办\"\nto = \"督办\"\nanswer_within_days = 3\nx = 1\n",
                "x",
            ),
        ] {
            let error = SupervisionRules::parse(text).expect_err(text).to_string();
            assert!(error.contains(says), "{text}: {error}");
        }
        assert_eq!(SupervisionRules::default().escalation.len(), 2);
    }
}
