package redisstore_test

import (
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxpaykit/wechatpay"
	"github.com/wxpaykit/wechatpay/middleware"
	"github.com/wxpaykit/wechatpay/redisstore"
)

// Every instance of a merchant platform behind a load balancer shares one
// Redis: certificate downloads (and the lock that makes one instance do
// each) through the Store's Cache,
// notifications through the middleware's Guard.
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:                  "redis.internal:6379",
		ContextTimeoutEnabled: true, // a slow Redis is abandoned at the Store's bound
		DialerRetries:         1,    // a Redis that is down fails fast
	})
	defer rdb.Close()

	store, err := wechatpay.NewStore(wechatpay.StoreOptions{
		Cache: &redisstore.Cache{Client: rdb},
		CacheErrorHandler: func(err error) {
			log.Printf("certificate cache: %v", err) // the Store carries on without it
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	cfg := wechatpay.Config{ /* MerchantID, CertificateSerial, PrivateKey, APIv3Key */ }
	if err := store.Register(cfg); err != nil {
		log.Fatal(err)
	}

	notify := middleware.Notifications(middleware.Config{
		Keys:       store,
		MerchantID: cfg.MerchantID,
		APIv3Key:   cfg.APIv3Key,
		Guard:      &redisstore.Guard{Client: rdb, ClaimTTL: 30 * time.Second},
		ErrorHandler: func(r *http.Request, err error) {
			log.Printf("notification: %v", err) // includes a Guard that failed and let one through
		},
	})
	http.Handle("POST /notify", notify(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := middleware.NotificationFrom(r.Context())
		_ = n // process it; answer 2xx only once it is done
	})))
}
