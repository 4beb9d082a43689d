package anonymize

import "time"

// idcnWeights are the GB 11643-1999 weights of the first 17 digits of a
// resident identity number.
var idcnWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

// idcnCheck maps the weighted sum modulo 11 to the check character.
const idcnCheck = "10X98765432"

// CheckDigitCN returns the GB 11643 check character for the first 17 digits
// of an 18-digit resident identity number, and false if they are not 17
// ASCII digits.
func CheckDigitCN(first17 string) (byte, bool) {
	if len(first17) != 17 {
		return 0, false
	}
	sum := 0
	for i := 0; i < 17; i++ {
		c := first17[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		sum += int(c-'0') * idcnWeights[i]
	}
	return idcnCheck[sum%11], true
}

// ValidIDCN reports whether s is an 18-digit resident identity number with a
// correct check character (an upper- or lower-case X counts as X).
func ValidIDCN(s string) bool {
	if len(s) != 18 {
		return false
	}
	want, ok := CheckDigitCN(s[:17])
	if !ok {
		return false
	}
	got := s[17]
	if got == 'x' {
		got = 'X'
	}
	return got == want
}

// parseIDCN validates a resident identity number and returns it with an
// upper-case check character. It accepts the 18-character form with a
// correct check character and the legacy 15-digit form (region, YYMMDD of a
// 20th-century birth, sequence); both must carry a real calendar date and a
// region code that does not start with 0.
func parseIDCN(s string) (string, bool) {
	switch len(s) {
	case 18:
		if !ValidIDCN(s) || s[0] == '0' || !validBirth(s[6:14]) {
			return "", false
		}
		if s[17] == 'x' {
			return s[:17] + "X", true
		}
		return s, true
	case 15:
		for i := 0; i < 15; i++ {
			if !isDigit(s[i]) {
				return "", false
			}
		}
		if s[0] == '0' || !validBirth("19"+s[6:12]) {
			return "", false
		}
		return s, true
	}
	return "", false
}

// validBirth reports whether the eight ASCII digits d are a real YYYYMMDD
// date from 1850 on.
func validBirth(d string) bool {
	t, err := time.Parse("20060102", d)
	return err == nil && t.Year() >= 1850 && t.Format("20060102") == d
}
