package controllers

// Pacing of message services whose limits are known: a send waits for its
// turn instead of being refused. A DingTalk robot takes 20 messages in any
// minute; a Twilio sender that answered 429 is given the time it asked for.
// The turns live in the leader's memory: after a restart the services'
// own refusals, which are retried, take over until the turns fill again.

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

// DingTalkRate is what one DingTalk custom robot takes: 20 messages a
// minute; past that it answers 130101 and drops the message. The window is
// a second longer than DingTalk's, for the time a request takes to arrive.
var DingTalkRate = Rate{Messages: 20, Per: time.Minute + time.Second}

// paceKey names one destination whose turns are shared by every event:
// a DingTalk robot, or a Twilio sender. It holds no credential.
func paceKey(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return kind + "/" + hex.EncodeToString(h.Sum(nil)[:12])
}

// pacer hands out the turns of each destination, first come first served.
// The zero value is ready to use.
type pacer struct {
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

// turn returns when run may send to key: now or earlier to send at once,
// or the time it waits for. A run that asks again gets the turn it holds.
func (p *pacer) turn(key, run string, rate Rate, now time.Time) time.Time {
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

// block keeps key's runs from sending before until.
func (p *pacer) block(key string, until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lane(key, Rate{}, time.Now())
	if until.After(l.blockedUntil) {
		l.blockedUntil = until
	}
}

// lane returns key's lane, first forgetting the turns that no longer
// count: those a window ago, and held turns of runs that never came back
// (stopped, or their event deleted).
func (p *pacer) lane(key string, rate Rate, now time.Time) *lane {
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
