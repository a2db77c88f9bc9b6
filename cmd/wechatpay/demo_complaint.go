package main

import (
	"errors"
	"fmt"

	"github.com/wxpaykit/wechatpay/complaints"
)

// complaint is the demo's complaints step: the payer complains about the
// paid order; the COMPLAINT.CREATE callback arrives; the merchant reads
// the complaint (the phone decrypted on request), answers (PROCESSING)
// and completes it (PROCESSED).
func (r *demoRun) complaint() ([]string, error) {
	c := &complaints.Client{HTTP: r.client, BaseURL: r.srv.URL}
	if _, err := c.CreateNotificationURL(r.ctx, r.notifyURL()); err != nil {
		return nil, err
	}
	id, err := r.srv.FileComplaint(demoOutTradeNo)
	if err != nil {
		return nil, err
	}
	n, err := r.awaitCallback(complaints.EventCreate)
	if err != nil {
		return nil, err
	}
	var notice complaints.Notice
	if err := n.Decode(&notice); err != nil {
		return nil, err
	}
	lines := []string{fmt.Sprintf("callback %s: complaint %s, action %s", n.EventType, notice.ComplaintID, notice.ActionType)}
	x, err := c.GetWithPhone(r.ctx, id)
	if err != nil {
		return lines, err
	}
	lines = append(lines, fmt.Sprintf("complaints.GetWithPhone: %s about order %s, payer_phone decrypted (%d digits)",
		x.ComplaintState, x.ComplaintOrderInfo[0].OutTradeNo, len(x.PayerPhone)))
	if err := c.Respond(r.ctx, id, complaints.Response{ComplaintedMchID: x.ComplaintedMchID, ResponseContent: "已为您退款，请查收"}); err != nil {
		return lines, err
	}
	if _, err := r.awaitCallback(complaints.EventStateChange); err != nil {
		return lines, err
	}
	if err := c.Complete(r.ctx, id, x.ComplaintedMchID); err != nil {
		return lines, err
	}
	if _, err := r.awaitCallback(complaints.EventStateChange); err != nil {
		return lines, err
	}
	x, err = c.Get(r.ctx, id)
	if err != nil {
		return lines, err
	}
	lines = append(lines, "complaints.Respond, then Complete: "+x.ComplaintState+" (a COMPLAINT.STATE_CHANGE callback for each)")
	if x.ComplaintState != complaints.StateProcessed {
		return lines, errors.New("the complaint did not end PROCESSED")
	}
	return lines, nil
}
