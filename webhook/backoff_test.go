package webhook

import (
	"net/http"
	"testing"
	"time"
)

func TestDefaultBackoffDoublesFromOneSecondWithinTwentyPercent(t *testing.T) {
	limit := 10 * time.Minute
	for _, tc := range []struct {
		attempt int
		base    time.Duration
	}{
		{0, time.Second}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {8, 128 * time.Second},
		{10, 512 * time.Second}, {11, limit}, {64, limit}, {1000, limit},
	} {
		for _, r := range []struct {
			rnd  float64
			want time.Duration
		}{
			{0, tc.base * 8 / 10},
			{0.5, tc.base},
			{0.75, min(tc.base*11/10, limit)},
		} {
			got := exponential(limit, func() float64 { return r.rnd })(tc.attempt)
			if diff := got - r.want; diff < -time.Millisecond || diff > time.Millisecond {
				t.Errorf("attempt %d, jitter %v: wait %s, want %s", tc.attempt, r.rnd, got, r.want)
			}
		}
	}
}

func TestRetryAfterReadsSecondsOrADate(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"7", 7 * time.Second},
		{" 120 ", 2 * time.Minute},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"-5", 0},
		{"soon", 0},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Retry-After", tc.header)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("Retry-After %q: %s, want %s", tc.header, got, tc.want)
		}
	}
}

func TestDelayHonoursRetryAfterUpToMaxBackoff(t *testing.T) {
	s := &Sender{opts: Options{MaxBackoff: time.Minute, Backoff: func(n int) time.Duration { return time.Duration(n) * time.Second }}}
	for _, tc := range []struct {
		attempt    int
		retryAfter time.Duration
		want       time.Duration
	}{
		{3, 0, 3 * time.Second},
		{3, 10 * time.Second, 10 * time.Second}, // the receiver asked for longer
		{3, time.Second, 3 * time.Second},       // waiting longer than asked still honours it
		{3, time.Hour, time.Minute},             // but never past MaxBackoff
		{90, 0, time.Minute},                    // nor may Backoff go past it
	} {
		if got := s.delay(tc.attempt, tc.retryAfter); got != tc.want {
			t.Errorf("delay(%d, %s) = %s, want %s", tc.attempt, tc.retryAfter, got, tc.want)
		}
	}
}
