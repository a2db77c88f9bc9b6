package transfers

// Event types of the transfer notifications (docs/protocol.md §14).
// Register a handler for each with middleware.On:
//
//	middleware.On(&rt, transfers.EventBillFinished, func(ctx context.Context, n *middleware.Notification, b *transfers.Bill) error {
//		return ledger.Settle(ctx, b.OutBillNo, b.State) // SUCCESS, FAIL or CANCELLED
//	})
//	middleware.On(&rt, transfers.EventAuthorizationConfirmed, func(ctx context.Context, n *middleware.Notification, a *transfers.Authorization) error {
//		return users.AllowDirectTransfers(ctx, a.OutAuthorizationNo)
//	})
const (
	// EventBillFinished: a bill reached a final state (SUCCESS, FAIL,
	// CANCELLED). Its resource decodes into a Bill (original_type and
	// associated_data "mch_payment"). Should it carry user_name, that
	// stays as WeChat Pay sent it: only the queries decrypt it.
	EventBillFinished = "MCHTRANSFER.BILL.FINISHED"
	// EventAuthorizationConfirmed: the user granted 免确认收款授权. Its
	// resource decodes into an Authorization.
	EventAuthorizationConfirmed = "MCHTRANSFER.AUTHORIZATION.CONFIRMED"
	// EventAuthorizationClosed: the authorisation was closed. Its resource
	// decodes into an Authorization.
	EventAuthorizationClosed = "MCHTRANSFER.AUTHORIZATION.CLOSED"
)
