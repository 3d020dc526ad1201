package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
	pack       packers
	bufs       freeList[workBuf]
}

// packers are optional assembly helpers for packB; nil ones fall back to Go.
type packers struct {
	// tile, when set, transposes tileW rows × tileW·blocks columns of src
	// into dst (row strides in floats): packing a transposed B.
	tile  func(dst *float32, dstStride int, src *float32, srcStride int, blocks int)
	tileW int
	// rows, when set, copies rows × nr floats from src (row stride
	// srcStride) to dst: one full micro-panel of a B that is not transposed.
	rows func(dst, src *float32, srcStride, rows int)
	// panelA, when set, packs mr rows × 8·blocks columns of an A that is
	// not transposed into a k-major micro-panel (dst[k·mr+r]).
	panelA func(dst, src *float32, srcStride, blocks int)
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

// gemmJob is one Sgemm call shared by its workers. For each block of rows
// of A, workers first pack that block of A into packA together (units:
// one mr-row panel of one kc chunk each), then take tasks, blocks of C, each
// packing the part of B it needs. Work is handed out by atomic counters and
// a worker waits only for work in progress, never for a worker to arrive:
// a helper the scheduler starts late finds the work done and leaves, so a
// busy machine cannot stall a call on a descheduled goroutine.
type gemmJob struct {
	args       gemmArgs
	mBig       int // rows of A packed at a time
	taskW      int // columns per task, a multiple of nr
	taskH      int // rows per task, a multiple of mr
	totalTasks int64
	packA      []float32
	unitsNext  atomic.Int64 // packing units handed out, over all row blocks
	unitsDone  atomic.Int64
	tasksNext  atomic.Int64 // tasks handed out, over all row blocks
	tasksDone  atomic.Int64
	refs       atomic.Int32 // participants still holding the job
}

var jobs freeList[gemmJob]

// gemm runs one product on as many cores as it is worth. Large products
// are split into contiguous column blocks, one per core, each an independent
// single-threaded product with its own packed A and B: on machines whose
// cores do not share a cache (cloud VMs) sharing one packed A across cores
// cost about 40% (measured: 100 vs 170 GFLOP/s on 2 cores).
func gemm(g *gemmArgs) {
	t := runtime.GOMAXPROCS(0)
	if f := 2 * g.m * g.n * g.k / minFlopsPerThread; f < t {
		t = max(1, f)
	}
	if t > 1 && g.n >= 4*t*g.spec.nr {
		gemmColumns(g, t)
		return
	}
	gemmShared(g, t)
}

// gemmColumns computes C[:, j0:j1] for t column blocks in parallel, on the
// caller and on long-lived column workers (no allocation per call).
func gemmColumns(g *gemmArgs, t int) {
	chunk := roundUp(ceilDiv(g.n, t), g.spec.nr)
	cj := colJobs.get()
	if cj == nil {
		cj = new(colJob)
	}
	cj.parts = cj.parts[:0]
	for j0 := 0; j0 < g.n; j0 += chunk {
		sub := *g
		sub.n = min(chunk, g.n-j0)
		if g.bTrans {
			sub.b = g.b[j0*g.ldb:]
		} else {
			sub.b = g.b[j0:]
		}
		sub.c = g.c[j0:]
		cj.parts = append(cj.parts, colPart{args: sub, job: cj})
	}
	startColWorkers(len(cj.parts) - 1)
	cj.wg.Add(len(cj.parts) - 1)
	for i := 1; i < len(cj.parts); i++ {
		colQueue <- &cj.parts[i]
	}
	gemmShared(&cj.parts[0].args, 1)
	cj.wg.Wait()
	for i := range cj.parts {
		cj.parts[i] = colPart{} // drop references to the caller's slices
	}
	colJobs.put(cj)
}

// colJob is one column-split call; colPart one block of it.
type colJob struct {
	wg    sync.WaitGroup
	parts []colPart
}

type colPart struct {
	args gemmArgs
	job  *colJob
}

var (
	colJobs    freeList[colJob]
	colQueue   = make(chan *colPart, 256)
	colMu      sync.Mutex
	colWorkers int
)

// startColWorkers makes sure at least n column workers run.
func startColWorkers(n int) {
	colMu.Lock()
	defer colMu.Unlock()
	for ; colWorkers < n; colWorkers++ {
		go func() {
			for p := range colQueue {
				gemmShared(&p.args, 1)
				p.job.wg.Done()
			}
		}()
	}
}

// gemmShared runs one product on t workers sharing one packed copy of A.
func gemmShared(g *gemmArgs, t int) {
	sp := g.spec
	j := jobs.get()
	if j == nil {
		j = new(gemmJob)
	}
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

	j.taskH = roundUp(j.mBig, sp.mr)
	if t == 1 {
		j.taskW = roundUp(min(n, sp.nc), sp.nr)
	} else {
		// Several tasks per worker so that an unlucky worker does not hold
		// up the rest; rows are split too when there are few columns.
		w := min(max(1, ceilDiv(ceilDiv(n, sp.nr), 4*t)), sp.nc/sp.nr)
		j.taskW = w * sp.nr
		nJ := ceilDiv(n, j.taskW)
		if nJ < 2*t {
			j.taskH = roundUp(ceilDiv(j.mBig, ceilDiv(4*t, nJ)), sp.mr)
		}
		t = min(t, nJ*ceilDiv(j.mBig, j.taskH))
	}
	j.totalTasks = 0
	for ib := 0; ib < m; ib += j.mBig {
		j.totalTasks += int64(ceilDiv(n, j.taskW) * ceilDiv(min(j.mBig, m-ib), j.taskH))
	}
	j.unitsNext.Store(0)
	j.unitsDone.Store(0)
	j.tasksNext.Store(0)
	j.tasksDone.Store(0)
	j.refs.Store(int32(t))
	if t > 1 {
		dispatch(j, t-1)
	}
	j.run()
	waitFor(&j.tasksDone, j.totalTasks)
	j.release()
}

// release drops one participant's hold; the last one recycles the job.
func (j *gemmJob) release() {
	if j.refs.Add(-1) == 0 {
		j.args = gemmArgs{} // drop references to the caller's slices
		jobs.put(j)
	}
}

// run does whatever work of the job is left, in order.
func (j *gemmJob) run() {
	g := &j.args
	sp := g.spec
	w := sp.getBuf()
	defer sp.putBuf(w)
	var uBase, tBase int64
	for ib := 0; ib < g.m; ib += j.mBig {
		mb := min(j.mBig, g.m-ib)
		mbR := roundUp(mb, sp.mr)
		panels := mbR / sp.mr
		uEnd := uBase + int64(panels*ceilDiv(g.k, sp.kc))
		nI := ceilDiv(mb, j.taskH)
		tEnd := tBase + int64(ceilDiv(g.n, j.taskW)*nI)

		// packA still serves the previous row block's tasks until they end.
		waitFor(&j.tasksDone, tBase)
		for {
			u := grab(&j.unitsNext, uEnd)
			if u < 0 {
				break
			}
			p, ip := int(u-uBase)/panels, int(u-uBase)%panels
			pc := p * sp.kc
			kc := min(sp.kc, g.k-pc)
			dst := j.packA[p*sp.kc*mbR+ip*kc*sp.mr:]
			r0 := ip * sp.mr
			packA(dst[:kc*sp.mr], g.a, g.lda, g.aTrans, ib+r0, min(sp.mr, mb-r0), pc, kc, sp.mr, &sp.pack)
			j.unitsDone.Add(1)
		}
		waitFor(&j.unitsDone, uEnd)

		for {
			task := grab(&j.tasksNext, tEnd)
			if task < 0 {
				break
			}
			tj, ti := int(task-tBase)/nI, int(task-tBase)%nI
			i0 := ib + ti*j.taskH
			j0 := tj * j.taskW
			j.task(w, ib, mbR, i0, min(i0+j.taskH, ib+mb), j0, min(j0+j.taskW, g.n))
			j.tasksDone.Add(1)
		}
		uBase, tBase = uEnd, tEnd
	}
}

// grab hands out the next index below end from c, or -1 when none is left.
func grab(c *atomic.Int64, end int64) int64 {
	for {
		v := c.Load()
		if v >= end {
			return -1
		}
		if c.CompareAndSwap(v, v+1) {
			return v
		}
	}
}

// waitFor returns once c reaches target: work another worker is finishing.
// It yields first, then sleeps briefly, so waiting burns little CPU.
func waitFor(c *atomic.Int64, target int64) {
	for i := 0; c.Load() < target; i++ {
		if i < 50 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
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
			packB(w.b, g.b, g.ldb, g.bTrans, pc, kc, jc, nc, sp.nr, &sp.pack)
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
func packA(dst, a []float32, lda int, trans bool, r0, rows, pc, kc, mr int, pk *packers) {
	if !trans && rows == mr && kc >= 8 && pk.panelA != nil {
		kb := kc / 8
		off := r0*lda + pc
		// Bounds the assembly relies on.
		_ = a[off+(mr-1)*lda+8*kb-1]
		_ = dst[8*kb*mr-1]
		pk.panelA(&dst[0], &a[off], lda, kb)
		for r := 0; r < rows; r++ {
			src := a[off+r*lda : off+r*lda+kc]
			for kk := 8 * kb; kk < kc; kk++ {
				dst[kk*mr+r] = src[kk]
			}
		}
		return
	}
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
func packB(dst, b []float32, ldb int, trans bool, pc, kc, jc, nc, nr int, pk *packers) {
	for jp := 0; jp < nc; jp += nr {
		cols := min(nr, nc-jp)
		d := dst[jp*kc : jp*kc+kc*nr]
		if !trans {
			if cols == nr && pk.rows != nil {
				off := pc*ldb + jc + jp
				_ = b[off+(kc-1)*ldb+nr-1] // bounds the assembly relies on
				pk.rows(&d[0], &b[off], ldb, kc)
				continue
			}
			for kk := 0; kk < kc; kk++ {
				off := (pc+kk)*ldb + jc + jp
				row := d[kk*nr : kk*nr+nr]
				copy(row, b[off:off+cols])
				clear(row[cols:])
			}
			continue
		}
		c0, tw := 0, pk.tileW
		if pk.tile != nil && kc >= tw {
			kb := kc / tw
			for ; c0+tw <= cols; c0 += tw {
				off := (jc+jp+c0)*ldb + pc
				// Bounds the assembly relies on.
				_ = b[off+(tw-1)*ldb+tw*kb-1]
				_ = d[c0+(tw*kb-1)*nr+tw-1]
				pk.tile(&d[c0], nr, &b[off], ldb, kb)
			}
		}
		// What the tiles left: columns from c0 at every k and, for the
		// tiled columns, the k tail.
		kTiled := 0
		if c0 > 0 {
			kTiled = kc / tw * tw
		}
		packBT(d, b, ldb, nr, jc+jp, pc, c0, cols, 0, kc)
		packBT(d, b, ldb, nr, jc+jp, pc, 0, c0, kTiled, kc)
		for c := cols; c < nr; c++ {
			for kk := 0; kk < kc; kk++ {
				d[kk*nr+c] = 0
			}
		}
	}
}

// packBT packs columns [cLo, cHi) × k [kLo, kHi) of a panel of a
// transposed B whose first column is column j of op(B). It reads along k
// (contiguous in B) in blocks of 16, which keeps the strided writes within a
// few cache lines.
func packBT(d, b []float32, ldb, nr, j, pc, cLo, cHi, kLo, kHi int) {
	for k0 := kLo; k0 < kHi; k0 += 16 {
		k1 := min(k0+16, kHi)
		for c := cLo; c < cHi; c++ {
			off := (j+c)*ldb + pc
			for kk, v := range b[off+k0 : off+k1] {
				d[(k0+kk)*nr+c] = v
			}
		}
	}
}

// Helper goroutines run jobs' work; the pool grows when no idle helper is
// free, so concurrent Sgemm calls each get their helpers promptly.
type workItem struct {
	job *gemmJob
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
	for i := 0; i < n; i++ {
		p.items <- workItem{job: j}
	}
}

func helperLoop(items chan workItem) {
	for it := range items {
		it.job.run()
		it.job.release()
		helperPool.mu.Lock()
		helperPool.idle++
		helperPool.mu.Unlock()
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
