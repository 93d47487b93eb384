"""Site payments: contracts, accruals from completed activities, batches, exports."""
