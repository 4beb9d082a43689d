package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluicegw/sluice/hub"
)

// HubConfig sets the sharing hub's clocks. The hub keeps its requests,
// grants and demands in the state backend: a bbolt file beside
// state.path (state/sluice-hub.db beside state/sluice.db; see HubPath),
// or state.redis shared by every replica.
type HubConfig struct {
	// CalendarFile lists holidays and make-up working days (the hub's
	// calendar format: zone, holidays, workdays). Unset: weekends only,
	// Asia/Shanghai.
	CalendarFile string `yaml:"calendar_file"`
	// Due are the working days each kind of answer is due in.
	Due HubDue `yaml:"due"`
}

// HubDue are answer deadlines, in working days.
type HubDue struct {
	// Request: a steward's decision on a sharing request (default 10; 1
	// to 250).
	Request int `yaml:"request"`
	// Demand: the owner's answer to a demand (default 10; 1 to 250).
	Demand int `yaml:"demand"`
}

func (h *HubConfig) validate(bad func(field, format string, args ...any)) {
	for _, d := range []struct {
		name string
		v    *int
	}{{"hub.due.request", &h.Due.Request}, {"hub.due.demand", &h.Due.Demand}} {
		switch {
		case *d.v == 0:
			*d.v = 10
		case *d.v < 1 || *d.v > 250:
			bad(d.name, "want 1 to 250 working days, got %d", *d.v)
		}
	}
}

// HubPath is the hub's bbolt file when the state is embedded: beside
// state.path, named after it (state/sluice.db → state/sluice-hub.db), so
// that two gateways with two state files keep two hubs. "" without
// state.path.
func (c *Config) HubPath() string {
	if c.State.Path == "" {
		return ""
	}
	p := c.Path(c.State.Path)
	return strings.TrimSuffix(p, filepath.Ext(p)) + "-hub.db"
}

// calendar loads the configured calendar, or the default one.
func (c *Config) calendar() (*hub.Calendar, error) {
	if c.Hub.CalendarFile == "" {
		return hub.DefaultCalendar(), nil
	}
	b, err := os.ReadFile(c.Path(c.Hub.CalendarFile))
	if err != nil {
		return nil, fmt.Errorf("hub.calendar_file: %w", err)
	}
	cal, err := hub.ParseCalendar(b)
	if err != nil {
		return nil, fmt.Errorf("hub.calendar_file: %w", err)
	}
	return cal, nil
}

// validateSharing checks the dataset's catalogue entry: sharing is
// unconditional, conditional (the default: a steward decides each
// request) or none, which needs the basis that forbids sharing; the
// owner defaults to the source.
func (d *DatasetConfig) validateSharing(df, source string, bad func(field, format string, args ...any)) {
	switch hub.Sharing(d.Sharing) {
	case "":
		d.Sharing = string(hub.Conditional)
	case hub.Unconditional, hub.Conditional:
	case hub.None:
		if d.Basis == "" {
			bad(df+".basis", "a dataset not shared (sharing: none) names the rule that forbids it")
		}
	default:
		bad(df+".sharing", "want unconditional, conditional or none, got %q", d.Sharing)
	}
	if d.Owner == "" {
		d.Owner = source
	} else if !nameRE.MatchString(d.Owner) {
		bad(df+".owner", "want a department name (lower-case letters, digits, - or _), got %q", d.Owner)
	}
}

// hubDataset is the dataset's entry in the hub's catalogue.
func (ds *dataset) hubDataset() hub.Dataset {
	return hub.Dataset{Name: ds.src.cfg.Name + "/" + ds.cfg.Name, Sharing: hub.Sharing(ds.cfg.Sharing),
		Owner: ds.cfg.Owner, Basis: ds.cfg.Basis}
}
