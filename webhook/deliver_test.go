package webhook

import "testing"

func TestClassifyRetriesOnlyWhatMaySucceedLater(t *testing.T) {
	for want, statuses := range map[verdict][]int{
		delivered: {200, 201, 202, 204, 299},
		retry:     {408, 409, 425, 429, 500, 502, 503, 504, 599},
		refused:   {100, 300, 301, 302, 303, 307, 308, 400, 401, 403, 404, 405, 410, 413, 415, 422, 451, 600},
	} {
		for _, status := range statuses {
			if got := classify(status); got != want {
				t.Errorf("classify(%d) = %d, want %d", status, got, want)
			}
		}
	}
}
