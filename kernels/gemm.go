package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// microKernel computes the k-step product of a packed MR×k A panel and a
// packed k×NR B panel into an MR×NR tile of C at c (row stride ldc):
// C = alpha*AB + beta*C when load != 0, C = alpha*AB otherwise (C unread).
type microKernel func(k int, a, b, c *float32, ldc int, alpha, beta float32, load int)

// kernelSpec is a micro-kernel with the blocking that suits it: kc is the
// depth of a packed panel, mc the rows of A swept per B micro-panel (sized
// for L2), nc the columns of a packed B block (sized for L3).
type kernelSpec struct {
	name       string
	mr, nr     int
	kc, mc, nc int
	kern       microKernel
	bufs       freeList[workBuf]
}

// workBuf is one worker's private packing space.
type workBuf struct {
	b   []float32 // packed B block: kc × roundUp(nc, nr)
	tmp []float32 // mr×nr tile for edges
}

func (s *kernelSpec) getBuf() *workBuf {
	if w := s.bufs.get(); w != nil {
		return w
	}
	return &workBuf{
		b:   alignedFloats(s.kc * roundUp(s.nc, s.nr)),
		tmp: alignedFloats(s.mr * s.nr),
	}
}

func (s *kernelSpec) putBuf(w *workBuf) { s.bufs.put(w) }

// freeList keeps buffers for reuse. Unlike sync.Pool it is not emptied by
// the garbage collector, so steady-state calls allocate nothing; it holds at
// most as many items as were ever in use at once.
type freeList[T any] struct {
	mu    sync.Mutex
	items []*T
}

func (f *freeList[T]) get() *T {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.items); n > 0 {
		it := f.items[n-1]
		f.items = f.items[:n-1]
		return it
	}
	return nil
}

func (f *freeList[T]) put(it *T) {
	f.mu.Lock()
	f.items = append(f.items, it)
	f.mu.Unlock()
}

// Tuning constants.
const (
	// minFlopsPerThread keeps small products on one goroutine, where waking
	// helpers would cost more than they save.
	minFlopsPerThread = 1 << 22
	// maxSharedA bounds the shared packed copy of A (floats); taller A is
	// processed in row blocks.
	maxSharedA = 8 << 20
)

type gemmArgs struct {
	spec           *kernelSpec
	aTrans, bTrans bool
	m, n, k        int
	alpha, beta    float32
	a, b, c        []float32
	lda, ldb, ldc  int
}

// gemmJob is one Sgemm call shared by its workers. A is packed once into
// packA by all workers together (phase 1); then workers take tasks, blocks
// of C, from an atomic counter, each packing the B block it needs (phase 2).
type gemmJob struct {
	args    gemmArgs
	threads int
	mBig    int // rows of A packed at a time
	taskW   int // columns per task, a multiple of nr
	taskH   int // rows per task, a multiple of mr
	packA   []float32
	next    atomic.Int64
	bar     barrier
	helpers sync.WaitGroup
}

var jobs freeList[gemmJob]

func getJob() *gemmJob {
	if j := jobs.get(); j != nil {
		return j
	}
	j := new(gemmJob)
	j.bar.cond.L = &j.bar.mu
	return j
}

func gemm(g *gemmArgs) {
	sp := g.spec
	j := getJob()
	j.args = *g
	m, n, k := g.m, g.n, g.k

	j.mBig = m
	if m*k > maxSharedA {
		j.mBig = max(sp.mr, maxSharedA/k/sp.mr*sp.mr)
	}
	need := roundUp(j.mBig, sp.mr) * k
	if cap(j.packA) < need {
		j.packA = alignedFloats(need)
	}
	j.packA = j.packA[:need]

	t := runtime.GOMAXPROCS(0)
	if f := 2 * m * n * k / minFlopsPerThread; f < t {
		t = max(1, f)
	}
	nTiles := ceilDiv(n, sp.nr)
	if t == 1 {
		j.taskW = roundUp(min(n, sp.nc), sp.nr)
		j.taskH = roundUp(j.mBig, sp.mr)
	} else {
		w := min(max(1, ceilDiv(nTiles, 4*t)), sp.nc/sp.nr)
		j.taskW = w * sp.nr
		nJ := ceilDiv(n, j.taskW)
		j.taskH = roundUp(j.mBig, sp.mr)
		if nJ < 2*t {
			nI := ceilDiv(4*t, nJ)
			j.taskH = roundUp(ceilDiv(j.mBig, nI), sp.mr)
		}
		t = min(t, nJ*ceilDiv(j.mBig, j.taskH))
	}
	j.threads = t
	j.bar.n = t
	if t > 1 {
		j.helpers.Add(t - 1)
		dispatch(j, t-1)
	}
	j.run(0)
	if t > 1 {
		j.helpers.Wait()
	}
	j.args = gemmArgs{} // drop references to the caller's slices
	jobs.put(j)
}

// run is worker id's share of the job.
func (j *gemmJob) run(id int) {
	g := &j.args
	sp := g.spec
	w := sp.getBuf()
	defer sp.putBuf(w)
	t := j.threads
	for ib := 0; ib < g.m; ib += j.mBig {
		mb := min(j.mBig, g.m-ib)
		mbR := roundUp(mb, sp.mr)
		panels := mbR / sp.mr
		units := panels * ceilDiv(g.k, sp.kc)
		for u := id * units / t; u < (id+1)*units/t; u++ {
			p, ip := u/panels, u%panels
			pc := p * sp.kc
			kc := min(sp.kc, g.k-pc)
			dst := j.packA[p*sp.kc*mbR+ip*kc*sp.mr:]
			r0 := ip * sp.mr
			packA(dst[:kc*sp.mr], g.a, g.lda, g.aTrans, ib+r0, min(sp.mr, mb-r0), pc, kc, sp.mr)
		}
		if id == 0 {
			j.next.Store(0)
		}
		j.bar.wait()

		nJ := ceilDiv(g.n, j.taskW)
		nI := ceilDiv(mb, j.taskH)
		total := int64(nJ * nI)
		for {
			task := j.next.Add(1) - 1
			if task >= total {
				break
			}
			tj, ti := int(task)/nI, int(task)%nI
			i0 := ib + ti*j.taskH
			j0 := tj * j.taskW
			j.task(w, ib, mbR, i0, min(i0+j.taskH, ib+mb), j0, min(j0+j.taskW, g.n))
		}
		if ib+mb < g.m {
			j.bar.wait() // everyone is done with packA before it is refilled
		}
	}
}

// task computes C[i0:i1, j0:j1] from the packed A rows starting at ib.
func (j *gemmJob) task(w *workBuf, ib, mbR, i0, i1, j0, j1 int) {
	g := &j.args
	sp := g.spec
	for jc := j0; jc < j1; jc += sp.nc {
		nc := min(sp.nc, j1-jc)
		for p, pc := 0, 0; pc < g.k; p, pc = p+1, pc+sp.kc {
			kc := min(sp.kc, g.k-pc)
			beta := g.beta
			if pc > 0 {
				beta = 1
			}
			packB(w.b, g.b, g.ldb, g.bTrans, pc, kc, jc, nc, sp.nr)
			chunk := j.packA[p*sp.kc*mbR:]
			for ic := i0; ic < i1; ic += sp.mc {
				mc := min(sp.mc, i1-ic)
				j.macro(w, chunk[(ic-ib)*kc:], mc, nc, kc, ic, jc, beta)
			}
		}
	}
}

// macro runs the micro-kernel over an mc×nc block of C.
func (j *gemmJob) macro(w *workBuf, a []float32, mc, nc, kc, ic, jc int, beta float32) {
	g := &j.args
	sp := g.spec
	mr, nr := sp.mr, sp.nr
	load := 0
	if beta != 0 {
		load = 1
	}
	for jr := 0; jr < nc; jr += nr {
		nrc := min(nr, nc-jr)
		bp := &w.b[jr*kc]
		for ir := 0; ir < mc; ir += mr {
			mrc := min(mr, mc-ir)
			ap := &a[ir*kc]
			ci := (ic+ir)*g.ldc + jc + jr
			if mrc == mr && nrc == nr {
				sp.kern(kc, ap, bp, &g.c[ci], g.ldc, g.alpha, beta, load)
				continue
			}
			sp.kern(kc, ap, bp, &w.tmp[0], nr, 1, 0, 0)
			for r := 0; r < mrc; r++ {
				crow := g.c[ci+r*g.ldc : ci+r*g.ldc+nrc]
				trow := w.tmp[r*nr : r*nr+nrc]
				if beta == 0 {
					for x, v := range trow {
						crow[x] = g.alpha * v
					}
				} else {
					for x, v := range trow {
						crow[x] = beta*crow[x] + g.alpha*v
					}
				}
			}
		}
	}
}

// packA copies rows [r0, r0+rows) × columns [pc, pc+kc) of op(A) into dst as
// one mr-row micro-panel, k-major (dst[kk*mr+r]), zero-padding missing rows.
func packA(dst, a []float32, lda int, trans bool, r0, rows, pc, kc, mr int) {
	if trans {
		for kk := 0; kk < kc; kk++ {
			d := dst[kk*mr : kk*mr+mr]
			off := (pc+kk)*lda + r0
			copy(d, a[off:off+rows])
			clear(d[rows:])
		}
		return
	}
	for r := 0; r < rows; r++ {
		off := (r0+r)*lda + pc
		src := a[off : off+kc]
		for kk, v := range src {
			dst[kk*mr+r] = v
		}
	}
	for r := rows; r < mr; r++ {
		for kk := 0; kk < kc; kk++ {
			dst[kk*mr+r] = 0
		}
	}
}

// packB copies rows [pc, pc+kc) × columns [jc, jc+nc) of op(B) into dst as
// nr-column micro-panels, each k-major (panel[kk*nr+c]), zero-padding the
// last panel.
func packB(dst, b []float32, ldb int, trans bool, pc, kc, jc, nc, nr int) {
	for jp := 0; jp < nc; jp += nr {
		cols := min(nr, nc-jp)
		d := dst[jp*kc : jp*kc+kc*nr]
		if !trans {
			for kk := 0; kk < kc; kk++ {
				off := (pc+kk)*ldb + jc + jp
				row := d[kk*nr : kk*nr+nr]
				copy(row, b[off:off+cols])
				clear(row[cols:])
			}
			continue
		}
		c0 := 0
		if kb := kc / 16; kb > 0 {
			for ; c0+16 <= cols; c0 += 16 {
				off := (jc+jp+c0)*ldb + pc
				if !transpose16(d[c0:], nr, b[off:], ldb, kb) {
					break
				}
			}
		}
		// What the 16×16 tiles left: columns from c0 and, for the tiled
		// columns, the k tail. Blocks of 16 k keep the strided writes
		// within a few cache lines.
		kTiled := 0
		if c0 > 0 {
			kTiled = kc / 16 * 16
		}
		for k0 := 0; k0 < kc; k0 += 16 {
			k1 := min(k0+16, kc)
			cStart := c0
			if k0 >= kTiled {
				cStart = 0
			}
			for c := cStart; c < cols; c++ {
				off := (jc+jp+c)*ldb + pc
				for kk, v := range b[off+k0 : off+k1] {
					d[(k0+kk)*nr+c] = v
				}
			}
		}
		for c := cols; c < nr; c++ {
			for kk := 0; kk < kc; kk++ {
				d[kk*nr+c] = 0
			}
		}
	}
}

// barrier blocks its n participants until all have arrived; reusable.
type barrier struct {
	mu    sync.Mutex
	cond  sync.Cond
	n     int
	count int
	gen   uint64
}

func (b *barrier) wait() {
	if b.n <= 1 {
		return
	}
	b.mu.Lock()
	gen := b.gen
	b.count++
	if b.count == b.n {
		b.count = 0
		b.gen++
		b.cond.Broadcast()
	} else {
		for gen == b.gen {
			b.cond.Wait()
		}
	}
	b.mu.Unlock()
}

// Helper goroutines. A job's workers meet at barriers, so every dispatched
// item must get a goroutine of its own: the pool grows whenever no idle
// helper is free, which rules out deadlock between concurrent Sgemm calls.
type workItem struct {
	job *gemmJob
	id  int
}

var helperPool struct {
	mu    sync.Mutex
	idle  int
	items chan workItem
}

func dispatch(j *gemmJob, n int) {
	p := &helperPool
	p.mu.Lock()
	if p.items == nil {
		p.items = make(chan workItem, 64)
	}
	for i := 0; i < n; i++ {
		if p.idle > 0 {
			p.idle--
		} else {
			go helperLoop(p.items)
		}
	}
	p.mu.Unlock()
	for i := 1; i <= n; i++ {
		p.items <- workItem{job: j, id: i}
	}
}

func helperLoop(items chan workItem) {
	for it := range items {
		it.job.run(it.id)
		helperPool.mu.Lock()
		helperPool.idle++
		helperPool.mu.Unlock()
		it.job.helpers.Done()
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
func roundUp(a, b int) int { return ceilDiv(a, b) * b }

// alignedFloats returns n zeroed float32s starting on a 64-byte boundary, so
// packed panels load whole cache lines.
func alignedFloats(n int) []float32 {
	s := make([]float32, n+16)
	off := int((64 - uintptr(unsafe.Pointer(&s[0]))%64) % 64 / 4)
	return s[off : off+n : off+n]
}
