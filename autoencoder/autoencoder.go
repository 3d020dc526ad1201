package autoencoder

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"tdb/internal/parallel"
	"tdb/model"
)

// Activation is the nonlinearity applied to the latent pre-activations.
type Activation string

// The supported activations.
const (
	ReLU     Activation = "ReLU"
	Identity Activation = "Identity"
	// TopK keeps the K largest pre-activations of each token, applies
	// PostAct to them and zeroes the rest.
	TopK Activation = "TopK"
	// JumpReLU keeps a pre-activation h when h > threshold (and h > 0).
	JumpReLU Activation = "JumpReLU"
)

// normEps is added to the standard deviation when normalising inputs
// (OpenAI's TopK autoencoders and SAELens "layer_norm").
const normEps = 1e-5

// Autoencoder is a sparse autoencoder over one activation location:
//
//	x'      = Normalize ? (x − mean(x)) / (std(x) + 1e-5) : x
//	latents = act(W_enc·(x' − inBias) + latentBias)
//	recon'  = W_dec·latents + outBias
//	recon   = Normalize ? recon'·std(x) + mean(x) : recon'
//
// with std the sample standard deviation (ddof 1) over the features of one
// token. OpenAI files have inBias = outBias = pre_bias; SAELens has
// outBias = b_dec and inBias = b_dec only with apply_b_dec_to_input.
//
// An Autoencoder is immutable after Load and safe for concurrent use.
type Autoencoder struct {
	// Source is the file it was loaded from; Format is "openai" or "saelens".
	Source, Format    string
	NInputs, NLatents int
	Activation        Activation
	// K and PostAct configure TopK (PostAct is ReLU or Identity).
	K       int
	PostAct Activation
	// Normalize says the input is normalised per token (see above).
	Normalize bool
	// Location and Layer are where the autoencoder reads, when known from
	// its name or its config ("" and model.NoLayer otherwise).
	Location model.Location
	Layer    int
	// Original maps each latent to its index in the file; nil when no latent
	// was dropped (Options.DropDead).
	Original []int

	enc        []float32 // [NLatents, NInputs]
	dec        []float32 // [NLatents, NInputs]: the decoder transposed, row i = latent i's write vector
	inBias     []float32 // [NInputs] or nil
	latentBias []float32 // [NLatents]
	outBias    []float32 // [NInputs] or nil
	threshold  []float32 // [NLatents], JumpReLU only
	stats      latentStats
}

// latentStats are the training statistics of OpenAI files (nil if absent).
type latentStats struct {
	lastNonzero, frequency []float32
}

// Options tune Load.
type Options struct {
	// DropDead removes dead latents at load: latents whose
	// latents_activation_frequency is exactly 0, and, when DeadSteps > 0,
	// latents whose stats_last_nonzero exceeds DeadSteps (both statistics
	// are OpenAI training buffers). The kept latents are renumbered densely
	// and Autoencoder.Original maps them back. Dropping is exact as long as
	// a dropped latent never fires; for TopK a dead latent that would enter
	// the top K is replaced by the next one.
	DropDead  bool
	DeadSteps int64
}

// Load reads an autoencoder: an OpenAI torch.save state dict (.pt), or a
// SAELens folder / sae_weights.safetensors with cfg.json beside it. Every
// error about the file (missing, malformed, truncated, unexpected tensors,
// shapes) wraps ErrInvalid.
func Load(ctx context.Context, path string, opts Options) (*Autoencoder, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a, err := open(path, false)
	if err != nil {
		return nil, err
	}
	if opts.DropDead {
		if err := a.dropDead(opts.DeadSteps); err != nil {
			return nil, invalid(err)
		}
	}
	a.stats = latentStats{}
	return a, nil
}

// open dispatches on the format; headerOnly skips reading tensor data.
func open(path string, headerOnly bool) (*Autoencoder, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, invalid(fmt.Errorf("autoencoder: %w", err))
	}
	var a *Autoencoder
	switch {
	case fi.IsDir():
		a, err = loadSAELens(filepath.Join(path, saeLensWeights), filepath.Join(path, saeLensConfig), headerOnly)
	case filepath.Ext(path) == ".safetensors":
		a, err = loadSAELens(path, filepath.Join(filepath.Dir(path), saeLensConfig), headerOnly)
	default:
		a, err = loadOpenAI(path, headerOnly)
	}
	if err != nil {
		return nil, invalid(err)
	}
	return a, nil
}

// OriginalIndex is the file index of latent i.
func (a *Autoencoder) OriginalIndex(i int) int {
	if a.Original == nil {
		return i
	}
	return a.Original[i]
}

// IndexOf finds the latent that has file index orig (false when it was
// dropped or is out of range).
func (a *Autoencoder) IndexOf(orig int) (int, bool) {
	if a.Original == nil {
		return orig, orig >= 0 && orig < a.NLatents
	}
	lo, hi := 0, len(a.Original)
	for lo < hi { // Original is increasing
		mid := (lo + hi) / 2
		if a.Original[mid] < orig {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, lo < len(a.Original) && a.Original[lo] == orig
}

// EncoderRow returns a copy of latent i's encoder row (in the normalised
// input space for Normalize autoencoders).
func (a *Autoencoder) EncoderRow(i int) []float32 {
	return append([]float32(nil), a.enc[i*a.NInputs:(i+1)*a.NInputs]...)
}

// DecoderColumn returns a copy of latent i's decoder column: what one unit of
// the latent adds to the reconstruction (before de-normalisation; multiply by
// the token's std for Normalize autoencoders, see Spliced.WriteVector).
func (a *Autoencoder) DecoderColumn(i int) []float32 {
	return append([]float32(nil), a.dec[i*a.NInputs:(i+1)*a.NInputs]...)
}

func (a *Autoencoder) String() string {
	s := fmt.Sprintf("%s autoencoder %s: %d inputs → %d latents, %s", a.Format, a.Source, a.NInputs, a.NLatents, a.Activation)
	if a.Activation == TopK {
		s += fmt.Sprintf(" (k=%d, %s)", a.K, a.PostAct)
	}
	if a.Normalize {
		s += ", normalised input"
	}
	return s
}

// Codes are the latents of N tokens, with what decoding them needs.
type Codes struct {
	N int
	// Latents is [N, NLatents].
	Latents []float32
	// Mean and Std are each token's input statistics ([N]; nil unless the
	// autoencoder normalises its input).
	Mean, Std []float32

	work []float32 // normalised inputs
}

// Encode computes the latents of n tokens; x is [n, NInputs] row-major.
func (a *Autoencoder) Encode(x []float32, n int) (*Codes, error) {
	c := &Codes{}
	return c, a.EncodeInto(c, x, n)
}

// EncodeInto is Encode reusing c's buffers (for repeated batches).
func (a *Autoencoder) EncodeInto(c *Codes, x []float32, n int) error {
	in, L := a.NInputs, a.NLatents
	if n < 0 || len(x) != n*in {
		return fmt.Errorf("autoencoder %s: input has %d values, want %d tokens × %d inputs", a.Source, len(x), n, in)
	}
	c.N = n
	c.Latents = grow(c.Latents, n*L)
	c.work = grow(c.work, n*in)
	if a.Normalize {
		c.Mean, c.Std = grow(c.Mean, n), grow(c.Std, n)
	} else {
		c.Mean, c.Std = nil, nil
	}
	if n == 0 {
		return nil
	}
	parallelRows(n, in, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src, dst := x[r*in:(r+1)*in], c.work[r*in:(r+1)*in]
			copy(dst, src)
			if a.Normalize {
				c.Mean[r], c.Std[r] = normalize(dst)
			}
			if a.inBias != nil {
				for j, b := range a.inBias {
					dst[j] -= b
				}
			}
		}
	})
	blas32.Gemm(blas.NoTrans, blas.Trans, 1,
		blas32.General{Rows: n, Cols: in, Stride: in, Data: c.work},
		blas32.General{Rows: L, Cols: in, Stride: in, Data: a.enc},
		0, blas32.General{Rows: n, Cols: L, Stride: L, Data: c.Latents})
	parallelRows(n, L, func(lo, hi int) {
		var h topK
		for r := lo; r < hi; r++ {
			a.activate(c.Latents[r*L:(r+1)*L], &h)
		}
	})
	return nil
}

// normalize rescales one token in place to zero mean and unit sample std
// (+eps) and returns its mean and std.
func normalize(v []float32) (mean, std float32) {
	var s float64
	for _, x := range v {
		s += float64(x)
	}
	mu := s / float64(len(v))
	var ss float64
	for _, x := range v {
		d := float64(x) - mu
		ss += d * d
	}
	sd := 0.0
	if len(v) > 1 {
		sd = math.Sqrt(ss / float64(len(v)-1))
	}
	inv := 1 / (sd + normEps)
	for i, x := range v {
		v[i] = float32((float64(x) - mu) * inv)
	}
	return float32(mu), float32(sd)
}

// activate adds the latent bias and applies the activation to one row of
// pre-activations in place.
func (a *Autoencoder) activate(row []float32, h *topK) {
	for i, b := range a.latentBias {
		row[i] += b
	}
	switch a.Activation {
	case ReLU:
		for i, v := range row {
			if !(v > 0) {
				row[i] = 0
			}
		}
	case JumpReLU:
		for i, v := range row {
			if !(v > a.threshold[i] && v > 0) {
				row[i] = 0
			}
		}
	case TopK:
		h.selectTop(row, a.K)
		clear(row)
		for j, i := range h.idx {
			v := h.val[j]
			if a.PostAct == ReLU && !(v > 0) {
				v = 0
			}
			row[i] = v
		}
	}
}

// topK is a reusable min-heap of the k largest values of a row.
type topK struct {
	val []float32
	idx []int32
}

func (h *topK) selectTop(row []float32, k int) {
	k = min(k, len(row))
	h.val, h.idx = h.val[:0], h.idx[:0]
	for i, v := range row {
		if len(h.val) < k {
			h.val = append(h.val, v)
			h.idx = append(h.idx, int32(i))
			h.up(len(h.val) - 1)
			continue
		}
		if v > h.val[0] {
			h.val[0], h.idx[0] = v, int32(i)
			h.down(0)
		}
	}
}

func (h *topK) less(i, j int) bool {
	return h.val[i] < h.val[j] || h.val[i] == h.val[j] && h.idx[i] > h.idx[j]
}

func (h *topK) swap(i, j int) {
	h.val[i], h.val[j] = h.val[j], h.val[i]
	h.idx[i], h.idx[j] = h.idx[j], h.idx[i]
}

func (h *topK) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *topK) down(i int) {
	n := len(h.val)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

// denseDecodeFraction: above this share of non-zero latents a GEMM beats
// summing decoder rows one by one.
const denseDecodeFraction = 1.0 / 16

// Decode reconstructs the inputs from c into out ([c.N, NInputs]). Sparse
// codes (TopK, or any code with few non-zero latents) are decoded by summing
// the decoder rows of the non-zero latents; dense ones with a GEMM.
func (a *Autoencoder) Decode(c *Codes, out []float32) error {
	in, L, n := a.NInputs, a.NLatents, c.N
	if len(out) != n*in || len(c.Latents) != n*L {
		return fmt.Errorf("autoencoder %s: decoding %d tokens needs %d latents and %d outputs, got %d and %d",
			a.Source, n, n*L, n*in, len(c.Latents), len(out))
	}
	if n == 0 {
		return nil
	}
	nnz := 0
	if a.Activation == TopK {
		nnz = n * min(a.K, L)
	} else {
		for _, v := range c.Latents {
			if v != 0 {
				nnz++
			}
		}
	}
	if float64(nnz) > denseDecodeFraction*float64(n*L) {
		blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
			blas32.General{Rows: n, Cols: L, Stride: L, Data: c.Latents},
			blas32.General{Rows: L, Cols: in, Stride: in, Data: a.dec},
			0, blas32.General{Rows: n, Cols: in, Stride: in, Data: out})
		parallelRows(n, in, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				a.finishRow(c, r, out[r*in:(r+1)*in])
			}
		})
		return nil
	}
	parallelRows(n, nnz/n*in+L, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			o := out[r*in : (r+1)*in]
			clear(o)
			for i, z := range c.Latents[r*L : (r+1)*L] {
				if z != 0 {
					axpy(z, a.dec[i*in:(i+1)*in], o)
				}
			}
			a.finishRow(c, r, o)
		}
	})
	return nil
}

// finishRow adds the output bias and undoes the input normalisation.
func (a *Autoencoder) finishRow(c *Codes, r int, o []float32) {
	if a.outBias != nil {
		for j, b := range a.outBias {
			o[j] += b
		}
	}
	if a.Normalize {
		sd, mu := c.Std[r], c.Mean[r]
		for j := range o {
			o[j] = o[j]*sd + mu
		}
	}
}

// axpy is y += alpha·x through blas32 (vectorised by gonum or kernels).
func axpy(alpha float32, x, y []float32) {
	blas32.Axpy(alpha, blas32.Vector{N: len(x), Inc: 1, Data: x}, blas32.Vector{N: len(y), Inc: 1, Data: y})
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// parallelRows splits n rows of about cost flops each over the CPUs, in
// chunks big enough that goroutines pay off.
func parallelRows(n, cost int, fn func(lo, hi int)) {
	const minWork = 1 << 16
	parallel.Rows(n, max(1, minWork/max(cost, 1)), fn)
}

// check validates the loaded tensors' shapes against each other.
func (a *Autoencoder) check() error {
	if a.NInputs <= 0 || a.NLatents <= 0 {
		return fmt.Errorf("%s: empty autoencoder (%d inputs, %d latents)", a.Source, a.NInputs, a.NLatents)
	}
	switch a.Activation {
	case ReLU, Identity, JumpReLU:
	case TopK:
		if a.K <= 0 || a.K > a.NLatents {
			return fmt.Errorf("%s: TopK k = %d outside [1, %d latents]", a.Source, a.K, a.NLatents)
		}
		if a.PostAct != ReLU && a.PostAct != Identity {
			return fmt.Errorf("%s: TopK post-activation %q is not supported (ReLU, Identity)", a.Source, a.PostAct)
		}
	default:
		return fmt.Errorf("%s: unknown activation %q (supported: ReLU, Identity, TopK, JumpReLU)", a.Source, a.Activation)
	}
	return nil
}

// dropDead removes latents the training statistics say never fired.
func (a *Autoencoder) dropDead(deadSteps int64) error {
	st := a.stats
	if st.frequency == nil && (st.lastNonzero == nil || deadSteps <= 0) {
		return fmt.Errorf("%s: cannot drop dead latents: the file has no latents_activation_frequency%s",
			a.Source, map[bool]string{true: " (and DeadSteps is 0)", false: " or stats_last_nonzero"}[st.lastNonzero != nil])
	}
	var keep []int
	for i := range a.NLatents {
		dead := st.frequency != nil && st.frequency[i] == 0 ||
			deadSteps > 0 && st.lastNonzero != nil && float64(st.lastNonzero[i]) > float64(deadSteps)
		if !dead {
			keep = append(keep, i)
		}
	}
	if len(keep) == a.NLatents {
		return nil
	}
	if len(keep) == 0 || a.Activation == TopK && len(keep) < a.K {
		return fmt.Errorf("%s: only %d of %d latents are alive; refusing to drop the rest", a.Source, len(keep), a.NLatents)
	}
	in := a.NInputs
	for j, i := range keep {
		copy(a.enc[j*in:(j+1)*in], a.enc[i*in:(i+1)*in])
		copy(a.dec[j*in:(j+1)*in], a.dec[i*in:(i+1)*in])
		a.latentBias[j] = a.latentBias[i]
		if a.threshold != nil {
			a.threshold[j] = a.threshold[i]
		}
	}
	n := len(keep)
	a.enc = append([]float32(nil), a.enc[:n*in]...)
	a.dec = append([]float32(nil), a.dec[:n*in]...)
	a.latentBias = a.latentBias[:n]
	if a.threshold != nil {
		a.threshold = a.threshold[:n]
	}
	a.NLatents, a.Original = n, keep
	return nil
}

// transpose writes the [rows, cols] matrix src as [cols, rows] into dst,
// in cache-friendly tiles.
func transpose(dst, src []float32, rows, cols int) {
	const tile = 64
	parallelRows((rows+tile-1)/tile, tile*cols, func(lo, hi int) {
		for i0 := lo * tile; i0 < min(hi*tile, rows); i0 += tile {
			for j0 := 0; j0 < cols; j0 += tile {
				for i := i0; i < min(i0+tile, rows); i++ {
					for j := j0; j < min(j0+tile, cols); j++ {
						dst[j*rows+i] = src[i*cols+j]
					}
				}
			}
		}
	})
}

// PreActivation is latent i's pre-activation for one token's input x
// ([NInputs]): W_enc[i]·(x' − inBias) + latentBias[i], x' normalised when
// the autoencoder normalises. Tracing reports it as the explained scalar.
func (a *Autoencoder) PreActivation(x []float32, i int) (float32, error) {
	if len(x) != a.NInputs || i < 0 || i >= a.NLatents {
		return 0, fmt.Errorf("autoencoder %s: pre-activation of latent %d for %d inputs (have %d latents, %d inputs)", a.Source, i, len(x), a.NLatents, a.NInputs)
	}
	v := append([]float32(nil), x...)
	if a.Normalize {
		normalize(v)
	}
	var s float64
	for j, w := range a.enc[i*a.NInputs : (i+1)*a.NInputs] {
		xj := v[j]
		if a.inBias != nil {
			xj -= a.inBias[j]
		}
		s += float64(w) * float64(xj)
	}
	return float32(s + float64(a.latentBias[i])), nil
}
