//! The campaign decisions, given/when/then: one meeting per unit and week, a bulletin published
//! once and only after its month.

use chrono::{TimeZone, Utc};
use zhzj_proto::{
    CampaignEvent, ErrorKind,
    commands::HoldMeeting,
    events::{BulletinPublished, MeetingHeld, UnitRef},
};

use super::*;
use crate::given::given;

fn siming() -> UnitRef {
    UnitRef {
        id: "siming".into(),
        name: "思明区".into(),
    }
}

#[test]
fn a_unit_holds_one_meeting_a_week_titled_by_its_week_unless_named() {
    // Wednesday 2026-06-10, 10:00 in China.
    let held_at = Utc
        .with_ymd_and_hms(2026, 6, 10, 2, 0, 0)
        .single()
        .expect("a valid time");
    let command = HoldMeeting {
        unit_id: "siming".into(),
        title: None,
    };
    given::<MeetingState>(Vec::<CampaignEvent>::new())
        .when(|meeting| hold(meeting, &command, siming(), held_at, 41))
        .then([CampaignEvent::MeetingHeld(MeetingHeld {
            unit: siming(),
            week: "2026-W24".into(),
            held_at,
            as_of_position: 41,
            title: "思明区2026年第24周调度会".into(),
        })])
        .when(|meeting| hold(meeting, &command, siming(), held_at, 42))
        .then_refused(ErrorKind::Conflict, "本周（2026-W24）的调度会已召开");
}

#[test]
fn a_bulletin_is_published_once_after_its_month_is_over() {
    let in_june = Utc
        .with_ymd_and_hms(2026, 6, 30, 8, 0, 0)
        .single()
        .expect("a valid time");
    let in_july = Utc
        .with_ymd_and_hms(2026, 7, 1, 8, 0, 0)
        .single()
        .expect("a valid time");
    given::<BulletinState>(Vec::<CampaignEvent>::new())
        .when(|bulletin| publish(bulletin, "2026-06", in_june, 7))
        .then_refused(ErrorKind::Invalid, "尚未结束");
    given::<BulletinState>(Vec::<CampaignEvent>::new())
        .when(|bulletin| publish(bulletin, "2026-6", in_july, 7))
        .then_refused(ErrorKind::Invalid, "YYYY-MM");
    given::<BulletinState>(Vec::<CampaignEvent>::new())
        .when(|bulletin| publish(bulletin, "2026-06", in_july, 7))
        .then([CampaignEvent::BulletinPublished(BulletinPublished {
            month: "2026-06".into(),
            as_of_position: 7,
            published_at: in_july,
        })])
        .when(|bulletin| publish(bulletin, "2026-06", in_july, 9))
        .then_refused(ErrorKind::Conflict, "已发布");
}
