package hub

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progressEvery throttles redraws: a terminal does not need more, and a log
// file capturing stderr should not grow by a line per network read.
const progressEvery = 200 * time.Millisecond

// progressBar draws one line per file on a terminal-like writer, redrawn in
// place with '\r'. A nil writer makes every method a no-op.
type progressBar struct {
	w       io.Writer
	name    string
	total   int64 // -1 when the server did not say
	done    int64 // bytes on disk, including a resumed part
	fresh   int64 // bytes received in this run: the speed is about these only
	start   time.Time
	last    time.Time
	now     func() time.Time
	prevLen int
	drawn   bool
}

func newProgressBar(w io.Writer, name string, total, done int64, now func() time.Time) *progressBar {
	if now == nil {
		now = time.Now
	}
	t := now()
	return &progressBar{w: w, name: name, total: total, done: done, start: t, now: now}
}

// add records n more bytes and redraws at most every progressEvery.
func (p *progressBar) add(n int) {
	if p == nil || p.w == nil {
		return
	}
	p.done += int64(n)
	p.fresh += int64(n)
	if p.total > 0 && p.done >= p.total {
		return // finish draws the final state
	}
	if t := p.now(); !p.drawn || t.Sub(p.last) >= progressEvery {
		p.last = t
		p.draw(false)
	}
}

// finish draws the final state and ends the line.
func (p *progressBar) finish() {
	if p == nil || p.w == nil {
		return
	}
	p.draw(true)
	fmt.Fprintln(p.w)
	p.drawn = false
}

// abort ends a drawn line so an error message that follows starts on its own.
func (p *progressBar) abort() {
	if p == nil || p.w == nil || !p.drawn {
		return
	}
	p.draw(false)
	fmt.Fprintln(p.w)
	p.drawn = false
}

func (p *progressBar) draw(final bool) {
	elapsed := p.now().Sub(p.start)
	line := formatProgress(p.name, p.done, p.total, p.fresh, elapsed, final)
	pad := ""
	if n := len(line); n < p.prevLen {
		pad = strings.Repeat(" ", p.prevLen-n)
	}
	p.prevLen = len(line)
	fmt.Fprintf(p.w, "\r%s%s", line, pad)
	p.drawn = true
}

// formatProgress renders one progress line: name, bar, percentage, bytes,
// speed of this run, and the ETA (or, once final, the time it took).
func formatProgress(name string, done, total, fresh int64, elapsed time.Duration, final bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s", name)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(fresh) / s
	}
	if total > 0 {
		frac := float64(done) / float64(total)
		frac = min(max(frac, 0), 1)
		const width = 24
		filled := int(frac * width)
		bar := strings.Repeat("=", filled)
		if filled < width {
			bar += ">" + strings.Repeat(" ", width-filled-1)
		}
		unit, div := byteUnit(total)
		fmt.Fprintf(&b, " [%s] %3.0f%%  %s/%s %s", bar, frac*100, amount(done, div), amount(total, div), unit)
	} else {
		unit, div := byteUnit(done)
		fmt.Fprintf(&b, " %s %s", amount(done, div), unit)
	}
	fmt.Fprintf(&b, "  %.1f MB/s", rate/1e6)
	switch {
	case final:
		fmt.Fprintf(&b, "  in %s", formatClock(elapsed))
	case total > 0 && rate > 0 && done < total:
		eta := time.Duration(float64(total-done) / rate * float64(time.Second))
		fmt.Fprintf(&b, "  ETA %s", formatClock(eta))
	case total > 0:
		b.WriteString("  ETA --:--")
	}
	return b.String()
}

// byteUnit picks a decimal unit so that n shows with a few digits.
func byteUnit(n int64) (string, float64) {
	switch {
	case n >= 1e9:
		return "GB", 1e9
	case n >= 1e6:
		return "MB", 1e6
	case n >= 1e3:
		return "kB", 1e3
	}
	return "B", 1
}

// amount shows n in units of div: whole bytes, else one decimal.
func amount(n int64, div float64) string {
	if div == 1 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%.1f", float64(n)/div)
}

// formatClock shows a duration as m:ss or h:mm:ss, rounded to the second.
func formatClock(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
