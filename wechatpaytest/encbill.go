package wechatpaytest

import "net/http"

// encryptedBills is the encrypted fund-flow bill part (written next).
type encryptedBills struct{}

func (s *Server) serveEncryptedBills(w http.ResponseWriter, r *http.Request, m *merchant, body []byte) bool {
	return false
}
