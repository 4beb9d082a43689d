package hub

import (
	"strings"
	"testing"
	"time"
)

func cal2026(t *testing.T) *Calendar {
	t.Helper()
	c, err := LoadCalendar("testdata/calendar-2026.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// at is 10:00 on the date, in Shanghai.
func at(c *Calendar, date string) time.Time {
	d, err := time.ParseInLocation(time.DateOnly, date, c.Location())
	if err != nil {
		panic(err)
	}
	return d.Add(10 * time.Hour)
}

// endOf is the end of the date: midnight at its close.
func endOf(c *Calendar, date string) time.Time { return c.EndOfDay(at(c, date)) }

func TestDueCountsWorkingDaysAfterTheStart(t *testing.T) {
	c := cal2026(t)
	for _, tc := range []struct {
		name  string
		start string
		n     int
		want  string
	}{
		{"a Friday plus one working day is Monday", "2026-03-06", 1, "2026-03-09"},
		{"a Monday plus ten working days skips two weekends", "2026-03-02", 10, "2026-03-16"},
		{"a Saturday start counts from Monday", "2026-03-07", 1, "2026-03-09"},
		{"the National Day week is off and its make-up Saturday counts", "2026-09-30", 1, "2026-10-08"},
		{"the make-up Saturday is a working day", "2026-10-09", 1, "2026-10-10"},
		{"the Spring Festival: the Saturday before works, nine days off", "2026-02-13", 2, "2026-02-24"},
		{"a make-up Sunday before a Monday", "2026-01-03", 1, "2026-01-04"},
		{"ten working days over Labour Day and its make-up Saturday", "2026-04-30", 10, "2026-05-18"},
		{"zero days on a holiday is the end of the next working day", "2026-10-03", 0, "2026-10-08"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := c.Due(at(c, tc.start), tc.n), endOf(c, tc.want); !got.Equal(want) {
				t.Errorf("Due(%s, %d) = %s, want %s", tc.start, tc.n, got, want)
			}
		})
	}
}

func TestDefaultCalendarKnowsOnlyWeekends(t *testing.T) {
	c := DefaultCalendar()
	if c.Location().String() != DefaultZone {
		t.Errorf("zone %s, want %s", c.Location(), DefaultZone)
	}
	if got, want := c.Due(at(c, "2026-10-01"), 1), endOf(c, "2026-10-02"); !got.Equal(want) {
		t.Errorf("without a calendar file National Day is a working day: Due = %s, want %s", got, want)
	}
	if got := c.Due(time.Date(2026, 3, 6, 20, 0, 0, 0, time.UTC), 1); !got.Equal(time.Date(2026, 3, 10, 0, 0, 0, 0, c.Location())) {
		t.Errorf("Friday 20:00 UTC is Saturday in Shanghai: due %s, want the end of Monday", got)
	}
}

func TestWorkingDaysIsTheInverseOfDue(t *testing.T) {
	c := cal2026(t)
	for day := at(c, "2026-01-01"); day.Year() == 2026; day = day.AddDate(0, 0, 1) {
		for _, n := range []int{1, 3, 10} {
			if got := c.WorkingDays(day, c.Due(day, n)); got != n {
				t.Fatalf("WorkingDays(%s, Due(%s, %d)) = %d", day, day, n, got)
			}
		}
	}
}

func TestAPauseAcrossAHolidayCarriesTheDaysLeft(t *testing.T) {
	c := cal2026(t)
	r := testRequest(Submitted)
	// Submitted on Monday 21 September, due ten working days later: 22,
	// 23, 24, 28, 29, 30 September (the 25th is Mid-Autumn), 8, 9, 10 (a
	// make-up Saturday) and 12 October.
	r.Created, r.Due = at(c, "2026-09-21"), c.Due(at(c, "2026-09-21"), 10)
	if want := endOf(c, "2026-10-12"); !r.Due.Equal(want) {
		t.Fatalf("due %s, want %s", r.Due, want)
	}
	// Sent back on Thursday 24 September: seven working days were left.
	if _, err := r.Apply(Act{Action: NeedInfo, Reason: "which districts?"}, sam, at(c, "2026-09-24"), c); err != nil {
		t.Fatal(err)
	}
	if r.RemainingDays != 7 || !r.PausedAt.Equal(at(c, "2026-09-24")) {
		t.Fatalf("paused with %d days left at %s, want 7 at the 24th", r.RemainingDays, r.PausedAt)
	}
	// Replied to on Tuesday 29 September: the seven days run from the
	// 30th, over the National Day week: 30 September, 8, 9, 10, 12, 13,
	// 14 October.
	if _, err := r.Apply(Act{Action: Reply, Reason: "all of them"}, alice, at(c, "2026-09-29"), c); err != nil {
		t.Fatal(err)
	}
	if want := endOf(c, "2026-10-14"); !r.Due.Equal(want) || !r.PausedAt.IsZero() || r.RemainingDays != 0 {
		t.Errorf("after the reply due %s (paused %s, %d left), want %s", r.Due, r.PausedAt, r.RemainingDays, want)
	}
}

func TestAReplyOnTheDayOfThePauseKeepsTheDueTime(t *testing.T) {
	c := cal2026(t)
	due := c.Due(at(c, "2026-03-02"), 10)
	if got := c.Resume(at(c, "2026-03-04").Add(5*time.Hour), c.WorkingDays(at(c, "2026-03-04"), due)); !got.Equal(due) {
		t.Errorf("resumed the same day: due %s, want %s", got, due)
	}
}

func TestCalendarFileMistakesAreNamed(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"holidays: [2026-13-01]", `holidays[0]: "2026-13-01" is not a date`},
		{"workdays: [2026-03-04]", "workdays[0]: 2026-03-04 is a Wednesday, a working day already"},
		{"holidays: [2026-01-01]\nworkdays: [2026-01-01]", "workdays[0]: 2026-01-01 is listed twice"},
		{"zone: Mars/Olympus", `zone "Mars/Olympus"`},
		{"holiday: [2026-01-01]", "field holiday not found"},
	} {
		_, err := ParseCalendar([]byte(tc.file))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want it to say %q", tc.file, err, tc.want)
		}
	}
}
