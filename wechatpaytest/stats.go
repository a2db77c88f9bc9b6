package wechatpaytest

import (
	"sync"
	"sync/atomic"
)

// stats counts what the server served, for tests that assert "exactly
// one download".
type stats struct {
	certHits atomic.Int64 // requests for the certificate endpoints, any outcome
	requests atomic.Int64 // authenticated requests served by Handle's routes

	mu    sync.Mutex
	paths map[string]int // guarded by mu: requests per URL path, any outcome
}

// maxCountedPaths bounds the path log: a sandbox fed arbitrary paths does
// not grow without limit.
const maxCountedPaths = 4096

func (st *stats) count(path string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.paths == nil {
		st.paths = make(map[string]int)
	}
	if _, ok := st.paths[path]; ok || len(st.paths) < maxCountedPaths {
		st.paths[path]++
	}
}

func (st *stats) pathRequests(p string) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.paths[p]
}

// PathRequests returns how many requests for the URL path p (without
// query) reached the server, whatever their outcome, including failed
// authentication. For example, PathRequests("/v3/global/certificates")
// tells a test that a client used the global certificate endpoint.
func (s *Server) PathRequests(p string) int { return s.stats.pathRequests(p) }

// Requests returns how many authenticated requests reached routes
// registered with Handle.
func (s *Server) Requests() int { return int(s.stats.requests.Load()) }

// CertificateDownloads returns how many requests reached the certificate
// endpoints, for all merchants and with any outcome (including failed
// authentication and injected faults).
func (s *Server) CertificateDownloads() int { return int(s.stats.certHits.Load()) }

// MerchantCertificateDownloads returns how many authenticated requests of
// merchant id reached the certificate endpoints, whatever the outcome.
func (s *Server) MerchantCertificateDownloads(id string) int {
	return int(s.merchants.get(id).downloads.Load())
}
