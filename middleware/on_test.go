package middleware

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestOnGenericPayload(t *testing.T) {
	type bill struct {
		OutBillNo string `json:"out_bill_no"`
		State     string `json:"state"`
	}
	var rt Router
	var got *bill
	On(&rt, "MCHTRANSFER.BILL.FINISHED", func(ctx context.Context, n *Notification, b *bill) error {
		got = b
		return nil
	})
	n := &Notification{ID: "n1", EventType: "MCHTRANSFER.BILL.FINISHED", Plaintext: []byte(`{"out_bill_no":"B123456","state":"SUCCESS"}`)}
	req := httptest.NewRequest("POST", "/notify", nil)
	req = req.WithContext(context.WithValue(req.Context(), notificationKey{}, n))
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, req)
	if w.Code != http.StatusNoContent {
		t.Fatalf("status = %d; want 204", w.Code)
	}
	if got == nil || got.OutBillNo != "B123456" || got.State != "SUCCESS" {
		t.Fatalf("payload = %+v; want out_bill_no B123456, state SUCCESS", got)
	}
	// A payload that does not decode is a 400 and never reaches f.
	got = nil
	n.Plaintext = []byte(`{"out_bill_no":5}`)
	w = httptest.NewRecorder()
	rt.ServeHTTP(w, req)
	if w.Code != http.StatusBadRequest || got != nil {
		t.Fatalf("undecodable payload: status = %d, handler ran = %v; want 400, false", w.Code, got != nil)
	}
}
