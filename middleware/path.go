package middleware

import (
	"bytes"
	"context"
	"crypto/cipher"
	"errors"
	"fmt"
	"net/http"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/internal/wire"
)

// The callback path, in three stages:
//
//   - accept lets through only a POST for a known merchant whose body
//     arrived within bounds, whose signature verified and whose resource
//     decrypted, and makes the Notification;
//   - claim asks Config.Guard whether this delivery is the one to process
//     the notification;
//   - dispatch runs the next handler and settles the claim.
//
// A stage that refuses a request returns a *rejection; serve answers it
// in one place (refuse), which alone decides status and message.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	n, body, rj := h.accept(w, r)
	if rj != nil {
		h.refuse(w, r, rj)
		return
	}
	c, rj := h.claim(r, n)
	switch {
	case rj != nil:
		h.refuse(w, r, rj)
	case c.processed:
		w.WriteHeader(http.StatusNoContent) // processed before: not run again
	default:
		h.dispatch(w, r, next, n, body, c)
	}
}

// accept is the first stage. It returns the notification and its verified
// body, or why the request is refused.
func (h *handler) accept(w http.ResponseWriter, r *http.Request) (*Notification, []byte, *rejection) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, nil, &rejection{stage: stageMethod, err: ErrMethod}
	}
	merchantID, aead, err := h.merchant(r)
	if err != nil {
		return nil, nil, &rejection{stage: stageMerchant, merchantID: merchantID, err: err}
	}
	body, err := readBody(w, r, h.maxBody, h.bodyTimeout)
	if err != nil {
		return nil, nil, &rejection{stage: stageBody, merchantID: merchantID, err: err}
	}
	if err := h.verify(r, merchantID, body); err != nil {
		return nil, nil, &rejection{stage: stageVerify, merchantID: merchantID, err: err}
	}
	n, err := open(aead, body)
	if err != nil {
		return nil, nil, &rejection{stage: stageOpen, merchantID: merchantID, err: err}
	}
	n.MerchantID, n.Serial = merchantID, r.Header.Get(wire.HeaderSerial)
	return n, body, nil
}

// merchant tells which merchant r is for, and the cipher of its APIv3 key.
func (h *handler) merchant(r *http.Request) (string, cipher.AEAD, error) {
	merchantID := h.cfg.MerchantID
	if f := h.cfg.MerchantIDFunc; f != nil {
		id, ok := f(r)
		if !ok || id == "" {
			return "", nil, ErrUnknownMerchant
		}
		merchantID = id
	}
	aead, err := h.aeadFor(merchantID)
	return merchantID, aead, err
}

// verify checks body's signature within the budget.
func (h *handler) verify(r *http.Request, merchantID string, body []byte) error {
	v := wechatpay.Verifier{MerchantID: merchantID, Keys: h.cfg.Keys, MaxSkew: h.cfg.MaxSkew, Events: h.cfg.Events}
	ctx := withBudget(r.Context(), h.budget)
	err := v.Verify(ctx, r.Header, body)
	ctx.stop()
	if errors.Is(err, wechatpay.ErrUnknownMerchant) {
		// The most common wiring mistake: say the fix.
		return fmt.Errorf("merchant %s is not registered with Config.Keys: use the Store its Transport verifies with (t.Verifier.Keys, or the Store given as wechatpay.Config.Store to NewTransport), or Register the merchant with it: %w", truncate(merchantID, 32), err)
	}
	return err
}

// open parses a verified body and decrypts its resource. Its errors wrap
// ErrMalformed, except that of decryption.
func open(aead cipher.AEAD, body []byte) (*Notification, error) {
	env, err := parseEnvelope(body)
	if err != nil {
		return nil, err
	}
	res := env.Resource
	switch {
	case res.Ciphertext == "":
		return nil, fmt.Errorf("%w: no resource.ciphertext", ErrMalformed)
	case res.Algorithm != algorithmAESGCM:
		return nil, fmt.Errorf("%w: unsupported resource.algorithm %q", ErrMalformed, truncate(res.Algorithm, 32))
	}
	plaintext, err := wire.Open(aead, res.Nonce, res.AssociatedData, res.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("notification %q: %w", truncate(env.ID, 64), err)
	}
	return &Notification{
		ID:           env.ID,
		CreateTime:   parseTime(env.CreateTime),
		EventType:    env.EventType,
		ResourceType: env.ResourceType,
		Summary:      env.Summary,
		Resource: Resource{
			OriginalType:   res.OriginalType,
			Algorithm:      res.Algorithm,
			AssociatedData: res.AssociatedData,
			Nonce:          res.Nonce,
		},
		Plaintext: plaintext,
	}, nil
}

// A claim is what the claim stage decided for a delivery.
type claim struct {
	key, token string // key "": nothing to settle (no guard, no ID, or the guard failed)
	processed  bool   // processed before: acknowledge without running the handler
}

// claim is the second stage.
func (h *handler) claim(r *http.Request, n *Notification) (claim, *rejection) {
	if h.cfg.Guard == nil || n.ID == "" {
		return claim{}, nil
	}
	c := claim{key: GuardKey(n.MerchantID, n.ID), token: wire.NewNonce()}
	ctx, cancel := context.WithTimeout(r.Context(), h.budget)
	state, err := h.cfg.Guard.Claim(ctx, c.key, c.token)
	cancel()
	switch {
	case err != nil:
		// Losing a notification to a broken guard would be worse than a
		// duplicate, which the handler must tolerate anyway.
		h.report(r, 0, n.MerchantID, fmt.Errorf("duplicate guard: claim %q: %w", truncate(n.ID, 64), err))
		return claim{}, nil
	case state == Processed:
		return claim{processed: true}, nil
	case state == InProgress:
		// Acknowledging now could lose the notification if the other
		// delivery fails: have WeChat Pay come back later.
		return claim{}, &rejection{stage: stageClaim, merchantID: n.MerchantID, err: fmt.Errorf("%w: %q", ErrInProgress, truncate(n.ID, 64))}
	case state != Claimed:
		h.report(r, 0, n.MerchantID, fmt.Errorf("duplicate guard: claim %q: unknown answer %v", truncate(n.ID, 64), state))
		return claim{}, nil
	}
	return c, nil
}

// dispatch is the last stage: it runs next with n in the request's
// context and the verified body to read again, answers 204 if next wrote
// nothing, and settles the claim.
func (h *handler) dispatch(w http.ResponseWriter, r *http.Request, next http.Handler, n *Notification, body []byte, c claim) {
	d := &delivery{ctx: notificationContext{Context: r.Context(), n: n}, rw: responseWriter{ResponseWriter: w}}
	d.body.Reset(body)
	r2 := r.WithContext(&d.ctx)
	r2.Body, r2.ContentLength = &d.body, int64(len(body))
	rw := &d.rw
	returned := false // false while next runs, and after it panicked
	if c.key != "" {
		// A panic is not recovered: it goes on to net/http, which aborts
		// the answer, whatever status next had set; the claim is released.
		defer func() { h.settle(r, n, c, returned && rw.status >= 200 && rw.status <= 299) }()
	}
	next.ServeHTTP(rw, r2)
	returned = true
	if rw.status == 0 {
		rw.WriteHeader(http.StatusNoContent)
	}
}

// settle marks done a notification the handler accepted, and releases
// one it did not, so that WeChat Pay's next delivery runs it again.
func (h *handler) settle(r *http.Request, n *Notification, c claim, accepted bool) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), h.budget)
	defer cancel()
	if accepted {
		if err := h.cfg.Guard.Done(ctx, c.key); err != nil {
			h.report(r, 0, n.MerchantID, fmt.Errorf("duplicate guard: done %q: %w", truncate(n.ID, 64), err))
		}
	} else if err := h.cfg.Guard.Release(ctx, c.key, c.token); err != nil {
		h.report(r, 0, n.MerchantID, fmt.Errorf("duplicate guard: release %q: %w", truncate(n.ID, 64), err))
	}
}

// delivery holds, in one allocation, what dispatch hands to the next
// handler.
type delivery struct {
	ctx  notificationContext
	rw   responseWriter
	body verifiedBody
}

// notificationContext is context.WithValue(parent, notificationKey{}, n).
type notificationContext struct {
	context.Context
	n *Notification
}

func (c *notificationContext) Value(key any) any {
	if key == (notificationKey{}) {
		return c.n
	}
	return c.Context.Value(key)
}

// verifiedBody is the verified body, to read again.
type verifiedBody struct{ bytes.Reader }

func (*verifiedBody) Close() error { return nil }
