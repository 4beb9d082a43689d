package gateway

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a length of time, written as a Go duration ("10s", "1m30s",
// "250ms"; units ns, us, ms, s, m and h) or as a whole number of days
// ("365d").
//
//config:schema {"type": "string", "pattern": "^([-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)|0*[1-9][0-9]*d)$"}
type Duration time.Duration

// UnmarshalYAML parses a Go duration string, or a whole number of days
// such as "365d".
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseUint(days, 10, 16)
		if err != nil || v == 0 {
			return fmt.Errorf("line %d: %q: want a positive whole number of days, such as 365d", n.Line, s)
		}
		*d = Duration(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Size is a byte count, written as a number (1048576) or with a binary
// unit ("64KiB", "1MiB", "1GiB").
//
//config:schema {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+(KiB|MiB|GiB)?$"}]}
type Size int64

// UnmarshalYAML parses a byte size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	var str string
	if err := n.Decode(&str); err != nil {
		return err
	}
	num, mult := str, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(str, u.suffix) {
			num, mult = strings.TrimSuffix(str, u.suffix), u.mult
			break
		}
	}
	// ParseUint, unlike Sscanf, rejects signs, spaces and trailing garbage
	// ("12abc", "1.5MiB").
	v, err := strconv.ParseUint(num, 10, 63)
	if err != nil || v > math.MaxInt64/uint64(mult) {
		return fmt.Errorf("line %d: %q is not a size: want a byte count like 1048576, 64KiB, 1MiB or 1GiB", n.Line, str)
	}
	*s = Size(int64(v) * mult)
	return nil
}
