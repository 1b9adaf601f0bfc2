package dynatrace

import (
	"context"
	"time"
)

// SetSleep replaces the wait between attempts, so that tests record the
// waits instead of sleeping.
func SetSleep(c *Client, sleep func(ctx context.Context, d time.Duration) error) {
	c.sleep = sleep
}
