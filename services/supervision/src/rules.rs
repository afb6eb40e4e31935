//! The bureau's supervision rules, as a TOML file (`--supervision-rules`): which level an
//! overdue order escalates to, how many days after its due date, and how long the addressee then
//! has to answer. Without a file the defaults apply: 催办 → 督办 → 挂牌督办, each the day after
//! the due date, with five days to answer.

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

/// The supervision rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisionRules {
    /// Escalation rules, at most one per level.
    pub escalation: Vec<EscalationRule>,
}

impl Default for SupervisionRules {
    fn default() -> Self {
        use SupervisionLevel::{Listed, Order, Reminder};
        Self {
            escalation: vec![
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
            ],
        }
    }
}

/// Why a rules file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// Not TOML, or not the expected shape (the message names the line).
    #[error("督办规则文件格式错误: {0}")]
    Syntax(#[from] toml::de::Error),
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
    #[serde(default)]
    escalation: Vec<RuleEntry>,
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
        let file: RulesFile = toml::from_str(text)?;
        let mut escalation: Vec<EscalationRule> = Vec::new();
        for (i, entry) in file.escalation.into_iter().enumerate() {
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
        Ok(Self { escalation })
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
