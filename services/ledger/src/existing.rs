//! What the system already holds, as a ledger import is checked against it: case numbers and
//! petitioners' ID numbers for the duplicate checks, the importer's scope, and each imported
//! case's registration. A duplicate outside the importer's area is answered without naming the
//! case.

use super::*;

/// The answer when a row's case number is taken by a case outside the importer's area: it names
/// no case.
pub const OUTSIDE_SCOPE_CASE_NUMBER: &str =
    "该案件编号已被您辖区以外的案件使用，请更换编号或联系市专班核实";

/// The answer when a row's petitioner is on a case outside the importer's area: it names no case.
pub const OUTSIDE_SCOPE_ID_NUMBER: &str =
    "您辖区以外已有该身份证号的案件，疑似重复，请联系市专班核实";

/// What already exists, for the duplicate checks and for checking a case imported before.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// Case number → case id.
    pub case_numbers: HashMap<String, String>,
    /// Petitioner ID number → the case number it is on.
    pub id_numbers: HashMap<String, String>,
    /// The units the importing user may register cases in (none: everywhere).
    pub scope: Option<HashSet<String>>,
    /// The numbers of existing cases outside the importing user's area. A duplicate found among
    /// them is reported without naming the case (条例 第三十条: a district must not learn who
    /// petitions elsewhere, nor on which case).
    pub outside_scope: HashSet<String>,
    /// Case number → what the system holds for the case, for every case a ledger imported
    /// (those whose id in `case_numbers` is [`case_id_for`] the number). A ledger row of such a
    /// case is checked against it; one missing here cannot be checked and is refused.
    pub cases: HashMap<String, ExistingCase>,
}

/// A case the system holds, as far as a ledger import compares it: what the registration set.
/// The leader and the lead unit are left out — they change after an import, as they should.
#[derive(Debug, Clone, PartialEq)]
pub struct ExistingCase {
    /// The petitioners, in the registration's order.
    pub petitioners: Vec<ExistingPetitioner>,
    /// 诉求.
    pub matter: String,
    /// 类别.
    pub category: String,
    /// The district's unit id.
    pub district_id: String,
    /// The town's unit id.
    pub town_id: Option<String>,
    /// 信访渠道.
    pub channel: Channel,
    /// 首次信访日期.
    pub first_filed_on: NaiveDate,
    /// 列入方式.
    pub list_source: ListSource,
    /// 涉及人数 as stored (1 when the registration gave none).
    pub group_size: u32,
}

/// A petitioner of a case the system holds, as a ledger import compares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingPetitioner {
    /// Name.
    pub name: String,
    /// Resident ID number.
    pub id_number: Option<String>,
}

impl From<&Petitioner> for ExistingPetitioner {
    fn from(petitioner: &Petitioner) -> Self {
        Self {
            name: petitioner.name.clone(),
            id_number: petitioner.id_number.clone(),
        }
    }
}
