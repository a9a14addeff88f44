package orders

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

type order struct {
	id, status, items, createdAt               string
	amountCents                                int64
	carrier, trackingNo, refundStatus, address string
}

type parcel struct {
	trackingNo, carrier, status, location, updatedAt, eta string
}

const orderColumns = `order_id, status, items, amount_cents, created_at, carrier, tracking_no, refund_status, address`

// order returns the order, or nil when there is none.
func (s *Skill) order(ctx context.Context, id string) (*order, error) {
	return s.queryOrder(ctx, `SELECT `+orderColumns+` FROM demo_orders WHERE order_id = ?`, id)
}

// orderByTracking returns the order shipped with a tracking number, or nil.
func (s *Skill) orderByTracking(ctx context.Context, no string) (*order, error) {
	return s.queryOrder(ctx, `SELECT `+orderColumns+` FROM demo_orders WHERE tracking_no = ? ORDER BY created_at DESC LIMIT 1`, no)
}

func (s *Skill) queryOrder(ctx context.Context, query, arg string) (*order, error) {
	var o order
	err := s.db.Read().QueryRowContext(ctx, query, arg).Scan(
		&o.id, &o.status, &o.items, &o.amountCents, &o.createdAt, &o.carrier, &o.trackingNo, &o.refundStatus, &o.address)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read demo order: %w", err)
	}
	return &o, nil
}

// parcel returns the parcel, or nil when there is none.
func (s *Skill) parcel(ctx context.Context, no string) (*parcel, error) {
	var p parcel
	err := s.db.Read().QueryRowContext(ctx,
		`SELECT tracking_no, carrier, status, location, updated_at, eta FROM demo_parcels WHERE tracking_no = ?`, no).
		Scan(&p.trackingNo, &p.carrier, &p.status, &p.location, &p.updatedAt, &p.eta)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read demo parcel: %w", err)
	}
	return &p, nil
}
