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

// load reads the state file, if there is one, into od. It returns the
// saved merchant, or nil for a new file. NewServer calls it before the
// server serves.
func (od *orders) load() (*savedMerchant, error) {
	data, err := os.ReadFile(od.statePath)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st savedState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("state file %s: %v", od.statePath, err)
	}
	if st.Version != stateVersion || st.Merchant == nil {
		return nil, fmt.Errorf("state file %s: not a sandbox state file of version %d", od.statePath, stateVersion)
	}
	od.mu.Lock()
	defer od.mu.Unlock()
	for _, o := range st.Orders {
		k := orderKey(o.Owner, o.OutTradeNo)
		od.byKey[k] = o
		if o.PrepayID != "" { // payment code orders have none
			od.byPay[o.PrepayID] = k
		}
		if o.TransactionID != "" {
			od.byTx[o.TransactionID] = k
		}
	}
	for _, rf := range st.Refunds {
		od.refunds[refundKey(rf.Owner, rf.OutRefundNo)] = rf
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

// start records the default merchant and writes the state file a first
// time, if there is one.
func (od *orders) start(def *savedMerchant) error {
	od.mu.Lock()
	defer od.mu.Unlock()
	od.savedDefault = def
	od.saveLocked()
	return od.saveErr
}

// saveLocked writes the state file, if any; od.mu is held. A failure is
// kept for StateError.
func (od *orders) saveLocked() {
	if od.statePath == "" {
		return
	}
	st := savedState{Version: stateVersion, Merchant: od.savedDefault}
	for _, o := range od.byKey {
		st.Orders = append(st.Orders, o)
	}
	for _, rf := range od.refunds {
		st.Refunds = append(st.Refunds, rf)
	}
	sort.Slice(st.Orders, func(i, j int) bool { return st.Orders[i].CreateTime.Before(st.Orders[j].CreateTime) })
	sort.Slice(st.Refunds, func(i, j int) bool { return st.Refunds[i].CreateTime.Before(st.Refunds[j].CreateTime) })
	data, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = atomicfile.WriteFile(od.statePath, data, 0o600)
	}
	od.saveErr = err
}

// stateError returns the error of the last write of the state file.
func (od *orders) stateError() error {
	od.mu.Lock()
	defer od.mu.Unlock()
	return od.saveErr
}

// StateError returns the error of the last write of the state file
// (WithStateFile), or nil.
func (s *Server) StateError() error { return s.orders.stateError() }
