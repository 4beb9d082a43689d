package hub

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"
)

// The default answer times, in working days (hub.due.request and
// hub.due.demand in the gateway's configuration).
const (
	DefaultRequestDays = 10
	DefaultDemandDays  = 10
)

// DefaultZone is the time zone of a calendar that names none.
const DefaultZone = "Asia/Shanghai"

// Calendar says which days are working days: Monday to Friday, except
// public holidays, plus make-up working days (调休) that fall on a weekend.
// Days are days of its time zone. The clocks of requests and demands run
// on working days only.
//
// A calendar file is YAML:
//
//	zone: Asia/Shanghai          # optional, the default
//	holidays: [2026-01-01, 2026-01-02]   # days off (weekdays, or any day of a holiday period)
//	workdays: [2026-01-04]               # make-up working days, each a Saturday or Sunday
//
// A day is in at most one list. Days not listed follow the week.
type Calendar struct {
	loc *time.Location
	// days overrides the week: date (2006-01-02) → working or not.
	days map[string]bool
}

// calendarFile is a calendar file's shape.
type calendarFile struct {
	Zone     string   `yaml:"zone"`
	Holidays []string `yaml:"holidays"`
	Workdays []string `yaml:"workdays"`
}

// DefaultCalendar is weekends off, no holidays, in [DefaultZone].
func DefaultCalendar() *Calendar {
	c, _ := newCalendar("")
	return c
}

func newCalendar(zone string) (*Calendar, error) {
	if zone == "" {
		zone = DefaultZone
	}
	loc, err := time.LoadLocation(zone)
	if err != nil && zone == DefaultZone {
		// China has kept UTC+8 without daylight saving since 1991, so a
		// host without tzdata loses nothing on the dates a hub sees.
		loc, err = time.FixedZone(DefaultZone, 8*60*60), nil
	}
	if err != nil {
		return nil, fmt.Errorf("zone %q: %w", zone, err)
	}
	return &Calendar{loc: loc, days: map[string]bool{}}, nil
}

// LoadCalendar reads the calendar file at path (the format is on
// [Calendar]).
func LoadCalendar(path string) (*Calendar, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("hub: calendar: %w", err)
	}
	c, err := ParseCalendar(b)
	if err != nil {
		return nil, fmt.Errorf("hub: calendar %s: %w", path, err)
	}
	return c, nil
}

// ParseCalendar reads a calendar file's contents. Errors name the
// offending list and entry.
func ParseCalendar(b []byte) (*Calendar, error) {
	var f calendarFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	c, err := newCalendar(f.Zone)
	if err != nil {
		return nil, err
	}
	for _, list := range []struct {
		name    string
		days    []string
		working bool
	}{{"holidays", f.Holidays, false}, {"workdays", f.Workdays, true}} {
		for i, s := range list.days {
			d, err := time.ParseInLocation(time.DateOnly, s, c.loc)
			if err != nil {
				return nil, fmt.Errorf("%s[%d]: %q is not a date (YYYY-MM-DD)", list.name, i, s)
			}
			if _, twice := c.days[s]; twice {
				return nil, fmt.Errorf("%s[%d]: %s is listed twice", list.name, i, s)
			}
			if weekend := d.Weekday() == time.Saturday || d.Weekday() == time.Sunday; list.working && !weekend {
				return nil, fmt.Errorf("%s[%d]: %s is a %s, a working day already", list.name, i, s, d.Weekday())
			}
			c.days[s] = list.working
		}
	}
	return c, nil
}

// Location is the calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// IsWorkingDay reports whether the day holding t (in the calendar's zone)
// is a working day.
func (c *Calendar) IsWorkingDay(t time.Time) bool {
	t = t.In(c.loc)
	if working, ok := c.days[t.Format(time.DateOnly)]; ok {
		return working
	}
	return t.Weekday() != time.Saturday && t.Weekday() != time.Sunday
}

// startOfDay is midnight at the start of t's day in the calendar's zone.
func (c *Calendar) startOfDay(t time.Time) time.Time {
	t = t.In(c.loc)
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, c.loc)
}

// EndOfDay is the instant t's day ends in the calendar's zone: midnight
// at its close, which belongs to the next day. A date given as a deadline
// ("valid_until": "2027-03-31") means the end of that day.
func (c *Calendar) EndOfDay(t time.Time) time.Time { return c.startOfDay(t).AddDate(0, 0, 1) }

// maxDays bounds the days a clock walks, against a calendar or a duration
// that would never end the walk.
const maxDays = 100 * 366

// Due is the end of the nth working day after start's day (see
// [Calendar.EndOfDay]): the day of submission does not count, so a
// request submitted on a Friday with n = 1 is due at the end of Monday.
// With n < 1 it is the end of start's day if that is a working day, else
// of the next working day.
func (c *Calendar) Due(start time.Time, n int) time.Time {
	day := c.startOfDay(start)
	if n < 1 {
		for i := 0; !c.IsWorkingDay(day) && i < maxDays; i++ {
			day = day.AddDate(0, 0, 1)
		}
		return c.EndOfDay(day)
	}
	for i := 0; n > 0 && i < maxDays; i++ {
		day = day.AddDate(0, 0, 1)
		if c.IsWorkingDay(day) {
			n--
		}
	}
	return c.EndOfDay(day)
}

// WorkingDays counts the working days after from's day that end by due:
// the working days a clock paused at from still had before due. It is
// the inverse of Due: WorkingDays(t, Due(t, n)) = n for n ≥ 1.
func (c *Calendar) WorkingDays(from, due time.Time) int {
	n := 0
	for day, i := c.startOfDay(from).AddDate(0, 0, 1), 0; !c.EndOfDay(day).After(due) && i < maxDays; day, i = day.AddDate(0, 0, 1), i+1 {
		if c.IsWorkingDay(day) {
			n++
		}
	}
	return n
}

// Resume is the due time of a clock that paused with remaining working
// days left (see [Calendar.WorkingDays]) and resumes at now: the
// remaining days count from the day after now, as they did from the day
// after the pause. A request sent back and replied to on the same day
// keeps its due time; every whole day in between, and every holiday,
// moves it on.
func (c *Calendar) Resume(now time.Time, remaining int) time.Time { return c.Due(now, remaining) }
