package wire

import (
	"context"
	"crypto"
)

// Fields is one request's sensitive-field step (docs/protocol.md §7): the
// call path puts it in the request's context, and the Transport, which
// alone knows the merchant's keys, carries it out while it signs.
//
//   - Build, if set, makes the request body and query string with every
//     marked field encrypted by encrypt, which holds one key chosen for
//     this request. The Transport sends that key's serial as
//     Wechatpay-Serial in the same step, so the two cannot disagree.
//   - After signing, the Transport records in Key the merchant's private
//     key, which decrypts marked response fields, and in Serial the
//     serial it chose (empty when Build is nil).
//
// A Fields value belongs to one call: the Transport writes Key and
// Serial during RoundTrip, and the call path reads them after
// http.Client.Do has returned.
type Fields struct {
	Build func(encrypt func(plaintext string) (string, error)) (body []byte, rawQuery string, err error)

	Serial string
	Key    crypto.Signer
}

type fieldsKey struct{}

// WithFields returns a context carrying f.
func WithFields(ctx context.Context, f *Fields) context.Context {
	return context.WithValue(ctx, fieldsKey{}, f)
}

// FieldsFrom returns the Fields of ctx, or nil.
func FieldsFrom(ctx context.Context) *Fields {
	f, _ := ctx.Value(fieldsKey{}).(*Fields)
	return f
}
