package anonymize

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestNullReleasesNullForAnyValue(t *testing.T) {
	null := Rule{Op: "null"}
	runOpCases(t, []opCase{
		{name: "string", rule: null, in: `"张三"`, want: nil},
		{name: "empty string", rule: null, in: `""`, want: nil},
		{name: "number", rule: null, in: `42`, want: nil},
		{name: "null", rule: null, in: `null`, want: nil},
		{name: "object", rule: null, in: `{"a":"secret"}`, want: nil},
		{name: "array", rule: null, in: `["secret"]`, want: nil},
	})
}

func TestReplaceReleasesTheConstant(t *testing.T) {
	text := Rule{Op: "replace", Params: Params{"value": "某患者"}}
	zero := Rule{Op: "replace", Params: Params{"value": json.Number("0")}}
	big := Rule{Op: "replace", Params: Params{"value": json.Number("12345678901234567890")}}
	float := Rule{Op: "replace", Params: Params{"value": 2.5}}
	flag := Rule{Op: "replace", Params: Params{"value": false}}
	null := Rule{Op: "replace", Params: Params{"value": nil}}
	quote := Rule{Op: "replace", Params: Params{"value": "say \"hi\"\n\u2028"}}
	runOpCases(t, []opCase{
		{name: "string for a string", rule: text, in: `"张三"`, want: "某患者"},
		{name: "string for an object", rule: text, in: `{"name":"张三"}`, want: "某患者"},
		{name: "string for null", rule: text, in: `null`, want: "某患者"},
		{name: "number from Rego", rule: zero, in: `1280`, want: json.Number("0")},
		{name: "number literal kept exactly", rule: big, in: `1`, want: json.Number("12345678901234567890")},
		{name: "float from Go", rule: float, in: `"x"`, want: json.Number("2.5")},
		{name: "boolean", rule: flag, in: `true`, want: false},
		{name: "null", rule: null, in: `"张三"`, want: nil},
		{name: "string needing escapes", rule: quote, in: `""`, want: "say \"hi\"\n\u2028"},
	})
}

// validID is an 18-digit resident identity number with a correct check
// digit; validIDX has X as its check character.
const (
	validID  = "110105199001051234"
	validIDX = "11010519491231002X"
)

func TestMaskIDCNKeepsTheRegionAndTheLastFour(t *testing.T) {
	id := Rule{Op: "mask_id_cn"}
	first3 := Rule{Op: "mask_id_cn", Params: Params{"keep_first": 3, "keep_last": 1, "char": "#"}}
	noLast := Rule{Op: "mask_id_cn", Params: Params{"keep_last": 0}}
	runOpCases(t, []opCase{
		{name: "18 digits", rule: id, in: `"` + validID + `"`, want: "110105********1234"},
		{name: "X check character", rule: id, in: `"` + validIDX + `"`, want: "110105********002X"},
		{name: "lower-case x is released upper-case", rule: id, in: `"11010519491231002x"`, want: "110105********002X"},
		{name: "escaped digits", rule: id, in: `"\u0031\u0031\u00301051990010512\u00334"`, want: "110105********1234"},
		{name: "legacy 15 digits keep the sequence only", rule: id, in: `"110105491231002"`, want: "110105******002"},
		{name: "legacy 15 digits, keep_last given", rule: first3, in: `"110105491231002"`, want: "110###########2"},
		{name: "custom kept parts", rule: first3, in: `"` + validID + `"`, want: "110##############4"},
		{name: "nothing kept at the end", rule: noLast, in: `"` + validID + `"`, want: "110105************"},
		{name: "wrong check digit", rule: id, in: `"110105199001051235"`, want: redacted, fallback: true},
		{name: "check digit where X is due", rule: id, in: `"110105194912310020"`, want: redacted, fallback: true},
		{name: "impossible birth date", rule: id, in: `"110105199002301238"`, want: redacted, fallback: true},
		{name: "legacy with an impossible date", rule: id, in: `"110105491331002"`, want: redacted, fallback: true},
		{name: "legacy with a letter", rule: id, in: `"11010549123100X"`, want: redacted, fallback: true},
		{name: "region code starting 0", rule: id, in: `"010105199001051234"`, want: redacted, fallback: true},
		{name: "17 digits", rule: id, in: `"11010519900105123"`, want: redacted, fallback: true},
		{name: "19 digits", rule: id, in: `"1101051990010512345"`, want: redacted, fallback: true},
		{name: "16 digits", rule: id, in: `"1101054912310021"`, want: redacted, fallback: true},
		{name: "surrounding spaces", rule: id, in: `" ` + validID + `"`, want: redacted, fallback: true},
		{name: "full-width digits", rule: id, in: `"１１０１０５１９９００１０５１２３４"`, want: redacted, fallback: true},
		{name: "empty", rule: id, in: `""`, want: redacted, fallback: true},
		{name: "given as a number", rule: id, in: `110105199001051234`, want: redacted, fallback: true},
		{name: "legacy given as a number", rule: id, in: `110105491231002`, want: redacted, fallback: true},
		{name: "object", rule: id, in: `{"id":"` + validID + `"}`, want: redacted, fallback: true},
		{name: "array", rule: id, in: `["` + validID + `"]`, want: redacted, fallback: true},
		{name: "null", rule: id, in: `null`, want: redacted, fallback: true},
	})
}

func TestMaskPhoneCNKeepsThreeAndFour(t *testing.T) {
	phone := Rule{Op: "mask_phone_cn"}
	dots := Rule{Op: "mask_phone_cn", Params: Params{"char": "•"}}
	runOpCases(t, []opCase{
		{name: "11 digits", rule: phone, in: `"13812345678"`, want: "138****5678"},
		{name: "integer", rule: phone, in: `13812345678`, want: "138****5678"},
		{name: "+86", rule: phone, in: `"+8613812345678"`, want: "138****5678"},
		{name: "+86 and a space", rule: phone, in: `"+86 13812345678"`, want: "138****5678"},
		{name: "0086 and hyphens", rule: phone, in: `"0086-138-1234-5678"`, want: "138****5678"},
		{name: "86 without plus", rule: phone, in: `"8613812345678"`, want: "138****5678"},
		{name: "86 as an integer", rule: phone, in: `8613812345678`, want: "138****5678"},
		{name: "grouped by spaces", rule: phone, in: `"138 1234 5678"`, want: "138****5678"},
		{name: "surrounding spaces", rule: phone, in: `" 19912345678 "`, want: "199****5678"},
		{name: "custom char", rule: dots, in: `"13812345678"`, want: "138••••5678"},
		{name: "second digit 2", rule: phone, in: `"12812345678"`, want: redacted, fallback: true},
		{name: "not starting 1", rule: phone, in: `"23812345678"`, want: redacted, fallback: true},
		{name: "10 digits", rule: phone, in: `"1381234567"`, want: redacted, fallback: true},
		{name: "12 digits", rule: phone, in: `"138123456789"`, want: redacted, fallback: true},
		{name: "landline", rule: phone, in: `"010-12345678"`, want: redacted, fallback: true},
		{name: "double separator", rule: phone, in: `"138--1234-5678"`, want: redacted, fallback: true},
		{name: "leading separator", rule: phone, in: `"-13812345678"`, want: redacted, fallback: true},
		{name: "other country", rule: phone, in: `"+4413812345678"`, want: redacted, fallback: true},
		{name: "letters", rule: phone, in: `"138abcd5678"`, want: redacted, fallback: true},
		{name: "float", rule: phone, in: `1.3812345678e10`, want: redacted, fallback: true},
		{name: "negative", rule: phone, in: `-13812345678`, want: redacted, fallback: true},
		{name: "empty", rule: phone, in: `""`, want: redacted, fallback: true},
		{name: "bool", rule: phone, in: `true`, want: redacted, fallback: true},
		{name: "object", rule: phone, in: `{"n":"13812345678"}`, want: redacted, fallback: true},
	})
}

func TestMaskNameCNKeepsCompoundSurnamesWhole(t *testing.T) {
	name := Rule{Op: "mask_name_cn"}
	circle := Rule{Op: "mask_name_cn", Params: Params{"char": "○"}}
	runOpCases(t, []opCase{
		{name: "compound surname, one given character", rule: name, in: `"欧阳娜"`, want: "欧阳*"},
		{name: "compound surname, two given characters", rule: name, in: `"欧阳娜娜"`, want: "欧阳**"},
		{name: "司马", rule: name, in: `"司马光"`, want: "司马*"},
		{name: "诸葛", rule: name, in: `"诸葛孔明"`, want: "诸葛**"},
		{name: "上官", rule: name, in: `"上官婉儿"`, want: "上官**"},
		{name: "rarer compound", rule: name, in: `"第五伦"`, want: "第五*"},
		{name: "ambiguous compounds are read as one-character surnames", rule: name, in: `"梁丘明"`, want: "梁**"},
		{name: "minority name with a middle dot", rule: name, in: `"阿依古丽·买买提"`, want: "阿*******"},
		{name: "custom char", rule: circle, in: `"张三丰"`, want: "张○○"},
		{name: "ideographic spaces trimmed", rule: name, in: `"　李四　"`, want: "李*"},
		{name: "null", rule: name, in: `null`, want: redacted, fallback: true},
		{name: "array", rule: name, in: `["张三"]`, want: redacted, fallback: true},
	})
}

func TestMaskEmailKeepsTheFirstCharacterAndTheDomain(t *testing.T) {
	email := Rule{Op: "mask_email"}
	runOpCases(t, []opCase{
		{name: "plain", rule: email, in: `"zhangsan@example.com"`, want: "z*******@example.com"},
		{name: "one-character mailbox", rule: email, in: `"a@qq.com"`, want: "*@qq.com"},
		{name: "digits", rule: email, in: `"123456789@qq.com"`, want: "1********@qq.com"},
		{name: "plus and dots", rule: email, in: `"li.si+tag@mail.example.cn"`, want: "l********@mail.example.cn"},
		{name: "chinese mailbox and domain", rule: email, in: `"张三@例子.中国"`, want: "张*@例子.中国"},
		{name: "no at", rule: email, in: `"zhangsan.example.com"`, want: redacted, fallback: true},
		{name: "two ats", rule: email, in: `"a@b@example.com"`, want: redacted, fallback: true},
		{name: "empty mailbox", rule: email, in: `"@example.com"`, want: redacted, fallback: true},
		{name: "empty domain", rule: email, in: `"zhangsan@"`, want: redacted, fallback: true},
		{name: "single-label domain", rule: email, in: `"root@localhost"`, want: redacted, fallback: true},
		{name: "empty label", rule: email, in: `"a@example..com"`, want: redacted, fallback: true},
		{name: "space in mailbox", rule: email, in: `"zhang san@example.com"`, want: redacted, fallback: true},
		{name: "newline in mailbox", rule: email, in: `"zhang\nsan@example.com"`, want: redacted, fallback: true},
		{name: "space in domain", rule: email, in: `"zhangsan@exa mple.com"`, want: redacted, fallback: true},
		{name: "empty", rule: email, in: `""`, want: redacted, fallback: true},
		{name: "number", rule: email, in: `42`, want: redacted, fallback: true},
		{name: "object", rule: email, in: `{"email":"a@b.cn"}`, want: redacted, fallback: true},
	})
}

func TestMaskBankCardKeepsTheIssuerAndTheLastFour(t *testing.T) {
	card := Rule{Op: "mask_bank_card"}
	runOpCases(t, []opCase{
		{name: "16 digits", rule: card, in: `"6222021234567890"`, want: "622202******7890"},
		{name: "19 digits", rule: card, in: `"6228480402564890018"`, want: "622848*********0018"},
		{name: "grouped by spaces", rule: card, in: `"6222 0212 3456 7890"`, want: "622202******7890"},
		{name: "grouped by hyphens", rule: card, in: `"6222-0212-3456-7890"`, want: "622202******7890"},
		{name: "integer", rule: card, in: `6222021234567890`, want: "622202******7890"},
		{name: "15 digits keep only the last four", rule: card, in: `"371449635398431"`, want: "***********8431"},
		{name: "12 digits keep only the last four", rule: card, in: `"123456789012"`, want: "********9012"},
		{name: "11 digits", rule: card, in: `"12345678901"`, want: redacted, fallback: true},
		{name: "20 digits", rule: card, in: `"12345678901234567890"`, want: redacted, fallback: true},
		{name: "letters", rule: card, in: `"6222 0212 3456 789X"`, want: redacted, fallback: true},
		{name: "double space", rule: card, in: `"6222  0212 3456 7890"`, want: redacted, fallback: true},
		{name: "full-width digits", rule: card, in: `"６２２２０２１２３４５６７８９０"`, want: redacted, fallback: true},
		{name: "float", rule: card, in: `6.222021234567890e15`, want: redacted, fallback: true},
		{name: "empty", rule: card, in: `""`, want: redacted, fallback: true},
		{name: "object", rule: card, in: `{"card":"6222021234567890"}`, want: redacted, fallback: true},
	})
}

func TestMaskAddressKeepsTheDistrict(t *testing.T) {
	addr := Rule{Op: "mask_address"}
	masked := func(keep, rest string) string { return keep + strings.Repeat("*", len([]rune(rest))) }
	runOpCases(t, []opCase{
		{name: "municipality", rule: addr, in: `"北京市朝阳区建国路88号院3号楼2单元1203"`, want: masked("北京市朝阳区", "建国路88号院3号楼2单元1203")},
		{name: "municipality without 市", rule: addr, in: `"北京朝阳区建国路88号"`, want: masked("北京朝阳区", "建国路88号")},
		{name: "province, city, district", rule: addr, in: `"广东省深圳市南山区科技园路1号"`, want: masked("广东省深圳市南山区", "科技园路1号")},
		{name: "city and district", rule: addr, in: `"深圳市南山区科技园路1号"`, want: masked("深圳市南山区", "科技园路1号")},
		{name: "district alone", rule: addr, in: `"朝阳区建国路88号"`, want: masked("朝阳区", "建国路88号")},
		{name: "new district", rule: addr, in: `"上海市浦东新区世纪大道100号"`, want: masked("上海市浦东新区", "世纪大道100号")},
		{name: "county", rule: addr, in: `"河北省保定市涞水县永阳镇"`, want: masked("河北省保定市涞水县", "永阳镇")},
		{name: "county-level city", rule: addr, in: `"江苏省苏州市昆山市玉山镇"`, want: masked("江苏省苏州市昆山市", "玉山镇")},
		{name: "autonomous region and banner", rule: addr, in: `"内蒙古自治区呼伦贝尔市鄂温克族自治旗巴彦托海镇"`,
			want: masked("内蒙古自治区呼伦贝尔市鄂温克族自治旗", "巴彦托海镇")},
		{name: "autonomous region with its people", rule: addr, in: `"新疆维吾尔自治区乌鲁木齐市天山区解放北路1号"`,
			want: masked("新疆维吾尔自治区乌鲁木齐市天山区", "解放北路1号")},
		{name: "autonomous prefecture", rule: addr, in: `"四川省凉山彝族自治州西昌市长安街道"`, want: masked("四川省凉山彝族自治州西昌市", "长安街道")},
		{name: "prefecture named 地区", rule: addr, in: `"新疆维吾尔自治区阿克苏地区库车市天山路"`, want: masked("新疆维吾尔自治区阿克苏地区库车市", "天山路")},
		{name: "州 inside a city name", rule: addr, in: `"浙江省杭州市西湖区文三路"`, want: masked("浙江省杭州市西湖区", "文三路")},
		{name: "州 inside a district name", rule: addr, in: `"重庆市万州区高笋塘"`, want: masked("重庆市万州区", "高笋塘")},
		{name: "district named 市中区", rule: addr, in: `"山东省济南市市中区经七路"`, want: masked("山东省济南市市中区", "经七路")},
		{name: "district named 红旗区", rule: addr, in: `"河南省新乡市红旗区人民路"`, want: masked("河南省新乡市红旗区", "人民路")},
		{name: "district named 鼓楼区", rule: addr, in: `"江苏省南京市鼓楼区中山路"`, want: masked("江苏省南京市鼓楼区", "中山路")},
		{name: "prefecture named as its province", rule: addr, in: `"吉林市船营区北京路"`, want: masked("吉林市船营区", "北京路")},
		{name: "special administrative region", rule: addr, in: `"香港特别行政区油尖旺区弥敦道"`, want: masked("香港特别行政区油尖旺区", "弥敦道")},
		{name: "spaces between divisions", rule: addr, in: `"北京市 朝阳区 建国路88号"`, want: masked("北京市 朝阳区", " 建国路88号")},
		{name: "only the divisions", rule: addr, in: `"北京市朝阳区"`, want: "北京市朝阳区"},
		{name: "escaped", rule: addr, in: `"\u5317\u4eac\u5e02\u671d\u9633\u533a\u5efa\u56fd\u8def"`, want: masked("北京市朝阳区", "建国路")},
		// Without its district an address keeps less, never a compound.
		{name: "residential compound instead of a district", rule: addr, in: `"北京市望京西园四区3号楼"`, want: masked("北京市", "望京西园四区3号楼")},
		{name: "小区 instead of a district", rule: addr, in: `"深圳市福田华强北小区"`, want: masked("深圳市", "福田华强北小区")},
		{name: "industrial zone instead of a district", rule: addr, in: `"深圳市华侨城东部工业区"`, want: masked("深圳市", "华侨城东部工业区")},
		{name: "street and compound", rule: addr, in: `"北京市建外街道幸福社区"`, want: masked("北京市", "建外街道幸福社区")},
		{name: "supermarket is not a city", rule: addr, in: `"北京市华联超市"`, want: masked("北京市", "华联超市")},
		{name: "town before a zone", rule: addr, in: `"广东省东莞市长安镇乌沙东区"`, want: masked("广东省东莞市", "长安镇乌沙东区")},
		{name: "numbered zone", rule: addr, in: `"天津市滨海三区"`, want: masked("天津市", "滨海三区")},
		{name: "digits end the divisions", rule: addr, in: `"北京市88号区"`, want: masked("北京市", "88号区")},
		{name: "province only", rule: addr, in: `"广东省some street 1"`, want: masked("广东省", "some street 1")},
		{name: "bare street", rule: addr, in: `"建国路88号"`, want: redacted, fallback: true},
		{name: "street named after a province", rule: addr, in: `"西藏中路100号"`, want: redacted, fallback: true},
		{name: "another street named after a province", rule: addr, in: `"江西路88号"`, want: redacted, fallback: true},
		{name: "street named after the province of a prefecture", rule: addr, in: `"吉林路1号"`, want: redacted, fallback: true},
		{name: "district named 上街区", rule: addr, in: `"河南省郑州市上街区中心路"`, want: masked("河南省郑州市上街区", "中心路")},
		{name: "district named 二道江区", rule: addr, in: `"吉林省通化市二道江区东通化街"`, want: masked("吉林省通化市二道江区", "东通化街")},
		{name: "city named 新乡市", rule: addr, in: `"河南省新乡市卫滨区"`, want: "河南省新乡市卫滨区"},
		{name: "street and zone after a province", rule: addr, in: `"广东省建设路东区"`, want: masked("广东省", "建设路东区")},
		{name: "foreign address", rule: addr, in: `"1600 Pennsylvania Avenue NW, Washington, DC"`, want: redacted, fallback: true},
		{name: "too long to be a division", rule: addr, in: `"一二三四五六七八九十甲乙丙丁戊己庚辛壬癸区"`, want: redacted, fallback: true},
		{name: "empty", rule: addr, in: `""`, want: redacted, fallback: true},
		{name: "number", rule: addr, in: `110105`, want: redacted, fallback: true},
		{name: "object", rule: addr, in: `{"district":"朝阳区","street":"建国路"}`, want: redacted, fallback: true},
	})
}

func TestMaskCharMustLookLikeAMask(t *testing.T) {
	for _, op := range []string{"mask", "mask_id_cn", "mask_phone_cn", "mask_name_cn", "mask_email", "mask_bank_card", "mask_address"} {
		for _, char := range []any{"x", "1", "", "**", " ", "\n", "张", 42} {
			if _, err := Compile(Spec{Fields: map[string]Rule{"f": {Op: op, Params: Params{"char": char}}}}); err == nil {
				t.Errorf("%s with char %q compiled, want an error", op, char)
			}
		}
		for _, char := range []string{"*", "#", "●", "×", "•"} {
			if _, err := Compile(Spec{Fields: map[string]Rule{"f": {Op: op, Params: Params{"char": char}}}}); err != nil {
				t.Errorf("%s with char %q: %v", op, char, err)
			}
		}
	}
}

func TestMaskIDCNKeepsTheDigitGroupsThePolicyNames(t *testing.T) {
	region := Rule{Op: "mask_id_cn", Params: Params{"keep": "region"}}
	year := Rule{Op: "mask_id_cn", Params: Params{"keep": "birth_year"}}
	both := Rule{Op: "mask_id_cn", Params: Params{"keep": "region_and_last4"}}
	last4 := Rule{Op: "mask_id_cn", Params: Params{"keep_first": 0, "keep_last": 4}}
	runOpCases(t, []opCase{
		{name: "region", rule: region, in: `"` + validID + `"`, want: "110105************"},
		{name: "region of a legacy ID", rule: region, in: `"110105491231002"`, want: "110105*********"},
		{name: "birth year", rule: year, in: `"` + validID + `"`, want: "1101051990********"},
		{name: "birth year of a legacy ID", rule: year, in: `"110105491231002"`, want: "11010549*******"},
		{name: "region and last 4, named", rule: both, in: `"` + validIDX + `"`, want: "110105********002X"},
		{name: "region and last 3 of a legacy ID, named", rule: both, in: `"110105491231002"`, want: "110105******002"},
		{name: "last 4 by counts", rule: last4, in: `"` + validID + `"`, want: "**************1234"},
		{name: "region form checks the check digit", rule: region, in: `"110105199001051235"`, want: redacted, fallback: true},
		{name: "birth year form checks the date", rule: year, in: `"110105199002301238"`, want: redacted, fallback: true},
		{name: "region form takes no number", rule: region, in: `110105199001051234`, want: redacted, fallback: true},
	})
}

// withCheck completes 17 digits to an 18-character ID.
func withCheck(t *testing.T, first17 string) string {
	t.Helper()
	c, ok := CheckDigitCN(first17)
	if !ok {
		t.Fatalf("bad ID digits %q", first17)
	}
	return first17 + string(c)
}

// The 17th digit's parity is the holder's sex, and the 18th is computed
// from the other 17: a form that keeps neither must release the same for
// every sequence number of one region and birth date, men and women alike.
func TestMaskIDCNWithoutTheLastFourHidesTheSexDigit(t *testing.T) {
	for _, form := range []string{"region", "birth_year"} {
		p := mustCompile(t, Spec{Fields: map[string]Rule{"f": {Op: "mask_id_cn", Params: Params{"keep": form}}}})
		released := map[string]bool{}
		for seq := range 1000 {
			id := withCheck(t, fmt.Sprintf("11010519900105%03d", seq))
			out, st := release(t, p, itemsShape, `{"items":[{"f":"`+id+`"}]}`)
			if st.Fallbacks != 0 {
				t.Fatalf("%s: %s fell back", form, id)
			}
			released[string(out)] = true
		}
		for seq := range 1000 {
			out, _ := release(t, p, itemsShape, fmt.Sprintf(`{"items":[{"f":"110105900105%03d"}]}`, seq))
			released[string(out)] = true
		}
		if len(released) != 2 {
			t.Errorf("keep %s released %d distinct values for 1000 sequence numbers in each form, want one per form: %v", form, len(released), released)
		}
	}
	// The form that keeps the last 4 does show the sex digit: that is what
	// the documentation warns of.
	man, woman := withCheck(t, "11010519900105123"), withCheck(t, "11010519900105124")
	a, _ := releaseOne(t, Rule{Op: "mask_id_cn"}, `"`+man+`"`, testEnv(t))
	b, _ := releaseOne(t, Rule{Op: "mask_id_cn"}, `"`+woman+`"`, testEnv(t))
	if a.(string)[16:17] != "3" || b.(string)[16:17] != "4" {
		t.Errorf("region_and_last4 released %v and %v; want the 17th digits 3 and 4 visible", a, b)
	}
}

func TestMaskPhoneCNKeepsTheDigitsThePolicyNames(t *testing.T) {
	carrier := Rule{Op: "mask_phone_cn", Params: Params{"keep": "carrier"}}
	named := Rule{Op: "mask_phone_cn", Params: Params{"keep": "carrier_and_last4"}}
	last4 := Rule{Op: "mask_phone_cn", Params: Params{"keep_first": 0, "keep_last": 4}}
	first3 := Rule{Op: "mask_phone_cn", Params: Params{"keep_last": 0}}
	runOpCases(t, []opCase{
		{name: "carrier prefix", rule: carrier, in: `"13812345678"`, want: "138********"},
		{name: "carrier prefix of a prefixed number", rule: carrier, in: `"+86 138-1234-5678"`, want: "138********"},
		{name: "carrier prefix of an integer", rule: carrier, in: `13812345678`, want: "138********"},
		{name: "carrier and last 4, named", rule: named, in: `"13812345678"`, want: "138****5678"},
		{name: "last 4 by counts", rule: last4, in: `"13812345678"`, want: "*******5678"},
		{name: "first 3 by counts", rule: first3, in: `"13812345678"`, want: "138********"},
		{name: "carrier form checks the number", rule: carrier, in: `"12812345678"`, want: redacted, fallback: true},
		{name: "carrier form takes no landline", rule: carrier, in: `"010-12345678"`, want: redacted, fallback: true},
	})
	// Without the last 4, every subscriber of one prefix looks alike.
	p := mustCompile(t, Spec{Fields: map[string]Rule{"f": carrier}})
	a, _ := release(t, p, itemsShape, `{"items":[{"f":"13812345678"}]}`)
	b, _ := release(t, p, itemsShape, `{"items":[{"f":"13899990000"}]}`)
	if string(a) != string(b) {
		t.Errorf("carrier form released %s and %s for one prefix", a, b)
	}
}

func TestMaskNameCNFixedWidthHidesTheGivenNamesLength(t *testing.T) {
	fixed := Rule{Op: "mask_name_cn", Params: Params{"width": "fixed"}}
	perChar := Rule{Op: "mask_name_cn", Params: Params{"width": "per_character"}}
	circle := Rule{Op: "mask_name_cn", Params: Params{"width": "fixed", "char": "○"}}
	runOpCases(t, []opCase{
		{name: "one given character", rule: fixed, in: `"李娜"`, want: "李*"},
		{name: "two given characters", rule: fixed, in: `"李娜娜"`, want: "李*"},
		{name: "compound surname stays recognisable", rule: fixed, in: `"欧阳娜"`, want: "欧阳*"},
		{name: "compound surname, two given characters", rule: fixed, in: `"欧阳娜娜"`, want: "欧阳*"},
		{name: "two characters read as surname and given name", rule: fixed, in: `"司马"`, want: "司*"},
		{name: "minority name with a middle dot", rule: fixed, in: `"阿依古丽·买买提"`, want: "阿*"},
		{name: "spaces trimmed", rule: fixed, in: `"　李四　"`, want: "李*"},
		{name: "custom char", rule: circle, in: `"张三丰"`, want: "张○"},
		{name: "one character has no given name to stand for", rule: fixed, in: `"王"`, want: redacted, fallback: true},
		{name: "empty", rule: fixed, in: `""`, want: redacted, fallback: true},
		{name: "number", rule: fixed, in: `42`, want: redacted, fallback: true},
		{name: "per character, named", rule: perChar, in: `"欧阳娜娜"`, want: "欧阳**"},
		{name: "per character, one character", rule: perChar, in: `"王"`, want: "*"},
	})
	p := mustCompile(t, Spec{Fields: map[string]Rule{"f": fixed}})
	for _, surname := range []string{"李", "王", "欧阳", "诸葛", "上官"} {
		var first string
		for n := 1; n <= 6; n++ {
			out, st := release(t, p, itemsShape, `{"items":[{"f":"`+surname+strings.Repeat("娜", n)+`"}]}`)
			if st.Fallbacks != 0 {
				t.Fatalf("%s with %d given characters fell back", surname, n)
			}
			if n == 1 {
				first = string(out)
			} else if string(out) != first {
				t.Errorf("%s with %d given characters released %s, with 1 %s: the length shows", surname, n, out, first)
			}
		}
	}
}

func TestMaskFormParametersAreChecked(t *testing.T) {
	for _, rule := range []Rule{
		{Op: "mask_id_cn", Params: Params{"keep": "birth_date"}},
		{Op: "mask_id_cn", Params: Params{"keep": ""}},
		{Op: "mask_id_cn", Params: Params{"keep": 6}},
		{Op: "mask_id_cn", Params: Params{"keep": "region", "keep_first": 6}},
		{Op: "mask_id_cn", Params: Params{"keep": "region", "keep_last": 0}},
		{Op: "mask_phone_cn", Params: Params{"keep": "area"}},
		{Op: "mask_phone_cn", Params: Params{"keep": "carrier", "keep_last": 4}},
		{Op: "mask_phone_cn", Params: Params{"keep_first": 11}},
		{Op: "mask_phone_cn", Params: Params{"keep_first": -1}},
		{Op: "mask_phone_cn", Params: Params{"keep_last": 2.5}},
		{Op: "mask_name_cn", Params: Params{"width": "variable"}},
		{Op: "mask_name_cn", Params: Params{"width": ""}},
		{Op: "mask_name_cn", Params: Params{"width": 1}},
		{Op: "mask_name_cn", Params: Params{"keep": "surname"}},
	} {
		if p, err := Compile(Spec{Fields: map[string]Rule{"f": rule}}); err == nil {
			t.Errorf("%s %v compiled to %v, want an error", rule.Op, rule.Params, p.Treatments())
		}
	}
}
