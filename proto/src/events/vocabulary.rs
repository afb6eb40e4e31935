//! The vocabulary events are written in: channels, list sources, unit and leader kinds, the
//! statutory procedure's steps, leaders' activities, the 三到位一处理 classes, resolution grounds,
//! review levels and satisfaction — each with its Chinese label.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the petition reached the bureau (信访渠道).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// 网上
    Online,
    /// 来信
    Letter,
    /// 来访
    Visit,
    /// 电话
    Phone,
}

impl Channel {
    /// Every value, in the order the interface lists them.
    pub const ALL: [Self; 4] = [Self::Online, Self::Letter, Self::Visit, Self::Phone];

    /// The Chinese label shown to users.
    pub fn label(self) -> &'static str {
        match self {
            Self::Online => "网上",
            Self::Letter => "来信",
            Self::Visit => "来访",
            Self::Phone => "电话",
        }
    }
}

/// How a case came onto the checklist (列入清单的来源).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ListSource {
    /// 新发信访: a new petition.
    NewPetition,
    /// 上级交办: handed down from a higher level.
    HandedDown,
    /// 滚动排查: found by the rolling screening.
    Screening,
}

/// The kind of an org unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// 市
    City,
    /// 区
    District,
    /// 镇、街道
    Town,
    /// 职能部门
    Department,
}

impl UnitKind {
    /// Every value, top down.
    pub const ALL: [Self; 4] = [Self::City, Self::District, Self::Town, Self::Department];

    /// Its name in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Self::City => "市",
            Self::District => "区",
            Self::Town => "镇街",
            Self::Department => "职能部门",
        }
    }
}

/// The level a leader belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LeaderLevel {
    /// 市级
    City,
    /// 区级
    District,
    /// 镇街级
    Town,
}

impl LeaderLevel {
    /// Every value, top down.
    pub const ALL: [Self; 3] = [Self::City, Self::District, Self::Town];

    /// Its name in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Self::City => "市级",
            Self::District => "区级",
            Self::Town => "镇街级",
        }
    }
}

/// A step of the statutory procedure (《信访工作条例》第二十三、三十四至三十六条) that starts or
/// stops a clock.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ProcedureStep {
    /// 告知受理: the petitioner was told in writing that the matter is accepted (15 days, 第23条).
    AcceptanceNotified,
    /// 出具处理意见: the handling ended with a written reply (办结, 60 days, 第34条); opens the
    /// petitioner's 30 days to ask for a first review.
    Replied,
    /// 申请复查: the petitioner asked for a first review (within 30 days of the reply, 第35条).
    FirstReviewRequested,
    /// 复查答复: the first review was answered (30 days, 第35条); opens 30 days to ask for a second.
    FirstReviewAnswered,
    /// 申请复核: the petitioner asked for a second review (within 30 days of the answer, 第36条).
    SecondReviewRequested,
    /// 听证: a hearing during the second review; its days are not counted (第36条).
    HearingHeld,
    /// 复核答复: the second review was answered; the matter is concluded (终结, 第36条).
    SecondReviewAnswered,
}

impl ProcedureStep {
    /// Every value, in the order the interface lists them.
    pub const ALL: [Self; 7] = [
        Self::AcceptanceNotified,
        Self::Replied,
        Self::FirstReviewRequested,
        Self::FirstReviewAnswered,
        Self::SecondReviewRequested,
        Self::HearingHeld,
        Self::SecondReviewAnswered,
    ];

    /// Its name in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Self::AcceptanceNotified => "告知受理",
            Self::Replied => "出具处理意见",
            Self::FirstReviewRequested => "申请复查",
            Self::FirstReviewAnswered => "复查答复",
            Self::SecondReviewRequested => "申请复核",
            Self::HearingHeld => "听证",
            Self::SecondReviewAnswered => "复核答复（终结）",
        }
    }
}

/// What kind of work a leader did on a case (领导包案).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    /// 接访: received the petitioner.
    Reception,
    /// 约访: invited the petitioner to a talk.
    InvitedTalk,
    /// 下访: visited the petitioner at home.
    HomeVisit,
    /// 听证: held a hearing.
    Hearing,
    /// 评理: held a public reasoning session.
    Reasoning,
    /// 专家会诊: consulted the expert pool (复查复核专家库).
    ExpertConsultation,
    /// 律师参与: consulted lawyers (律师+信访).
    LawyerConsultation,
    /// 协调会: held a coordination meeting.
    Meeting,
}

impl ActivityKind {
    /// Every value, in the order the interface lists them.
    pub const ALL: [Self; 8] = [
        Self::Reception,
        Self::InvitedTalk,
        Self::HomeVisit,
        Self::Hearing,
        Self::Reasoning,
        Self::ExpertConsultation,
        Self::LawyerConsultation,
        Self::Meeting,
    ];

    /// The kind as the interface names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Reception => "接访",
            Self::InvitedTalk => "约访",
            Self::HomeVisit => "下访",
            Self::Hearing => "听证",
            Self::Reasoning => "评理",
            Self::ExpertConsultation => "专家会诊",
            Self::LawyerConsultation => "律师参与",
            Self::Meeting => "协调会",
        }
    }
}

/// The 三到位一处理 class of a claim (《信访工作条例》第二十七条).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimClass {
    /// A reasonable claim: solve the problem (解决问题到位).
    Reasonable,
    /// An unreasonable claim: explain and educate (思想教育到位).
    Unreasonable,
    /// Real hardship: help and relief (帮扶救助到位).
    Hardship,
    /// Unlawful behaviour: handle by law (依法处理).
    Unlawful,
}

impl ClaimClass {
    /// Every value, in the order the interface lists them.
    pub const ALL: [Self; 4] = [
        Self::Reasonable,
        Self::Unreasonable,
        Self::Hardship,
        Self::Unlawful,
    ];

    /// The class as the interface names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Reasonable => "诉求合理·解决问题到位",
            Self::Unreasonable => "诉求无理·思想教育到位",
            Self::Hardship => "生活困难·帮扶救助到位",
            Self::Unlawful => "行为违法·依法处理",
        }
    }
}

/// On what ground a case is claimed resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionGround {
    /// The problem is solved (问题已解决).
    Solved,
    /// A settlement agreement is signed (息诉罢访协议 / 调解协议书).
    SettlementAgreement,
    /// Legally concluded, and help given (依法终结并落实帮扶).
    LegallyConcluded,
}

impl ResolutionGround {
    /// Every value, in the order the interface lists them.
    pub const ALL: [Self; 3] = [
        Self::Solved,
        Self::SettlementAgreement,
        Self::LegallyConcluded,
    ];

    /// The ground as the interface names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Solved => "问题已解决",
            Self::SettlementAgreement => "签订息诉罢访协议",
            Self::LegallyConcluded => "依法终结并落实帮扶",
        }
    }
}

/// A level of the review chain (审核把关).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewLevel {
    /// The district joint-conference office (区联席办).
    District,
    /// The city petition bureau (市信访局).
    City,
}

impl ReviewLevel {
    /// Every value, in the order the interface lists them.
    pub const ALL: [Self; 2] = [Self::District, Self::City];

    /// The level as the interface names it.
    pub fn label(self) -> &'static str {
        match self {
            Self::District => "区联席办",
            Self::City => "市信访局",
        }
    }
}

/// How satisfied the petitioner is with the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    /// 满意.
    Satisfied,
    /// 基本满意.
    BasicallySatisfied,
    /// 不满意.
    Dissatisfied,
    /// 未评价.
    NotRated,
}

impl Satisfaction {
    /// Every value, in the order the interface lists them.
    pub const ALL: [Self; 4] = [
        Self::Satisfied,
        Self::BasicallySatisfied,
        Self::Dissatisfied,
        Self::NotRated,
    ];

    /// Its name in the interface.
    pub fn label(self) -> &'static str {
        match self {
            Self::Satisfied => "满意",
            Self::BasicallySatisfied => "基本满意",
            Self::Dissatisfied => "不满意",
            Self::NotRated => "未评价",
        }
    }
}
