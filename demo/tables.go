package demo

// District is one of Beijing's sixteen districts.
type District struct {
	// Name is the district's Chinese name, such as "朝阳区".
	Name string `json:"name"`
	// Code is the district's six-digit GB/T 2260 administrative division
	// code, such as "110105"; it opens the identity number of every resident
	// registered there.
	Code string `json:"code"`
}

// Districts are Beijing's sixteen districts with their real region codes, in
// code order. Generate reads its own copy, so changing this slice does not
// change the data.
var Districts = districtList()

func districtList() []District {
	out := make([]District, len(beijing))
	for i, d := range beijing {
		out[i] = d.District
	}
	return out
}

// districtInfo is what the generator knows about a district.
type districtInfo struct {
	District
	// population is the resident population in tens of thousands (Seventh
	// National Census, 2020), which weighs where residents live.
	population int
	// streets are real streets of the district that addresses use.
	streets []string
	// hospitals are real hospitals in the district that visits use.
	hospitals []string
}

var beijing = []districtInfo{
	{District{"东城区", "110101"}, 71, []string{"东长安街", "王府井大街", "东四北大街", "朝阳门内大街", "和平里东街", "安定门外大街", "崇文门外大街"},
		[]string{"北京协和医院", "北京同仁医院", "北京医院", "北京中医医院"}},
	{District{"西城区", "110102"}, 111, []string{"西长安街", "金融大街", "德胜门外大街", "西直门南大街", "广安门内大街", "阜成门外大街"},
		[]string{"北京大学人民医院", "北京大学第一医院", "首都医科大学宣武医院", "北京积水潭医院"}},
	{District{"朝阳区", "110105"}, 345, []string{"建国路", "朝阳北路", "望京西路", "东三环中路", "安立路", "酒仙桥路", "劲松路"},
		[]string{"中日友好医院", "北京朝阳医院", "首都医科大学附属北京安贞医院", "北京市垂杨柳医院"}},
	{District{"丰台区", "110106"}, 202, []string{"丰台北路", "南三环西路", "草桥东路", "方庄路", "卢沟桥路", "马家堡东路"},
		[]string{"首都医科大学附属北京天坛医院", "北京丰台医院", "北京博爱医院"}},
	{District{"石景山区", "110107"}, 57, []string{"石景山路", "鲁谷路", "八角西街", "古城大街", "杨庄东街"},
		[]string{"北京大学首钢医院", "北京市石景山医院", "北京朝阳医院京西院区"}},
	{District{"海淀区", "110108"}, 313, []string{"中关村大街", "学院路", "知春路", "苏州街", "万泉河路", "上地十街", "复兴路"},
		[]string{"北京大学第三医院", "中国人民解放军总医院", "北京世纪坛医院", "北京市海淀医院"}},
	{District{"门头沟区", "110109"}, 39, []string{"新桥大街", "滨河路", "石龙南路", "黑山大街"},
		[]string{"北京市门头沟区医院", "北京京煤集团总医院", "北京市门头沟区中医医院"}},
	{District{"房山区", "110111"}, 131, []string{"拱辰大街", "长虹西路", "燕房路", "西潞大街"},
		[]string{"北京市房山区良乡医院", "北京市房山区第一医院", "北京市房山区中医医院"}},
	{District{"通州区", "110112"}, 184, []string{"新华大街", "玉带河东街", "九棵树西路", "梨园南街", "运河西大街"},
		[]string{"首都医科大学附属北京潞河医院", "北京友谊医院通州院区", "北京市通州区中医医院"}},
	{District{"顺义区", "110113"}, 132, []string{"府前东街", "光明北街", "新顺南大街", "石园南大街"},
		[]string{"北京市顺义区医院", "北京市顺义区中医医院", "北京儿童医院顺义妇儿医院"}},
	{District{"昌平区", "110114"}, 227, []string{"鼓楼南大街", "政府街", "回龙观西大街", "立汤路", "府学路"},
		[]string{"北京清华长庚医院", "北京大学国际医院", "北京市昌平区医院"}},
	{District{"大兴区", "110115"}, 199, []string{"兴华大街", "黄村西大街", "金星路", "荣华中路", "清源路"},
		[]string{"北京市大兴区人民医院", "北京仁和医院", "北京市大兴区中西医结合医院"}},
	{District{"怀柔区", "110116"}, 44, []string{"青春路", "府前街", "迎宾路", "开放路"},
		[]string{"北京怀柔医院", "北京市怀柔区中医医院"}},
	{District{"平谷区", "110117"}, 46, []string{"府前街", "新平北路", "林荫北街", "平谷大街"},
		[]string{"北京市平谷区医院", "北京市平谷区中医医院"}},
	{District{"密云区", "110118"}, 53, []string{"鼓楼东大街", "新中街", "宾阳北路", "滨河路"},
		[]string{"北京市密云区医院", "北京市密云区中医医院"}},
	{District{"延庆区", "110119"}, 35, []string{"妫水北街", "东外大街", "湖南东路", "庆园街"},
		[]string{"北京市延庆区医院", "北京市延庆区中医医院"}},
}

// referralDistricts hold the large teaching hospitals that patients from
// every district travel to.
var referralDistricts = []string{"东城区", "西城区", "朝阳区", "海淀区"}

// surnames are common single-character surnames weighted roughly by their
// share of the population (per mille, 2020 household register).
var surnames = []option[string]{
	{"王", 71}, {"李", 70}, {"张", 66}, {"刘", 53}, {"陈", 45}, {"杨", 31}, {"黄", 22}, {"赵", 21},
	{"吴", 20}, {"周", 19}, {"徐", 13}, {"孙", 12}, {"马", 12}, {"朱", 11}, {"胡", 10}, {"郭", 10},
	{"何", 9}, {"林", 9}, {"高", 9}, {"罗", 8}, {"郑", 8}, {"梁", 7}, {"谢", 6}, {"宋", 6},
	{"唐", 6}, {"许", 5}, {"韩", 5}, {"冯", 5}, {"邓", 5}, {"曹", 5}, {"彭", 5}, {"曾", 5},
	{"肖", 5}, {"田", 4}, {"董", 4}, {"袁", 4}, {"潘", 4}, {"于", 4}, {"蒋", 4}, {"蔡", 4},
	{"余", 3}, {"杜", 3}, {"叶", 3}, {"程", 3}, {"苏", 3}, {"魏", 3}, {"吕", 3}, {"丁", 3},
	{"任", 3}, {"沈", 3}, {"姚", 2}, {"卢", 2}, {"姜", 2}, {"崔", 2}, {"钟", 2}, {"谭", 2},
	{"陆", 2}, {"汪", 2}, {"范", 2}, {"金", 2}, {"石", 2}, {"廖", 2}, {"贾", 2}, {"夏", 2},
	{"韦", 2}, {"付", 2}, {"方", 2}, {"白", 2}, {"邹", 2}, {"孟", 2}, {"熊", 2}, {"秦", 2},
	{"邱", 2}, {"江", 2}, {"尹", 2}, {"薛", 2}, {"闫", 2}, {"段", 2}, {"雷", 2}, {"侯", 2},
	{"龙", 1}, {"史", 1}, {"陶", 1}, {"黎", 1}, {"贺", 1}, {"顾", 1}, {"毛", 1}, {"郝", 1},
	{"龚", 1}, {"邵", 1}, {"万", 1}, {"钱", 1}, {"严", 1}, {"武", 1}, {"戴", 1}, {"孔", 1},
}

// compoundSurnames are two-character surnames. They are far rarer in life
// than the share compoundSurnamePercent gives them, so that name maskers
// meet enough of them to be tested.
var compoundSurnames = []option[string]{
	{"欧阳", 30}, {"司马", 10}, {"上官", 8}, {"诸葛", 6}, {"东方", 6},
	{"皇甫", 6}, {"尉迟", 4}, {"公孙", 4}, {"慕容", 4}, {"令狐", 4},
}

const compoundSurnamePercent = 5

// maleGiven and femaleGiven are characters common in given names.
var (
	maleGiven   = []rune("伟强磊军勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆旭宁龙林阳建国文志海峰博昊轩睿泽晨然皓铭诚毅")
	femaleGiven = []rune("芳娜敏静丽艳娟霞秀玲婷雪慧颖琳晶欣怡萱涵悦倩洁佳雅琪璐思蕾薇晓月梅兰燕红萍瑶诗雨彤嘉")
)

// mobilePrefixes are the first three digits of mainland mobile numbers.
var mobilePrefixes = []string{
	"130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
	"150", "151", "152", "153", "155", "156", "157", "158", "159",
	"170", "171", "173", "175", "176", "177", "178",
	"180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
}

// ageRange is an inclusive range of ages in whole years.
type ageRange struct{ lo, hi int }

// ages weigh age bands roughly like Beijing's population pyramid.
var ages = []option[ageRange]{
	{ageRange{0, 14}, 12}, {ageRange{15, 24}, 9}, {ageRange{25, 34}, 18},
	{ageRange{35, 44}, 17}, {ageRange{45, 54}, 14}, {ageRange{55, 64}, 14},
	{ageRange{65, 74}, 10}, {ageRange{75, 84}, 5}, {ageRange{85, 95}, 1},
}

// diagnosis is an ICD-10 code with what a visit for it typically costs.
type diagnosis struct {
	code string
	// medianCost is the median cost of a visit in yuan.
	medianCost float64
}

// diagnoses are weighted by how often they bring anyone to a hospital;
// chronicDiagnoses by how often they bring back the chronically ill.
var (
	diagnoses = []option[diagnosis]{
		{diagnosis{"J06.9", 180}, 180}, // acute upper respiratory infection
		{diagnosis{"I10", 260}, 120},   // essential hypertension
		{diagnosis{"E11.9", 320}, 80},  // type 2 diabetes
		{diagnosis{"K29.7", 350}, 70},  // gastritis
		{diagnosis{"M54.5", 300}, 60},  // low back pain
		{diagnosis{"J20.9", 220}, 55},  // acute bronchitis
		{diagnosis{"E78.5", 280}, 50},  // hyperlipidaemia
		{diagnosis{"R51", 200}, 45},    // headache
		{diagnosis{"N39.0", 260}, 40},  // urinary tract infection
		{diagnosis{"J18.9", 3200}, 35}, // pneumonia
		{diagnosis{"S93.4", 420}, 30},  // ankle sprain
		{diagnosis{"K21.9", 380}, 30},  // gastro-oesophageal reflux
		{diagnosis{"L30.9", 160}, 30},  // dermatitis
		{diagnosis{"A09", 240}, 28},    // infectious gastroenteritis
		{diagnosis{"M17.9", 600}, 25},  // knee osteoarthritis
		{diagnosis{"I25.1", 1800}, 25}, // atherosclerotic heart disease
		{diagnosis{"H10.9", 120}, 20},  // conjunctivitis
		{diagnosis{"J45.9", 400}, 18},  // asthma
		{diagnosis{"F32.9", 450}, 15},  // depressive episode
		{diagnosis{"I63.9", 16000}, 8}, // cerebral infarction
		{diagnosis{"K35.8", 9000}, 5},  // acute appendicitis
		{diagnosis{"C34.9", 28000}, 3}, // lung cancer
	}
	chronicDiagnoses = []option[diagnosis]{
		{diagnosis{"I10", 260}, 40},
		{diagnosis{"E11.9", 320}, 30},
		{diagnosis{"E78.5", 280}, 15},
		{diagnosis{"I25.1", 1800}, 10},
		{diagnosis{"M17.9", 600}, 8},
		{diagnosis{"J45.9", 400}, 4},
		{diagnosis{"F32.9", 450}, 4},
		{diagnosis{"I63.9", 16000}, 2},
		{diagnosis{"C34.9", 28000}, 2},
	}
)

// householdSizes weigh the sizes of households on minimum-living allowance.
var householdSizes = []option[int]{
	{1, 30}, {2, 25}, {3, 20}, {4, 12}, {5, 7}, {6, 3}, {7, 2}, {8, 1},
}
