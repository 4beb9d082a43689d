package gateway

// Notice webhooks: a department that configures one (hub.webhooks) has
// each notice sent to it POSTed to its service as well, signed with its
// secret and retried with back-off (package webhook). Every attempt is a
// record of the trail (notice.deliver), so whether a department was told
// is on the record beside whether it acknowledged. The notice itself is
// kept either way: GET /v1/notices is the source of truth, and a push
// lost to a restart is a notice still pending there.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/sluicegw/sluice/audit"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/webhook"
)

// webhooks are the configured departments' targets and their sender.
type webhooks struct {
	sender  *webhook.Sender
	targets map[string]webhook.Target // by department
}

// newWebhooks reads the configured webhooks' secrets and starts their
// sender, which stops when ctx ends; nil when none is configured.
func (s *Server) newWebhooks(ctx context.Context) (*webhooks, error) {
	if len(s.cfg.Hub.Webhooks) == 0 {
		return nil, nil
	}
	wh := &webhooks{targets: map[string]webhook.Target{}}
	for i, c := range s.cfg.Hub.Webhooks {
		secret, err := webhook.LoadSecret(s.cfg.Path(c.SecretFile))
		if err != nil {
			return nil, fmt.Errorf("hub.webhooks[%d].secret_file: %w", i, err)
		}
		wh.targets[c.Dept] = webhook.Target{Dept: c.Dept, URL: c.URL, Secret: secret}
	}
	wh.sender = webhook.New(webhook.Options{Record: s.recordDelivery, Now: s.now, Logger: s.log})
	go func() {
		<-ctx.Done()
		wh.sender.Close(context.Background())
	}()
	return wh, nil
}

// noticeEvent is a notice as a webhook delivers it: as its department
// reads it (noticeView).
type noticeEvent struct {
	Type   string     `json:"type"`
	Notice noticeView `json:"notice"`
}

// pushNotices sends each notice to its department's webhook, if it has
// one; a notice that cannot be queued is recorded as a failed delivery.
func (s *Server) pushNotices(ctx context.Context, ns []*hub.Notice) {
	if s.webhooks == nil {
		return
	}
	for _, n := range ns {
		t, ok := s.webhooks.targets[n.Dept]
		if !ok {
			continue
		}
		v, e := s.noticeView(ctx, n)
		var err error
		if e != nil {
			err = e
		}
		var body []byte
		if err == nil {
			body, err = json.Marshal(noticeEvent{Type: "notice.sent", Notice: v})
		}
		if err == nil {
			err = s.webhooks.sender.Send(t, n.ID, body)
		}
		if err != nil {
			s.recordDelivery(webhook.Delivery{ID: n.ID, Dept: n.Dept, URL: t.URL, Final: true, Err: err.Error(), At: s.now()})
		}
	}
}

// recordDelivery writes a record of one delivery attempt.
func (s *Server) recordDelivery(d webhook.Delivery) {
	ev := audit.Event{Time: d.At.UTC(), RequestID: newRequestID(), Action: "notice.deliver", Object: d.ID,
		Client: d.Dept, Method: http.MethodPost, Path: "/webhooks/" + d.Dept, Status: d.Status,
		Decision: "allow", DurationMS: float64(d.Took.Microseconds()) / 1000}
	if !d.OK {
		ev.Decision, ev.Reason = "error", d.Err
		if d.Final {
			ev.Reason += " (no more attempts)"
		}
	}
	ev.Flags = []string{fmt.Sprintf("attempt:%d", d.Attempt)}
	if err := s.audit.Append(context.Background(), &ev); err != nil {
		s.log.Error("a webhook delivery could not be recorded", "notice", d.ID, "error", err)
	}
}
