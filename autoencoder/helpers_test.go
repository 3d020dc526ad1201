package autoencoder

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// Test helpers: a writer for torch.save-style files (zip + protocol-2
// pickle, the layout of PyTorch ≥ 1.6), so error paths and options can be
// tested without PyTorch, and a float64 reference implementation of the
// autoencoder equations.

// weights is an autoencoder in OpenAI layout.
type weights struct {
	in, lat    int
	enc        []float32 // [lat, in]
	dec        []float32 // [in, lat]
	preBias    []float32
	latentBias []float32
	freq       []float32 // latents_activation_frequency (nil: omitted)
	lastNZ     []int64   // stats_last_nonzero (nil: omitted)
	activation string    // "" = no entry
	k          int
	postact    string
}

func randomWeights(seed uint64, in, lat int) *weights {
	rng := rand.New(rand.NewPCG(seed, 1))
	norm := func(n int, s float64) []float32 {
		out := make([]float32, n)
		for i := range out {
			out[i] = float32(rng.NormFloat64() * s)
		}
		return out
	}
	w := &weights{in: in, lat: lat,
		enc: norm(lat*in, 1/math.Sqrt(float64(in))), dec: norm(in*lat, 1/math.Sqrt(float64(lat))),
		preBias: norm(in, 0.1), latentBias: norm(lat, 0.1),
		freq: make([]float32, lat), lastNZ: make([]int64, lat)}
	for i := range w.freq {
		w.freq[i] = float32(rng.Float64() + 0.01)
	}
	return w
}

// pickler emits protocol-2 pickle opcodes.
type pickler struct{ bytes.Buffer }

func (p *pickler) str(s string) {
	p.WriteByte('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
}

func (p *pickler) int(v int64) {
	p.WriteByte('J')
	binary.Write(&p.Buffer, binary.LittleEndian, int32(v))
}

func (p *pickler) global(mod, name string) { p.WriteString("c" + mod + "\n" + name + "\n") }

func (p *pickler) ints(v []int) {
	p.WriteByte('(')
	for _, x := range v {
		p.int(int64(x))
	}
	p.WriteByte('t')
}

// tensor emits _rebuild_tensor_v2(storage key, offset, shape, stride).
func (p *pickler) tensor(storageClass, key string, numel, offset int, shape, stride []int) {
	p.global("torch._utils", "_rebuild_tensor_v2")
	p.WriteByte('(')
	p.WriteByte('(')
	p.str("storage")
	p.global("torch", storageClass)
	p.str(key)
	p.str("cpu")
	p.int(int64(numel))
	p.WriteByte('t')
	p.WriteByte('Q')
	p.int(int64(offset))
	p.ints(shape)
	p.ints(stride)
	p.WriteByte(0x89)
	p.global("collections", "OrderedDict")
	p.WriteByte(')')
	p.WriteByte('R')
	p.WriteByte('t')
	p.WriteByte('R')
}

// ptOptions vary how a state dict is written.
type ptOptions struct {
	transposedDecoder bool // store decoder.weight as a strided view of [lat, in]
	skip              string
	compress          bool
	decoderLatents    int    // write decoder.weight as [in, decoderLatents] (0 = lat)
	extra             string // also write a tensor of this name (a copy of latent_bias)
}

// encodePT renders w as torch.save would.
func encodePT(w *weights, o ptOptions) []byte {
	var p pickler
	p.WriteString("\x80\x02}(")
	var blobs [][]byte
	add := func(name, class string, raw []byte, numel, offset int, shape, stride []int) {
		if name == o.skip {
			return
		}
		key := strconv.Itoa(len(blobs))
		blobs = append(blobs, raw)
		p.str(name)
		p.tensor(class, key, numel, offset, shape, stride)
	}
	f32 := func(v []float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	add("pre_bias", "FloatStorage", f32(w.preBias), len(w.preBias), 0, []int{len(w.preBias)}, []int{1})
	add("encoder.weight", "FloatStorage", f32(w.enc), w.lat*w.in, 0, []int{w.lat, w.in}, []int{w.in, 1})
	add("latent_bias", "FloatStorage", f32(w.latentBias), w.lat, 0, []int{w.lat}, []int{1})
	if o.transposedDecoder {
		t := make([]float32, len(w.dec))
		for i := range w.in {
			for j := range w.lat {
				t[j*w.in+i] = w.dec[i*w.lat+j]
			}
		}
		add("decoder.weight", "FloatStorage", f32(t), w.lat*w.in, 0, []int{w.in, w.lat}, []int{1, w.in})
	} else if dl := o.decoderLatents; dl != 0 {
		add("decoder.weight", "FloatStorage", f32(w.dec[:w.in*dl]), dl*w.in, 0, []int{w.in, dl}, []int{dl, 1})
	} else {
		add("decoder.weight", "FloatStorage", f32(w.dec), w.lat*w.in, 0, []int{w.in, w.lat}, []int{w.lat, 1})
	}
	if w.lastNZ != nil {
		b := make([]byte, 8*len(w.lastNZ))
		for i, x := range w.lastNZ {
			binary.LittleEndian.PutUint64(b[8*i:], uint64(x))
		}
		add("stats_last_nonzero", "LongStorage", b, w.lat, 0, []int{w.lat}, []int{1})
	}
	if w.freq != nil {
		add("latents_activation_frequency", "FloatStorage", f32(w.freq), w.lat, 0, []int{w.lat}, []int{1})
	}
	if o.extra != "" {
		add(o.extra, "FloatStorage", f32(w.latentBias), w.lat, 0, []int{w.lat}, []int{1})
	}
	if w.activation != "" {
		p.str("activation")
		p.str(w.activation)
	}
	if w.activation == "TopK" {
		p.str("activation_state_dict")
		p.WriteString("}(")
		p.str("k")
		p.int(int64(w.k))
		p.str("postact_fn")
		p.str(w.postact)
		p.WriteString("u")
	}
	p.WriteString("u.")

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	put := func(name string, data []byte) {
		method := zip.Store
		if o.compress {
			method = zip.Deflate
		}
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: "archive/" + name, Method: method})
		if err != nil {
			panic(err)
		}
		fw.Write(data)
	}
	put("data.pkl", p.Bytes())
	put("byteorder", []byte("little"))
	for i, b := range blobs {
		put("data/"+strconv.Itoa(i), b)
	}
	put("version", []byte("3\n"))
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func writePT(t testing.TB, w *weights, o ptOptions) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ae.pt")
	if err := os.WriteFile(path, encodePT(w, o), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// refEncode is the autoencoder in float64, straight from the equations.
func refEncode(w *weights, x []float32) (lat, recon []float64) {
	in, L := w.in, w.lat
	xs := make([]float64, in)
	var mu, sd float64
	for j := range xs {
		xs[j] = float64(x[j])
	}
	normalize := w.activation == "TopK"
	if normalize {
		for _, v := range xs {
			mu += v
		}
		mu /= float64(in)
		for _, v := range xs {
			sd += (v - mu) * (v - mu)
		}
		sd = math.Sqrt(sd / float64(in-1))
		for j := range xs {
			xs[j] = (xs[j] - mu) / (sd + 1e-5)
		}
	}
	lat = make([]float64, L)
	for i := range L {
		s := float64(w.latentBias[i])
		for j := range in {
			s += float64(w.enc[i*in+j]) * (xs[j] - float64(w.preBias[j]))
		}
		lat[i] = s
	}
	switch w.activation {
	case "", "ReLU":
		for i, v := range lat {
			lat[i] = max(v, 0)
		}
	case "TopK":
		keep := make([]bool, L)
		for range w.k {
			best := -1
			for i, v := range lat {
				if !keep[i] && (best < 0 || v > lat[best]) {
					best = i
				}
			}
			keep[best] = true
		}
		for i := range lat {
			if !keep[i] || w.postact == "ReLU" && lat[i] < 0 {
				lat[i] = 0
			}
		}
	}
	recon = make([]float64, in)
	for j := range in {
		s := float64(w.preBias[j])
		for i := range L {
			s += float64(w.dec[j*L+i]) * lat[i]
		}
		if normalize {
			s = s*sd + mu
		}
		recon[j] = s
	}
	return lat, recon
}

func f32s(v []float64) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func randomInputs(seed uint64, n int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 2))
	out := make([]float32, n)
	for i := range out {
		out[i] = float32(rng.NormFloat64()*2 + 0.3)
	}
	return out
}
