package payments

// SettleInfo is the settle_info of a prepay request. ProfitSharing marks
// the order for profit sharing (分账): its money stays frozen after
// payment until the merchant shares or unfreezes it with the
// profitsharing package (docs/protocol.md §15).
type SettleInfo struct {
	ProfitSharing bool `json:"profit_sharing"`
}
