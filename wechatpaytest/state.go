package wechatpaytest

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/wxpaykit/wechatpay/internal/atomicfile"
)

// WithStateFile makes the server keep its default merchant's credentials
// and every order and refund in the JSON file path, so that they survive
// a restart: NewServer reads the file if it exists (and panics if it
// cannot), and every change rewrites it atomically (a temporary file in
// the same directory, synced, then renamed over it). The file holds the
// merchant's private key and APIv3 key: it is created readable by its
// owner only. Platform certificates are issued afresh at each start, and
// callbacks still being retried are not kept. Without this option the
// state lives in memory only.
func WithStateFile(path string) Option { return func(o *options) { o.statePath = path } }

// savedState is the state file.
type savedState struct {
	Version  int            `json:"version"`
	Merchant *savedMerchant `json:"merchant"`
	Orders   []*order       `json:"orders"`
	Refunds  []*refund      `json:"refunds"`
}

type savedMerchant struct {
	ID                string `json:"mchid"`
	CertificateSerial string `json:"serial"`
	PrivateKey        []byte `json:"private_key"` // PKCS #8 DER
	APIv3Key          string `json:"apiv3_key"`
	APIv2Key          string `json:"apiv2_key"`
	PublicKeyID       string `json:"public_key_id,omitempty"`
	PublicKey         []byte `json:"public_key,omitempty"` // PKCS #8 DER of the private half
}

const stateVersion = 1

// loadState reads the state file, if there is one. It returns the saved
// merchant, or nil for a new file.
func (s *Server) loadState() (*savedMerchant, error) {
	data, err := os.ReadFile(s.opts.statePath)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st savedState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %v", s.opts.statePath, err)
	}
	if st.Version != stateVersion || st.Merchant == nil {
		return nil, fmt.Errorf("state file %s: not a sandbox state file of version %d", s.opts.statePath, stateVersion)
	}
	x := &s.sim
	for _, o := range st.Orders {
		k := orderKey(o.Owner, o.OutTradeNo)
		x.orders[k] = o
		x.byPay[o.PrepayID] = k
		if o.TransactionID != "" {
			x.byTx[o.TransactionID] = k
		}
	}
	for _, rf := range st.Refunds {
		x.refunds[refundKey(rf.Owner, rf.OutRefundNo)] = rf
	}
	return st.Merchant, nil
}

// parseSavedKey parses a saved PKCS #8 RSA key.
func parseSavedKey(der []byte) (*rsa.PrivateKey, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("not an RSA key")
	}
	return rk, nil
}

// saveLocked writes the state file, if any; s.sim.mu is held. A failure
// is kept for StateError.
func (s *Server) saveLocked() {
	if s.opts.statePath == "" {
		return
	}
	st := savedState{Version: stateVersion, Merchant: s.savedDefault}
	for _, o := range s.sim.orders {
		st.Orders = append(st.Orders, o)
	}
	for _, rf := range s.sim.refunds {
		st.Refunds = append(st.Refunds, rf)
	}
	sort.Slice(st.Orders, func(i, j int) bool { return st.Orders[i].CreateTime.Before(st.Orders[j].CreateTime) })
	sort.Slice(st.Refunds, func(i, j int) bool { return st.Refunds[i].CreateTime.Before(st.Refunds[j].CreateTime) })
	data, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(s.opts.statePath, data, 0o600)
	}
	s.sim.saveErr = err
}

// StateError returns the error of the last write of the state file
// (WithStateFile), or nil.
func (s *Server) StateError() error {
	s.sim.mu.Lock()
	defer s.sim.mu.Unlock()
	return s.sim.saveErr
}
