// Package pacing paces the message services whose limits are known: a
// send waits for its turn instead of being refused. A DingTalk robot takes
// 20 messages in any minute; a Twilio sender that answered 429 is given the
// time it asked for. The turns live in the leader's memory: after a
// restart the services' own refusals, which are retried, take over until
// the turns fill again.
package pacing

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// Rate is a number of messages in any window of a duration.
type Rate struct {
	Messages int
	Per      time.Duration
}

// Key names one destination whose turns are shared by every event: a
// DingTalk robot, or a Twilio sender. It holds no credential.
func Key(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return kind + "/" + hex.EncodeToString(h.Sum(nil)[:12])
}

// Pacer hands out the turns of each destination, first come first served.
// The zero value is ready to use.
type Pacer struct {
	mu    sync.Mutex
	lanes map[string]*lane
}

type lane struct {
	// slots are the turns given, in order: sent, or held by a run that
	// waits for its time.
	slots []time.Time
	// held is the turn of each waiting run, by run.
	held map[string]time.Time
	// blockedUntil is when the service asked to be left alone until.
	blockedUntil time.Time
}

// Turn returns when run may send to key: now or earlier to send at once,
// or the time it waits for. A run that asks again gets the turn it holds.
func (p *Pacer) Turn(key, run string, rate Rate, now time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lane(key, rate, now)
	if t, ok := l.held[run]; ok {
		if !t.After(now) {
			delete(l.held, run)
		}
		return t
	}
	t := now
	if l.blockedUntil.After(t) {
		t = l.blockedUntil
	}
	if rate.Messages > 0 {
		if n := len(l.slots); n > 0 && l.slots[n-1].After(t) {
			t = l.slots[n-1] // in order: no turn before one given earlier
		}
		if n := len(l.slots); n >= rate.Messages {
			if free := l.slots[n-rate.Messages].Add(rate.Per); free.After(t) {
				t = free
			}
		}
		l.slots = append(l.slots, t)
	}
	if t.After(now) {
		l.held[run] = t
	}
	return t
}

// Block keeps key's runs from sending before until; now is the time.
func (p *Pacer) Block(key string, until, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lane(key, Rate{}, now)
	if until.After(l.blockedUntil) {
		l.blockedUntil = until
	}
}

// lane returns key's lane, first forgetting the turns that no longer
// count: those a window ago, and held turns of runs that never came back
// (stopped, or their event deleted).
func (p *Pacer) lane(key string, rate Rate, now time.Time) *lane {
	if p.lanes == nil {
		p.lanes = map[string]*lane{}
	}
	l, ok := p.lanes[key]
	if !ok {
		l = &lane{held: map[string]time.Time{}}
		p.lanes[key] = l
	}
	drop := 0
	for drop < len(l.slots) && !l.slots[drop].After(now.Add(-rate.Per)) {
		drop++
	}
	l.slots = l.slots[drop:]
	for run, t := range l.held {
		if t.Before(now.Add(-time.Minute - rate.Per)) {
			delete(l.held, run)
		}
	}
	return l
}
