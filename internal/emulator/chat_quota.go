// The quotas of the Chat emulation (ChatOptions).

package emulator

import "time"

type secondCounter struct {
	sec int64
	n   int
}

// takeQuota consumes one unit of the quotas that apply to m, or answers
// 429.
func (c *Chat) takeQuota(m method, space string) *apiError {
	write := m.write()
	limit := c.opts.ReadsPerWindow
	if write {
		limit = c.opts.WritesPerWindow
	}
	perSpace := 0
	if m == mGet || m == mList {
		perSpace = c.opts.PerSpaceReadsPerSecond
	}
	if limit <= 0 && perSpace <= 0 {
		return nil
	}
	now := time.Since(c.start)
	c.qmu.Lock()
	defer c.qmu.Unlock()
	win := int64(now / c.opts.Window)
	if win != c.qWindow {
		c.qWindow, c.qWrites, c.qReads = win, 0, 0
	}
	used := &c.qReads
	kind := "Read"
	if write {
		used, kind = &c.qWrites, "Write"
	}
	if limit > 0 && *used >= limit {
		e := errf(429, "", "Quota exceeded for quota metric '%s requests' and limit '%s requests per minute per project' of service 'chat.googleapis.com'.", kind, kind)
		e.retryAfter = time.Duration(win+1)*c.opts.Window - now
		return e
	}
	if perSpace > 0 {
		sec := int64(now / time.Second)
		sc := c.perSpace[space]
		if sc == nil {
			sc = &secondCounter{sec: sec}
			c.perSpace[space] = sc
		}
		if sc.sec != sec {
			sc.sec, sc.n = sec, 0
		}
		if sc.n >= perSpace {
			e := errf(429, "", "Quota exceeded for quota metric 'Read requests per space' and limit 'Read requests per space per second' of service 'chat.googleapis.com'.")
			e.retryAfter = time.Duration(sec+1)*time.Second - now
			return e
		}
		sc.n++
	}
	if limit > 0 {
		*used++
	}
	return nil
}
