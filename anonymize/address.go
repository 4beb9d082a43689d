package anonymize

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maskAddress keeps a mainland Chinese address down to its district or
// county and masks the rest, one mask character per character:
//
//	"北京市朝阳区建国路88号"         → "北京市朝阳区******"
//	"广东省深圳市南山区科技园路1号"     → "广东省深圳市南山区******"
//	"江苏省苏州市昆山市玉山镇"         → "江苏省苏州市昆山市***"
//	"内蒙古自治区呼伦贝尔市鄂温克族自治旗巴彦托海镇" → "内蒙古自治区呼伦贝尔市鄂温克族自治旗*****"
//
// It reads the administrative divisions at the start of the address by
// their names and suffixes: a province-level name (北京, 广东省, 新疆维吾尔自治区,
// 香港特别行政区), then a prefecture (市, 自治州, 地区, 盟), then a district or
// county (区, 县, 旗, or a county-level 市 after a prefecture), and stops at
// the first district or county. Each division is Chinese characters only;
// digits, Latin letters or punctuation end the administrative part. A
// province's short name without its suffix counts only when a division
// follows (北京朝阳区), since streets are named after provinces (西藏中路,
// 江西路).
//
// When in doubt it keeps less, never more: a part that looks like a
// residential compound or zone rather than a district (小区, 社区, 园区, 校区,
// 工业区, 开发区, 四区, names with 园, 苑, 村, 院, 楼, 号) ends the kept prefix, so
// an address without its district keeps only its city. An address in which
// no division is recognised at all (a bare street, a foreign address, a
// number) falls back to redact. char sets the mask character.
type maskAddress struct{ char string }

func newMaskAddress(p Params) (Operator, error) {
	if err := p.check("char"); err != nil {
		return nil, err
	}
	c, err := maskChar(p)
	if err != nil {
		return nil, err
	}
	return maskAddress{char: c}, nil
}

func (m maskAddress) Apply(dst []byte, v Value, _ *Env) ([]byte, bool) {
	if v.Kind != String {
		return dst, false
	}
	s, _ := v.Text()
	s = strings.TrimSpace(s)
	n := addressPrefix(s)
	if n == 0 {
		return dst, false
	}
	out := s[:n] + strings.Repeat(m.char, utf8.RuneCountInString(s[n:]))
	return appendString(dst, out), true
}

// Administrative levels, from the top.
const (
	levelNone = iota
	levelProvince
	levelPrefecture
	levelDistrict
)

// provinces are the province-level divisions by their short names, with
// the suffixes their full names take.
var provinces = []struct{ name, suffix string }{
	{"北京", "市"}, {"天津", "市"}, {"上海", "市"}, {"重庆", "市"},
	{"河北", "省"}, {"山西", "省"}, {"辽宁", "省"}, {"吉林", "省"}, {"黑龙江", "省"}, {"江苏", "省"},
	{"浙江", "省"}, {"安徽", "省"}, {"福建", "省"}, {"江西", "省"}, {"山东", "省"}, {"河南", "省"},
	{"湖北", "省"}, {"湖南", "省"}, {"广东", "省"}, {"海南", "省"}, {"四川", "省"}, {"贵州", "省"},
	{"云南", "省"}, {"陕西", "省"}, {"甘肃", "省"}, {"青海", "省"}, {"台湾", "省"},
	{"内蒙古", "自治区"}, {"广西", "壮族自治区"}, {"西藏", "自治区"}, {"宁夏", "回族自治区"},
	{"新疆", "维吾尔自治区"}, {"香港", "特别行政区"}, {"澳门", "特别行政区"},
}

// addressPrefix returns the length in bytes of the administrative prefix
// of s that mask_address keeps, 0 when it recognises none.
func addressPrefix(s string) int {
	kept, level := 0, levelNone
	// bare is a province's short name without its suffix: 北京朝阳区 names
	// the province, 西藏中路 and 江西路 are streets named after one.
	bare := false
	for _, p := range provinces {
		if rest, ok := strings.CutPrefix(s, p.name); ok {
			kept, level = len(p.name), levelProvince
			switch {
			case strings.HasPrefix(rest, p.suffix):
				kept += len(p.suffix)
			case strings.HasPrefix(rest, "市"):
				// 吉林市: the prefecture named as its province.
				kept, level = kept+len("市"), levelPrefecture
			default:
				bare = true
			}
			break
		}
	}
	start := kept
	for level < levelDistrict {
		for start < len(s) {
			r, n := utf8.DecodeRuneInString(s[start:])
			if r != ' ' && r != '\u3000' {
				break
			}
			start += n
		}
		n, l := division(s[start:])
		switch {
		case n == 0:
		case l == levelProvince && level != levelNone:
			n = 0
		case l == levelPrefecture && level == levelPrefecture && strings.HasSuffix(s[start:start+n], "市"):
			l = levelDistrict // a county-level city
		case l == levelPrefecture && level == levelPrefecture:
			n = 0
		}
		if n == 0 {
			break
		}
		kept, level, bare = start+n, l, false
		start = kept
	}
	if bare {
		return 0
	}
	return kept
}

// maxDivision is the most characters a division name has
// (双江拉祜族佤族布朗族傣族自治县 has 15).
const maxDivision = 16

// division reads one administrative division at the start of s and returns
// its length in bytes and level, or 0 when s does not start with one.
func division(s string) (int, int) {
	var runes []rune
	for i, r := range s {
		if !unicode.Is(unicode.Han, r) || len(runes) == maxDivision {
			return 0, levelNone
		}
		runes = append(runes, r)
		if len(runes) < 2 {
			continue
		}
		end := i + utf8.RuneLen(r)
		level := levelNone
		switch r {
		case '省':
			level = levelProvince
		case '盟':
			level = levelPrefecture
		case '市':
			level = levelPrefecture
		case '州':
			if hasSuffixRunes(runes, "自治州") {
				level = levelPrefecture
			}
		case '区':
			switch {
			case hasSuffixRunes(runes, "自治区"), hasSuffixRunes(runes, "特别行政区"):
				level = levelProvince
			case hasSuffixRunes(runes, "地区"):
				level = levelPrefecture
			default:
				level = levelDistrict
			}
		case '县', '旗':
			level = levelDistrict
		}
		if level == levelNone {
			continue
		}
		// 红旗区, 市中区: a suffix character inside a name whose own suffix
		// follows at once.
		if next, n := utf8.DecodeRuneInString(s[end:]); next == '区' && r != '区' {
			runes, end, level = append(runes, next), end+n, levelDistrict
		}
		if !plausibleDivision(runes) {
			return 0, levelNone
		}
		return end, level
	}
	return 0, levelNone
}

// notDistricts are endings of 区 that name residential compounds, campuses
// and zones, not districts; notCities are endings of 市 that name markets.
var (
	notDistricts = []string{"小区", "社区", "园区", "校区", "景区", "街区", "厂区", "片区", "院区",
		"宿舍区", "生活区", "住宅区", "商务区", "办公区", "工业区", "开发区", "保税区", "试验区", "示范区", "风景区"}
	notCities = []string{"超市", "菜市", "集市", "夜市", "早市", "门市", "股市", "花市", "鱼市"}
)

// plausibleDivision rejects names that look like places below a district:
// compounds, zones, streets, towns, markets.
func plausibleDivision(runes []rune) bool {
	name := string(runes)
	if strings.ContainsAny(name, "园苑村院号巷弄栋幢室") {
		return false
	}
	if strings.Contains(name, "楼") && !strings.HasSuffix(name, "鼓楼区") {
		return false
	}
	// A street, sub-district or town followed by more: 建国路东区,
	// 建外街道幸福社区, 长安镇乌沙东区. Real divisions have these characters
	// only first or next to last (路北区, 镇江市, 新乡市, 上街区), but for
	// 二道江区.
	for i := 1; i < len(runes)-2; i++ {
		switch runes[i] {
		case '路', '街', '镇', '乡':
			return false
		case '道':
			if runes[i-1] != '二' {
				return false
			}
		}
	}
	last := runes[len(runes)-1]
	if last == '区' && name != "上街区" {
		for _, e := range notDistricts {
			if strings.HasSuffix(name, e) {
				return false
			}
		}
		if strings.ContainsRune("一二三四五六七八九十〇零", runes[len(runes)-2]) {
			return false
		}
	}
	if last == '市' {
		for _, e := range notCities {
			if strings.HasSuffix(name, e) {
				return false
			}
		}
	}
	if len(runes) > 8 && !strings.Contains(name, "自治") && !strings.Contains(name, "联合旗") {
		return false
	}
	return true
}

func hasSuffixRunes(runes []rune, suffix string) bool {
	return strings.HasSuffix(string(runes), suffix)
}
