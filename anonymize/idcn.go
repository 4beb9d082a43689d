package anonymize

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
