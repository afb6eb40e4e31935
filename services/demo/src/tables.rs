//! The demo's tables: Xiamen's districts and towns, the city's departments, names, subject
//! categories with their typical matters and measures.

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

pub(crate) const DISTRICTS: &[District] = &[
    District {
        key: "siming",
        name: "思明区",
        short: "思明",
        weight: 26,
        towns: &[
            ("xiagang", "厦港街道"),
            ("zhonghua", "中华街道"),
            ("binhai", "滨海街道"),
            ("lujiang", "鹭江街道"),
            ("kaiyuan", "开元街道"),
            ("wucun", "梧村街道"),
            ("yundang", "筼筜街道"),
            ("lianqian", "莲前街道"),
            ("jialian", "嘉莲街道"),
            ("gulangyu", "鼓浪屿街道"),
        ],
    },
    District {
        key: "huli",
        name: "湖里区",
        short: "湖里",
        weight: 22,
        towns: &[
            ("huli", "湖里街道"),
            ("dianqian", "殿前街道"),
            ("heshan", "禾山街道"),
            ("jiangtou", "江头街道"),
            ("jinshan", "金山街道"),
        ],
    },
    District {
        key: "jimei",
        name: "集美区",
        short: "集美",
        weight: 15,
        towns: &[
            ("jimei", "集美街道"),
            ("qiaoying", "侨英街道"),
            ("xinglin", "杏林街道"),
            ("xingbin", "杏滨街道"),
            ("guankou", "灌口镇"),
            ("houxi", "后溪镇"),
        ],
    },
    District {
        key: "haicang",
        name: "海沧区",
        short: "海沧",
        weight: 10,
        towns: &[
            ("haicang", "海沧街道"),
            ("xinyang", "新阳街道"),
            ("songyu", "嵩屿街道"),
            ("dongfu", "东孚街道"),
        ],
    },
    District {
        key: "tongan",
        name: "同安区",
        short: "同安",
        weight: 14,
        towns: &[
            ("datong", "大同街道"),
            ("xiangping", "祥平街道"),
            ("xike", "西柯街道"),
            ("xinmin", "新民镇"),
            ("hongtang", "洪塘镇"),
            ("wuxian", "五显镇"),
            ("tingxi", "汀溪镇"),
            ("lianhua", "莲花镇"),
        ],
    },
    District {
        key: "xiangan",
        name: "翔安区",
        short: "翔安",
        weight: 13,
        towns: &[
            ("xindian", "新店街道"),
            ("xiangshan", "香山街道"),
            ("jinhai", "金海街道"),
            ("minan", "民安街道"),
            ("fengxiang", "凤翔街道"),
            ("maxiang", "马巷街道"),
            ("dadeng", "大嶝街道"),
            ("xinxu", "新圩镇"),
            ("neicuo", "内厝镇"),
        ],
    },
];

pub(crate) const DEPT_ZJJ: &str = "xm-dept-zjj";
pub(crate) const DEPT_RSJ: &str = "xm-dept-rsj";
pub(crate) const DEPT_ZRZY: &str = "xm-dept-zrzy";
pub(crate) const DEPT_GAJ: &str = "xm-dept-gaj";
pub(crate) const DEPT_WJW: &str = "xm-dept-wjw";
pub(crate) const DEPT_JYJ: &str = "xm-dept-jyj";
pub(crate) const DEPT_STHJ: &str = "xm-dept-sthj";
pub(crate) const DEPT_SCJG: &str = "xm-dept-scjg";
pub(crate) const DEPT_CGZF: &str = "xm-dept-cgzf";
pub(crate) const DEPT_MZJ: &str = "xm-dept-mzj";

/// The city's functional departments: `(unit id, name)`.
pub(crate) const DEPARTMENTS: &[(&str, &str)] = &[
    (DEPT_ZJJ, "市住房局"),
    (DEPT_RSJ, "市人社局"),
    (DEPT_ZRZY, "市自然资源和规划局"),
    (DEPT_GAJ, "市公安局"),
    (DEPT_WJW, "市卫健委"),
    (DEPT_JYJ, "市教育局"),
    (DEPT_STHJ, "市生态环境局"),
    (DEPT_SCJG, "市市场监管局"),
    (DEPT_CGZF, "市城管执法局"),
    (DEPT_MZJ, "市民政局"),
];

/// Titles of the city leaders `ldr-xm-1` …; they belong to the city unit.
pub(crate) const CITY_LEADER_TITLES: &[&str] =
    &["市委常委、政法委书记", "副市长", "副市长", "市信访局局长"];

/// Titles of the district leaders `ldr-<district>-1` …, after the district's short name.
pub(crate) const DISTRICT_LEADER_TITLES: &[&str] =
    &["区委副书记、区长", "区委常委、政法委书记", "区副区长"];

/// Surnames and given names of the (invented) leaders; 19 and 29 are coprime, so
/// [`official_name`] gives distinct names for the first 551 leaders.
pub(crate) const OFFICIAL_SURNAMES: &[&str] = &[
    "陈", "林", "黄", "张", "李", "王", "吴", "刘", "蔡", "杨", "郑", "许", "洪", "叶", "苏", "庄",
    "曾", "卢", "谢",
];
pub(crate) const OFFICIAL_GIVEN_NAMES: &[&str] = &[
    "建华", "志明", "文斌", "海峰", "立新", "振宇", "晓东", "国庆", "丽华", "雪梅", "卫东", "承志",
    "宏伟", "俊杰", "思远", "明哲", "慧敏", "子健", "学军", "瑞峰", "亚平", "天明", "春晖", "宗仁",
    "德胜", "锦程", "伟民", "秋生", "静怡",
];

/// Surnames and given names of petitioners and handlers.
pub(crate) const SURNAMES: &[&str] = &[
    "陈", "林", "黄", "张", "李", "王", "吴", "刘", "蔡", "杨", "郑", "许", "洪", "叶", "苏", "庄",
    "曾", "柯", "卢", "谢", "邱", "周", "何", "颜", "纪", "傅",
];
pub(crate) const GIVEN_NAMES: &[&str] = &[
    "阿水", "秀英", "金花", "水生", "美玲", "清泉", "玉兰", "天赐", "淑珍", "文忠", "春花", "永福",
    "国栋", "丽珍", "宝珠", "建新", "海燕", "明辉", "锦华", "火旺", "碧霞", "荣华", "德福", "月娥",
    "志坚", "少华", "培林", "素琴", "添丁", "丽娟", "振兴", "惠芬", "明",
];

pub(crate) const COMPANIES: &[&str] = &[
    "某建筑劳务公司",
    "某电子科技有限公司",
    "某房地产开发有限公司",
    "某物流有限公司",
    "某服装厂",
    "某食品有限公司",
    "某装饰工程有限公司",
    "某机械制造厂",
];

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

pub(crate) const CATEGORIES: &[Category] = &[
    Category {
        name: "征地拆迁",
        matters: &[
            "要求解决{place}{village}征地补偿款未足额发放问题，称尚有{amount}万元未到位",
            "反映{place}{village}旧村改造中房屋征收评估价格偏低，要求重新评估并提高补偿标准",
            "反映{place}某地块征收后安置房迟迟未交付，已在外过渡{years}年，要求尽快安置",
            "对{place}某项目房屋征收补偿决定不服，要求按{area}平方米认定合法建筑面积",
        ],
        departments: &[DEPT_ZRZY, DEPT_ZJJ],
        measures: &[
            "委托第三方评估机构对房屋重新评估",
            "协调征收实施单位核算应付补偿款",
            "召开征收补偿政策解释会",
            "督促建设单位加快安置房建设进度",
        ],
        group_prone: true,
    },
    Category {
        name: "劳动社保",
        matters: &[
            "反映{company}拖欠农民工工资{amount}万元，多次讨要未果",
            "要求补缴{years}年社会养老保险，称原单位未依法为其缴纳",
            "对工伤认定结论有异议，要求{company}支付工伤待遇{amount}万元",
            "反映{company}解除劳动合同未支付经济补偿金",
        ],
        departments: &[DEPT_RSJ],
        measures: &[
            "协调人社部门核算补发工资",
            "依法启动劳动保障监察程序",
            "引导当事人依法申请劳动仲裁",
            "核查当事人社保缴费记录",
        ],
        group_prone: true,
    },
    Category {
        name: "涉法涉诉",
        matters: &[
            "反映{place}某民间借贷纠纷判决执行不到位，涉及金额{amount}万元，要求加大执行力度",
            "反映其亲属被伤害案件处理不公，要求公安机关重新调查",
            "不服某交通事故责任认定，要求重新认定并追究对方责任",
        ],
        departments: &[DEPT_GAJ],
        measures: &[
            "邀请律师参与接访，释法明理",
            "协调政法部门依法导入诉讼程序",
            "组织案件评查，复核办案程序",
        ],
        group_prone: false,
    },
    Category {
        name: "城乡建设",
        matters: &[
            "反映{place}某小区周边违章搭建影响通行和采光，要求依法拆除",
            "反映{place}某在建工地夜间施工噪音扰民，要求依法查处",
            "要求解决{place}{village}道路硬化和排水设施建设问题",
        ],
        departments: &[DEPT_CGZF, DEPT_ZJJ, DEPT_ZRZY],
        measures: &[
            "组织城管执法部门现场核查",
            "督促施工单位限期整改",
            "将道路排水改造列入年度建设计划",
        ],
        group_prone: true,
    },
    Category {
        name: "房屋产权",
        matters: &[
            "要求为{place}某小区{years}年前购买的商品房办理不动产权证",
            "反映{place}{village}祖厝产权存在争议，要求依法确权登记",
            "反映{company}逾期交房{years}年，要求支付违约金{amount}万元",
        ],
        departments: &[DEPT_ZRZY, DEPT_ZJJ],
        measures: &[
            "协调不动产登记部门梳理办证遗留问题",
            "调取历史档案，核实产权来源",
            "约谈开发企业，督促履行合同义务",
        ],
        group_prone: true,
    },
    Category {
        name: "物业管理",
        matters: &[
            "反映{place}某小区物业公司擅自提高物业费，且维修资金使用情况不公开",
            "要求{place}某小区物业公司维修电梯和渗漏外墙，多次报修无果",
            "反映{place}某小区业委会选举程序不规范，要求重新选举",
        ],
        departments: &[DEPT_ZJJ, DEPT_SCJG],
        measures: &[
            "约谈物业服务企业负责人",
            "指导社区组织业主协商会",
            "督促公开维修资金使用明细",
        ],
        group_prone: true,
    },
    Category {
        name: "医疗卫生",
        matters: &[
            "反映其家属在某医院治疗期间死亡，认为存在医疗过错，要求赔偿{amount}万元",
            "对医疗损害鉴定结论不服，要求重新鉴定",
            "反映{place}某诊所无证行医致其病情加重",
        ],
        departments: &[DEPT_WJW],
        measures: &[
            "引导当事人通过医疗纠纷人民调解委员会调解",
            "组织专家对诊疗过程进行评议",
            "卫健部门对涉事诊所开展执法检查",
        ],
        group_prone: false,
    },
    Category {
        name: "教育",
        matters: &[
            "反映其子女在{place}的入学安排问题，要求就近入学",
            "反映某培训机构停业后拒不退还培训费{amount}万元",
            "原民办教师要求落实教龄补贴，称已任教{years}年",
        ],
        departments: &[DEPT_JYJ],
        measures: &[
            "教育部门核实学位安排情况",
            "督促培训机构制定退费方案",
            "核查原民办教师任教档案",
        ],
        group_prone: false,
    },
    Category {
        name: "环境保护",
        matters: &[
            "反映{place}某企业废气排放影响周边居民生活，要求依法整治",
            "反映{place}{village}某养殖场污水直排河道，要求关停整改",
            "反映{place}某垃圾中转站异味扰民，要求迁移",
        ],
        departments: &[DEPT_STHJ, DEPT_CGZF],
        measures: &[
            "生态环境部门开展现场监测",
            "责令涉事企业限期整改",
            "组织环评专家论证整改方案",
        ],
        group_prone: true,
    },
    Category {
        name: "农村农业",
        matters: &[
            "反映{place}{village}土地承包经营权被他人侵占，面积约{area}平方米",
            "要求解决{place}{village}集体经济组织成员资格认定及分红问题",
            "反映{place}{village}宅基地审批不公开",
        ],
        departments: &[DEPT_ZRZY, DEPT_MZJ],
        measures: &[
            "组织村两委核查土地承包台账",
            "指导村集体依法认定成员资格",
            "公开宅基地审批程序和结果",
        ],
        group_prone: false,
    },
    Category {
        name: "企业改制",
        matters: &[
            "原{company}职工要求落实企业改制时承诺的安置待遇",
            "反映原国有企业改制时工龄买断补偿标准偏低，涉及{years}年工龄",
        ],
        departments: &[DEPT_RSJ, DEPT_SCJG],
        measures: &[
            "调取企业改制方案和职工安置档案",
            "协调原主管部门解释改制政策",
            "核算工龄补偿差额",
        ],
        group_prone: true,
    },
    Category {
        name: "民政救助",
        matters: &[
            "反映家庭困难，要求纳入最低生活保障",
            "要求落实残疾人两项补贴及临时救助",
            "反映退役后生活困难，要求帮助解决就业和住房问题",
        ],
        departments: &[DEPT_MZJ],
        measures: &[
            "落实临时救助金",
            "开展家庭经济状况核对",
            "协调社区落实结对帮扶",
        ],
        group_prone: false,
    },
];

/// Measures that suit any category.
pub(crate) const GENERIC_MEASURES: &[&str] = &[
    "包案领导约访当事人，听取诉求",
    "包案领导下访当事人家中，了解实际困难",
    "组织召开听证会",
    "召开专题协调会，明确各方责任",
    "邀请律师参与，提供法律意见",
    "提请复查复核专家库专家论证",
    "落实稳控措施，明确专人联系",
    "书面答复当事人并做好解释工作",
];

pub(crate) const MEASURE_RESULTS: &[&str] = &[
    "已完成，当事人表示认可",
    "已落实到位，相关款项已发放",
    "已召开会议，形成会议纪要",
    "已完成，当事人对处理意见仍有异议，继续做思想工作",
    "已办结，书面答复意见已送达当事人",
    "已完成，当事人签订息诉罢访协议",
];

pub(crate) const NOTES: &[&str] = &[
    "已下访当事人家中，当事人情绪稳定",
    "当事人近期未再赴省进京上访",
    "已与当事人电话联系，告知办理进度",
    "当事人家属表示理解，同意等待处理结果",
    "当事人提出新的诉求，需进一步核实",
    "周调度会议要求加快办理进度",
    "包案领导在接访日接待当事人，当事人情绪平稳",
    "已联系当事人所在社区，落实专人跟踪",
];

pub(crate) const UNOWNED_NOTE: &str = "已列入清单，正在研究确定包案领导";

pub(crate) const REASSIGNMENT_REASONS: &[&str] = &[
    "工作调整",
    "原包案领导职务变动",
    "根据周调度会议要求调整包案领导",
];

pub(crate) const ESCALATION_REASON: &str = "案情复杂，提级由市级领导包案";

pub(crate) const TOWN_HANDLER_ROLES: &[&str] =
    &["综治中心主任", "信访办主任", "党政办副主任", "平安办主任"];
pub(crate) const DEPARTMENT_HANDLER_ROLES: &[&str] =
    &["信访科科长", "法规科科长", "办公室主任", "信访办副主任"];

pub(crate) const ESTATE_KINDS: &[&str] = &["小区", "花园", "新村", "公寓"];
