// The citizen page's labels, and the names of what the API sends (states,
// actions, treatments, datasets, fields, departments), in English and
// Chinese; app.js renders them. A value without a name here is shown as
// the API sends it.
"use strict";

// T holds every label in English and Chinese; {0}, {1} are arguments.
const T = {
  title: ["Who used my data", "谁使用了我的数据"],
  skip: ["Skip to the page", "跳到正文"],
  refresh: ["Refresh", "刷新"],
  signout: ["Sign out", "退出"],
  signin: ["Sign in", "登录"],
  signinHelp: ["Paste your token. It is kept in this tab's session storage only.", "粘贴您的令牌。令牌只保存在本标签页的会话存储中。"],
  token: ["Your token", "您的令牌"],
  signinFailed: ["Sign-in failed: {0}", "登录失败：{0}"],
  refused: ["Your token was refused: {0}", "令牌被拒绝：{0}"],
  signedOut: ["Signed out.", "已退出。"],
  notCitizen: ["This page is for the person the data is about: the token names no person (no id_number).", "本页面供数据所涉及的本人使用：此令牌未载明身份证号（id_number）。"],
  whoIs: ["Signed in as the person with ID number {0}", "当前身份：身份证号 {0}"],
  onThisPage: ["On this page", "本页内容"],
  usage: ["Who used my data", "谁使用了我的数据"],
  usageHelp: ["Each time a department received records about you through this gateway, newest first. You can ask a department why it used your data, or object to a record that is wrong.",
    "各部门通过本网关获取您的数据的每一次记录，按时间倒序排列。您可以询问部门为何使用您的数据，或对有误的记录提出异议。"],
  objections: ["My objections", "我的异议"],
  objectionsHelp: ["What you asked or objected to, and where each stands. The department answers within the time shown.", "您提出的询问和异议及其处理状态。相关部门应在所示期限内答复。"],
  since: ["From", "起始日期"],
  until: ["To", "截止日期"],
  show: ["Show", "查看"],
  showAll: ["Everything", "全部"],
  periodAll: ["Covering everything on record up to {0}.", "涵盖截至 {0} 的全部记录。"],
  periodFrom: ["Covering {0} to {1}.", "涵盖 {0} 至 {1}。"],
  badPeriod: ["The start must be before the end.", "起始日期须早于截止日期。"],
  trailOK: ["Usage log verified", "使用记录已核验"],
  trailOKText: ["The gateway's audit trail verified intact when this was read ({0} records checked, {1}), so this list is complete and unaltered.",
    "读取时网关的审计记录经核验完整无缺（已核验 {0} 条，{1}），本列表完整且未被篡改。"],
  trailBad: ["Usage log NOT verified", "使用记录未通过核验"],
  trailBadText: ["The gateway's audit trail did not verify, so this list may be incomplete or altered: {0}", "网关的审计记录未通过核验，本列表可能不完整或已被改动：{0}"],
  trailBadUnknown: ["no reason was given", "未说明原因"],
  trailReplica: ["Checked on {0}.", "核验于 {0}。"],
  count: ["{0} uses of your data.", "您的数据共被使用 {0} 次。"],
  countOne: ["1 use of your data.", "您的数据共被使用 1 次。"],
  noUsage: ["No department received your data in this period.", "此期间没有部门获取您的数据。"],
  usedBy: ["{0} received your {1}", "{0}获取了您的{1}"],
  dept: ["Department", "部门"],
  roles: ["As", "身份"],
  purpose: ["Purpose", "用途"],
  legalBasis: ["Legal basis", "法律依据"],
  grant: ["Grant", "授权"],
  basis: ["Rule that allowed it", "准许依据"],
  dataset: ["Data", "数据"],
  fields: ["What they saw", "获取的内容"],
  requestID: ["Reference", "记录编号"],
  replica: ["Served by", "处理节点"],
  askWhy: ["Ask why", "询问原因"],
  askWhyLabel: ["Ask {0} why it used your data ({1})", "询问{0}为何使用您的数据（{1}）"],
  objectRecord: ["Object to this record", "对此记录提出异议"],
  objectRecordLabel: ["Object to a record of {0} ({1})", "对{0}中的记录提出异议（{1}）"],
  asked: ["You asked why: {0}", "您已询问：{0}"],
  close: ["Close", "关闭"],
  objectTitle: ["Object to a record", "对记录提出异议"],
  objectContext: ["On {0}, {2} received your {1}. Name the record that is wrong: {3}, which keeps it, will look into it.",
    "{0}，{2}获取了您的{1}。请填写有误记录的编号，由保管该数据的{3}核查。"],
  recordID: ["Record number", "记录编号"],
  fieldOptional: ["Which item is wrong (optional)", "哪一项有误（可选）"],
  wholeRecord: ["The whole record", "整条记录"],
  claimRequired: ["What is wrong, and what it should say (required)", "哪里有误、应如何更正（必填）"],
  claimNeeded: ["Say what is wrong: the claim is required.", "请说明哪里有误：此项必填。"],
  recordNeeded: ["Give the record's number.", "请填写记录编号。"],
  fileObjection: ["File the objection", "提交异议"],
  whyTitle: ["Ask why my data was used", "询问使用我的数据的原因"],
  whyContext: ["{0}: {1} received your {2}. It will answer your question.", "{0}：{1}获取了您的{2}。该部门将答复您的询问。"],
  whyDefault: ["Why did you receive my data in this release, and on what basis?", "请问贵部门为何获取我在此次记录中的数据？依据是什么？"],
  questionRequired: ["Your question (required)", "您的问题（必填）"],
  questionNeeded: ["Write your question.", "请填写您的问题。"],
  sendQuestion: ["Send the question", "发送询问"],
  filed: ["{0} filed; an answer is due {1}.", "{0} 已提交，答复期限 {1}。"],
  noObjections: ["You have filed no objection.", "您还没有提出异议。"],
  aboutRelease: ["Why {0} used your data ({1})", "询问{0}为何使用您的数据（{1}）"],
  aboutRecord: ["Record {0} of {1}", "{1}中的记录 {0}"],
  aboutField: ["item: {0}", "项目：{0}"],
  claim: ["You wrote", "您的陈述"],
  answeredBy: ["Answered by", "答复部门"],
  created: ["Filed", "提交时间"],
  due: ["Answer due", "答复期限"],
  overdue: ["{0} (overdue)", "{0}（已超期）"],
  state: ["State", "状态"],
  history: ["History", "处理记录"],
  historyLine: ["{0}: {1} ({2} → {3})", "{0}：{1}（{2} → {3}）"],
  notified: ["Departments told of the correction: {0}", "已通知更正的部门：{0}"],
  acked: ["{0} acknowledged", "{0} 已确认"],
  none: ["—", "—"],
};

// Values the API sends that the page names in both languages.
const NAMES = {
  // objection states and actions
  filed: ["filed", "已提交"], accepted: ["accepted", "已受理"], rejected: ["rejected", "不予受理"],
  corrected: ["corrected", "已更正"], upheld: ["record upheld", "维持原记录"], escalated: ["escalated", "已升级处理"],
  file: ["filed", "提交"], accept: ["accepted", "受理"], reject: ["rejected", "不予受理"], correct: ["corrected", "更正"],
  uphold: ["upheld", "维持"], escalate: ["escalated", "升级"], notify: ["notified", "通知"], acknowledge: ["acknowledged", "确认"],
};

// STATE_HELP says what each objection state means for the person.
const STATE_HELP = {
  filed: ["Waiting for the department to take it up.", "等待部门受理。"],
  accepted: ["The department is looking into it.", "部门正在核查。"],
  rejected: ["The department did not take it up; see its reason.", "部门未予受理，详见理由。"],
  corrected: ["The record was corrected; departments that had it were told.", "记录已更正，已通知曾获取该记录的部门。"],
  upheld: ["The department found the record right; see its reason.", "部门认为记录无误，详见理由。"],
  escalated: ["The department did not answer in time; the coordinator now decides.", "部门未按期答复，已交由协调部门处理。"],
};

// TREATMENTS say in words what a field's treatment showed of it. Drop is
// never listed: only released fields appear in a release.
const TREATMENTS = {
  keep: ["shown as is", "原样提供"],
  pseudonymize: ["replaced by a code", "以代码替换"],
  mask: ["partly hidden", "部分隐藏"],
  mask_id_cn: ["partly hidden", "部分隐藏"],
  mask_phone_cn: ["partly hidden", "部分隐藏"],
  mask_name_cn: ["partly hidden (surname kept)", "部分隐藏（保留姓氏）"],
  mask_email: ["partly hidden", "部分隐藏"],
  mask_bank_card: ["partly hidden", "部分隐藏"],
  mask_address: ["partly hidden (district kept)", "部分隐藏（保留到区县）"],
  generalize: ["coarsened", "粗化（仅提供大致范围）"],
  truncate: ["shortened", "截短"],
  round: ["rounded", "取整"],
  redact: ["blacked out", "完全遮蔽"],
  null: ["emptied", "置空"],
  replace: ["replaced by a fixed value", "以固定值替换"],
};

// DATASETS are the demo departments' datasets by their human names.
const DATASETS = {
  "health/visits": ["hospital visits", "就诊记录"],
  "civil/assistance": ["social assistance cases", "社会救助案件"],
  "police/residents": ["household registration", "户籍信息"],
};

// RECORD_IDS say, for each dataset, where a person finds a record's
// number. Where the number is the person's own ID number, nothing is
// filled in: the page does not know whose it is.
const RECORD_IDS = {
  "health/visits": ["The visit number, as on your receipt (V followed by 10 digits).", "就诊号，见就诊收据（V 加 10 位数字）。"],
  "civil/assistance": ["The case number, as on your assistance decision (C, the year, a dash and 5 digits).", "案件编号，见救助决定书（C、年份、短横线加 5 位数字）。"],
  "police/residents": ["Your ID number.", "您的身份证号。"],
};
const RECORD_ID_ANY = ["The record's number, as the department gave it to you.", "部门提供给您的记录编号。"];

// FIELDS name the demo datasets' fields.
const FIELDS = {
  visit_id: ["visit number", "就诊号"], patient_id: ["ID number", "身份证号"], patient_name: ["name", "姓名"],
  district: ["district", "所在区"], hospital: ["hospital", "医院"], diagnosis: ["diagnosis", "诊断"],
  visit_date: ["visit date", "就诊日期"], cost: ["cost", "费用"],
  case_id: ["case number", "案件编号"], id_number: ["ID number", "身份证号"], name: ["name", "姓名"], phone: ["phone", "电话"],
  household_size: ["household size", "家庭人数"], monthly_allowance: ["monthly allowance", "月救助金"], start_date: ["start date", "救助开始日期"],
  gender: ["sex", "性别"], birth_date: ["date of birth", "出生日期"], address: ["address", "住址"],
};

// DEPTS name the demo's departments.
const DEPTS = {
  health: ["the Health Commission", "卫生健康委员会"],
  civil: ["the Civil Affairs Bureau", "民政局"],
  police: ["the Public Security Bureau", "公安局"],
  "stats-bureau": ["the Statistics Bureau", "统计局"],
};

// ROLES name the roles a department's staff read records in.
const ROLES = {
  analyst: ["analyst", "数据分析员"], caseworker: ["caseworker", "个案工作者"], researcher: ["researcher", "研究人员"],
  registrar: ["registrar", "户籍登记员"], responder: ["emergency responder", "应急救治人员"], steward: ["data steward", "数据管理员"],
};

// PURPOSES name the purposes tokens carry.
const PURPOSES = {
  "public-health": ["public-health surveillance", "公共卫生监测"],
  research: ["research", "科学研究"],
  emergency: ["emergency care", "紧急救治"],
};
