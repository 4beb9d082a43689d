package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/sluicegw/sluice/webhook"
)

func ExampleVerify() {
	secret := []byte("a department's secret of 32 byte")
	body := []byte(`{"type":"notice.sent","notice":{"id":"ntc_1"}}`)
	sent := time.Unix(1767225600, 0)
	h := http.Header{}
	h.Set(webhook.HeaderID, "ntc_1")
	h.Set(webhook.HeaderTimestamp, "1767225600")
	h.Set(webhook.HeaderSignature, webhook.Sign(secret, "ntc_1", sent, body))

	fmt.Println(webhook.Verify(secret, h, body, sent.Add(time.Minute), webhook.DefaultTolerance))
	fmt.Println(webhook.Verify(secret, h, []byte(`{"type":"forged"}`), sent.Add(time.Minute), webhook.DefaultTolerance))
	fmt.Println(webhook.Verify(secret, h, body, sent.Add(time.Hour), webhook.DefaultTolerance))
	// Output:
	// <nil>
	// webhook: invalid signature: no v1 signature matches
	// webhook: invalid signature: timestamp 1767225600 is 1h0m0s from now, beyond the 5m0s tolerated
}

// A department's receiver, and the gateway's Sender delivering to it.
func Example_receiver() {
	secret := []byte("a department's secret of 32 byte")
	got := make(chan string, 1)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "unreadable body", http.StatusBadRequest)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
			http.Error(w, "not signed by the gateway", http.StatusUnauthorized)
			return
		}
		// A retry repeats Webhook-Id: handle each id once.
		got <- r.Header.Get(webhook.HeaderID) + " " + string(body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer receiver.Close()

	done := make(chan webhook.Delivery, 1)
	s := webhook.New(webhook.Options{Record: func(d webhook.Delivery) { done <- d }})
	defer s.Close(context.Background())
	t := webhook.Target{Dept: "tax", URL: receiver.URL, Secret: secret}
	if err := s.Send(t, "ntc_1", []byte(`{"type":"notice.sent"}`)); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(<-got)
	d := <-done
	fmt.Println(d.Attempt, d.Status, d.OK, d.Final)
	// Output:
	// ntc_1 {"type":"notice.sent"}
	// 1 204 true true
}
