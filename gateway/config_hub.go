package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
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
	// SealKeyFile holds the 32-byte AES-256 key (raw, or 64 hex digits)
	// that seals objections' free text at rest (AES-GCM). Unset: a key
	// derived from hmac_key_file.
	SealKeyFile string `yaml:"seal_key_file"`
	// Webhooks push a department's notices to its own service as they are
	// sent (signed, retried with back-off); notices are always kept for
	// GET /v1/notices too.
	Webhooks []WebhookConfig `yaml:"webhooks"`
}

// WebhookConfig is a department's notice webhook.
type WebhookConfig struct {
	// Dept is the department whose notices are pushed. Required.
	//
	//config:pattern nameRE
	Dept string `yaml:"dept"`
	// URL receives each notice as a JSON POST. https, or http to a
	// loopback address. Required.
	URL string `yaml:"url"`
	// SecretFile holds the department's signing secret (at least 32
	// bytes; the file readable by its owner only, mode 0600): each
	// delivery carries Webhook-Id, Webhook-Timestamp and
	// Webhook-Signature (HMAC-SHA256, as Standard Webhooks). Required.
	SecretFile string `yaml:"secret_file"`
}

// HubDue are answer deadlines, in working days.
type HubDue struct {
	// Request: a steward's decision on a sharing request (default 10; 1
	// to 250).
	Request int `yaml:"request"`
	// Demand: the owner's answer to a demand (default 10; 1 to 250).
	Demand int `yaml:"demand"`
	// ObjectionAccept: a steward's acceptance or rejection of an
	// objection (default 2; 1 to 250).
	ObjectionAccept int `yaml:"objection_accept"`
	// ObjectionResolve: the correction or upholding of an accepted
	// objection (default 10; 1 to 250).
	ObjectionResolve int `yaml:"objection_resolve"`
}

func (h *HubConfig) validate(bad func(field, format string, args ...any)) {
	for _, d := range []struct {
		name string
		v    *int
		def  int
	}{{"hub.due.request", &h.Due.Request, 10}, {"hub.due.demand", &h.Due.Demand, 10},
		{"hub.due.objection_accept", &h.Due.ObjectionAccept, hub.DefaultObjectionAcceptDays},
		{"hub.due.objection_resolve", &h.Due.ObjectionResolve, hub.DefaultObjectionResolveDays}} {
		switch {
		case *d.v == 0:
			*d.v = d.def
		case *d.v < 1 || *d.v > 250:
			bad(d.name, "want 1 to 250 working days, got %d", *d.v)
		}
	}
	seen := map[string]bool{}
	for i, wh := range h.Webhooks {
		f := fmt.Sprintf("hub.webhooks[%d]", i)
		switch {
		case wh.Dept == "":
			bad(f+".dept", "required")
		case !nameRE.MatchString(wh.Dept):
			bad(f+".dept", "want a department name (lower-case letters, digits, - or _), got %q", wh.Dept)
		case seen[wh.Dept]:
			bad(f+".dept", "department %s has a webhook already", wh.Dept)
		}
		seen[wh.Dept] = true
		if wh.SecretFile == "" {
			bad(f+".secret_file", "required")
		}
		switch u, err := url.Parse(wh.URL); {
		case wh.URL == "":
			bad(f+".url", "required")
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			bad(f+".url", "want an http(s) URL with a host")
		case u.Scheme == "http" && !isLoopback(u.Hostname()):
			bad(f+".url", "http only to a loopback address; use https")
		case u.User != nil:
			bad(f+".url", "credentials do not belong in the URL: deliveries are signed")
		}
	}
}

// sealKey is the key objections' free text is sealed with: the
// seal_key_file's, else one derived from the gateway's secret.
func (c *Config) sealKey(secret []byte) ([]byte, error) {
	if c.Hub.SealKeyFile == "" {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("sluice/hub/seal/v1"))
		return m.Sum(nil), nil
	}
	b, err := os.ReadFile(c.Path(c.Hub.SealKeyFile))
	if err != nil {
		return nil, fmt.Errorf("hub.seal_key_file: %w", err)
	}
	key := bytes.TrimSpace(b)
	if len(key) == 64 {
		if k, err := hex.DecodeString(string(key)); err == nil {
			return k, nil
		}
	}
	if len(b) == 32 {
		return b, nil
	}
	return nil, errors.New("hub.seal_key_file: want 32 bytes, or 64 hex digits")
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
