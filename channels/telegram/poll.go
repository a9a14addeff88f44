package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/zhiyin/zhiyin/channels"
)

// poll long-polls getUpdates until ctx ends. The offset moves past an
// update only once sink.Deliver returned nil for it (or it was ignored), so
// Telegram (which keeps unconfirmed updates 24 h) redelivers whatever a
// crash or a failing sink left behind; the hub deduplicates on update_id.
func (a *Adapter) poll(ctx context.Context) {
	var offset int64
	fails := 0
	retry := func(err error) bool {
		if ctx.Err() != nil {
			return false
		}
		fails++
		a.setConnected(false)
		d := a.retryDelay(err, fails)
		a.log.Warn("telegram polling failed", logErr, err, logDelay, d)
		return channels.Sleep(ctx, d)
	}
	for ctx.Err() == nil {
		if err := a.getMe(ctx); err != nil {
			if !retry(err) {
				return
			}
			continue
		}
		began := time.Now()
		var batch []json.RawMessage
		err := a.call(ctx, a.pollClient, "getUpdates", map[string]any{
			"offset":          offset,
			"timeout":         int(a.pollTimeout / time.Second),
			"allowed_updates": allowedUpdates,
		}, &batch)
		if err != nil {
			if !retry(err) {
				return
			}
			continue
		}
		fails = 0
		a.setConnected(true)
		if len(batch) == 0 {
			// A server that answers an empty long poll at once (it ignores
			// timeout) must not be asked in a busy loop.
			if time.Since(began) < a.pollTimeout/2 && !channels.Sleep(ctx, a.idleDelay) {
				return
			}
			continue
		}
		next, err := a.deliverBatch(ctx, batch, offset)
		offset = next
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fails++
			d := a.backoff.Delay(fails)
			a.fail("deliver: " + err.Error())
			a.log.Warn("telegram deliver failed; the update will come again", logErr, err, logDelay, d)
			if !channels.Sleep(ctx, d) {
				return
			}
		}
	}
}

// deliverBatch hands a getUpdates batch to the sink in order and returns
// the next offset: past every update delivered or ignored, stopping at the
// first the sink failed to take (that error is returned).
func (a *Adapter) deliverBatch(ctx context.Context, batch []json.RawMessage, offset int64) (int64, error) {
	me := a.identity()
	sink := a.currentSink()
	for _, raw := range batch {
		id, m, err := parseUpdate(raw, me)
		if err != nil {
			// Redelivery cannot fix it: skip it (id may be 0, keeping the
			// offset).
			sink.Rejected(channels.ReasonMalformed)
			a.log.Warn("telegram update ignored", logErr, err, logUpdate, id)
			offset = max(offset, id+1)
			continue
		}
		if m != nil {
			m.Channel = Name
			err := sink.Deliver(ctx, m)
			if errors.Is(err, channels.ErrInvalid) {
				a.log.Warn("telegram update refused by the hub", logErr, err, logUpdate, id)
			} else if err != nil {
				return offset, err
			}
		}
		offset = max(offset, id+1)
	}
	return offset, nil
}

func (a *Adapter) currentSink() channels.Sink {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sink
}
