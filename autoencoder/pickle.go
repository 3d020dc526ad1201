package autoencoder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// A restricted unpickler for the data.pkl of torch.save zip files.
//
// It understands the opcodes Python's pickle emits for protocols 2 to 5 and
// builds plain Go values; it never runs Python. Classes are limited to the
// handful a state dict needs (OrderedDict, tensor rebuild functions, typed
// storages): anything else is an error, not an opaque object. Every length
// read from the input is checked against the bytes left before anything is
// allocated, so a hostile file cannot make it allocate more than a small
// multiple of its own size.

// pyTuple, pyList and pyDict are Python's containers.
type (
	pyTuple []any
	pyList  struct{ items []any }
	pyDict  struct {
		keys  []any
		vals  []any
		index map[any]int
	}
)

// get returns the value of a string key.
func (d *pyDict) get(key string) (any, bool) {
	i, ok := d.index[key]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

func (d *pyDict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, nil, float64:
	default:
		return fmt.Errorf("unsupported dict key of type %s", pyTypeName(k))
	}
	if i, ok := d.index[k]; ok {
		d.vals[i] = v
		return nil
	}
	if d.index == nil {
		d.index = map[any]int{}
	}
	d.index[k] = len(d.keys)
	d.keys = append(d.keys, k)
	d.vals = append(d.vals, v)
	return nil
}

// pyGlobal is a class or function named by GLOBAL / STACK_GLOBAL.
type pyGlobal struct{ module, name string }

func (g pyGlobal) String() string { return g.module + "." + g.name }

// pyStorage is a torch storage named by a persistent id: its element type
// and the zip record that holds its bytes.
type pyStorage struct {
	dtype dtype
	key   string
	numel int64
}

// tensorRef is a tensor rebuilt by torch._utils._rebuild_tensor_v2: a view
// (offset, shape, stride in elements) of a storage.
type tensorRef struct {
	storage pyStorage
	offset  int64
	shape   []int
	stride  []int64
}

// dtype is the element type of a storage.
type dtype struct {
	name string
	size int
}

var storageTypes = map[string]dtype{
	"FloatStorage":    {"float32", 4},
	"DoubleStorage":   {"float64", 8},
	"HalfStorage":     {"float16", 2},
	"BFloat16Storage": {"bfloat16", 2},
	"LongStorage":     {"int64", 8},
	"IntStorage":      {"int32", 4},
	"ShortStorage":    {"int16", 2},
	"CharStorage":     {"int8", 1},
	"ByteStorage":     {"uint8", 1},
	"BoolStorage":     {"bool", 1},
}

// The callables a state dict may use.
var (
	globalOrderedDict  = pyGlobal{"collections", "OrderedDict"}
	globalRebuildV2    = pyGlobal{"torch._utils", "_rebuild_tensor_v2"}
	globalRebuildParam = pyGlobal{"torch._utils", "_rebuild_parameter"}
)

func allowedGlobal(g pyGlobal) bool {
	switch g {
	case globalOrderedDict, globalRebuildV2, globalRebuildParam:
		return true
	}
	_, ok := storageTypes[g.name]
	return ok && g.module == "torch"
}

// maxPickleDepth bounds MARK nesting (real state dicts nest a few levels).
const maxPickleDepth = 1000

// unpickle decodes one pickle. Persistent ids must be torch storages.
func unpickle(data []byte) (any, error) {
	u := &unpickler{data: data, memo: map[int64]any{}}
	v, err := u.run()
	if err != nil {
		return nil, fmt.Errorf("pickle byte %d: %w", u.opPos, err)
	}
	return v, nil
}

type unpickler struct {
	data  []byte
	pos   int
	opPos int // start of the opcode being run, for error messages
	stack []any
	marks []int // stack heights at each MARK
	memo  map[int64]any
}

var errTruncated = errors.New("unexpected end of data (truncated file?)")

func (u *unpickler) take(n int) ([]byte, error) {
	if n < 0 || n > len(u.data)-u.pos {
		return nil, errTruncated
	}
	b := u.data[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) byte1() (byte, error) {
	b, err := u.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (u *unpickler) uint(n int) (uint64, error) {
	b, err := u.take(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// sized reads a length of width bytes, then that many bytes.
func (u *unpickler) sized(width int) ([]byte, error) {
	n, err := u.uint(width)
	if err != nil {
		return nil, err
	}
	if n > uint64(len(u.data)-u.pos) {
		return nil, errTruncated
	}
	return u.take(int(n))
}

// line reads up to and excluding the next '\n'.
func (u *unpickler) line() (string, error) {
	for i := u.pos; i < len(u.data); i++ {
		if u.data[i] == '\n' {
			s := string(u.data[u.pos:i])
			u.pos = i + 1
			return s, nil
		}
	}
	return "", errTruncated
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

func (u *unpickler) pop() (any, error) {
	floor := 0
	if len(u.marks) > 0 {
		floor = u.marks[len(u.marks)-1]
	}
	if len(u.stack) <= floor {
		return nil, errors.New("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 {
		return nil, errors.New("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the items pushed since the last MARK and removes them.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

// popN pops n items (in push order) for TUPLE1..3.
func (u *unpickler) popN(n int) ([]any, error) {
	out := make([]any, n)
	for i := n - 1; i >= 0; i-- {
		v, err := u.pop()
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (u *unpickler) memoize(idx int64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	if idx < 0 {
		return fmt.Errorf("negative memo index %d", idx)
	}
	u.memo[idx] = v
	return nil
}

func (u *unpickler) recall(idx int64) error {
	v, ok := u.memo[idx]
	if !ok {
		return fmt.Errorf("memo index %d was never stored", idx)
	}
	u.push(v)
	return nil
}

func (u *unpickler) run() (any, error) {
	for {
		u.opPos = u.pos
		op, err := u.byte1()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x80: // PROTO
			v, err := u.byte1()
			if err != nil {
				return nil, err
			}
			if v > 5 {
				return nil, fmt.Errorf("unsupported pickle protocol %d", v)
			}
		case 0x95: // FRAME: a length hint only
			if _, err := u.take(8); err != nil {
				return nil, err
			}
		case '.': // STOP
			if len(u.marks) != 0 {
				return nil, errors.New("STOP inside an open MARK")
			}
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case '(': // MARK
			if len(u.marks) >= maxPickleDepth {
				return nil, errors.New("MARKs nested too deeply")
			}
			u.marks = append(u.marks, len(u.stack))
		case '0': // POP
			if _, err := u.pop(); err != nil {
				return nil, err
			}
		case '1': // POP_MARK
			if _, err := u.popMark(); err != nil {
				return nil, err
			}
		case '2': // DUP
			v, err := u.top()
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'N':
			u.push(nil)
		case 0x88:
			u.push(true)
		case 0x89:
			u.push(false)
		case 'J': // BININT
			v, err := u.uint(4)
			if err != nil {
				return nil, err
			}
			u.push(int64(int32(uint32(v))))
		case 'K': // BININT1
			v, err := u.uint(1)
			if err != nil {
				return nil, err
			}
			u.push(int64(v))
		case 'M': // BININT2
			v, err := u.uint(2)
			if err != nil {
				return nil, err
			}
			u.push(int64(v))
		case 0x8a, 0x8b: // LONG1, LONG4: little-endian two's complement
			width := 1
			if op == 0x8b {
				width = 4
			}
			b, err := u.sized(width)
			if err != nil {
				return nil, err
			}
			v, err := longValue(b)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'G': // BINFLOAT, big-endian
			b, err := u.take(8)
			if err != nil {
				return nil, err
			}
			u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
			width := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8}[op]
			b, err := u.sized(width)
			if err != nil {
				return nil, err
			}
			u.push(string(b))
		case 'T', 'U', 'B', 'C', 0x8e: // BINSTRING, SHORT_BINSTRING, BINBYTES, SHORT_BINBYTES, BINBYTES8
			width := map[byte]int{'T': 4, 'U': 1, 'B': 4, 'C': 1, 0x8e: 8}[op]
			b, err := u.sized(width)
			if err != nil {
				return nil, err
			}
			u.push(string(b))
		case ')':
			u.push(pyTuple{})
		case ']':
			u.push(&pyList{})
		case '}':
			u.push(&pyDict{})
		case 't', 'l', 'd': // TUPLE, LIST, DICT from the items since MARK
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			switch op {
			case 't':
				u.push(pyTuple(items))
			case 'l':
				u.push(&pyList{items: items})
			default:
				d := &pyDict{}
				if err := setItems(d, items); err != nil {
					return nil, err
				}
				u.push(d)
			}
		case 0x85, 0x86, 0x87: // TUPLE1..3
			items, err := u.popN(int(op-0x85) + 1)
			if err != nil {
				return nil, err
			}
			u.push(pyTuple(items))
		case 'a': // APPEND
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			if err := u.appendTo([]any{v}); err != nil {
				return nil, err
			}
		case 'e': // APPENDS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			if err := u.appendTo(items); err != nil {
				return nil, err
			}
		case 's': // SETITEM
			kv, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			if err := u.setItemsOnTop(kv); err != nil {
				return nil, err
			}
		case 'u': // SETITEMS
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			if err := u.setItemsOnTop(items); err != nil {
				return nil, err
			}
		case 'c': // GLOBAL "module\nname\n"
			mod, err := u.line()
			if err != nil {
				return nil, err
			}
			name, err := u.line()
			if err != nil {
				return nil, err
			}
			if err := u.pushGlobal(pyGlobal{mod, name}); err != nil {
				return nil, err
			}
		case 0x93: // STACK_GLOBAL
			mn, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			mod, ok1 := mn[0].(string)
			name, ok2 := mn[1].(string)
			if !ok1 || !ok2 {
				return nil, errors.New("STACK_GLOBAL needs two strings")
			}
			if err := u.pushGlobal(pyGlobal{mod, name}); err != nil {
				return nil, err
			}
		case 'q', 'r': // BINPUT, LONG_BINPUT
			width := 1
			if op == 'r' {
				width = 4
			}
			idx, err := u.uint(width)
			if err != nil {
				return nil, err
			}
			if err := u.memoize(int64(idx)); err != nil {
				return nil, err
			}
		case 0x94: // MEMOIZE
			if err := u.memoize(int64(len(u.memo))); err != nil {
				return nil, err
			}
		case 'h', 'j': // BINGET, LONG_BINGET
			width := 1
			if op == 'j' {
				width = 4
			}
			idx, err := u.uint(width)
			if err != nil {
				return nil, err
			}
			if err := u.recall(int64(idx)); err != nil {
				return nil, err
			}
		case 'Q': // BINPERSID
			pid, err := u.pop()
			if err != nil {
				return nil, err
			}
			st, err := persistentStorage(pid)
			if err != nil {
				return nil, err
			}
			u.push(st)
		case 'R': // REDUCE
			fa, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			v, err := reduce(fa[0], fa[1])
			if err != nil {
				return nil, err
			}
			u.push(v)
		case 'b': // BUILD: only the attributes of an OrderedDict (state dict _metadata)
			st, err := u.pop()
			if err != nil {
				return nil, err
			}
			obj, err := u.top()
			if err != nil {
				return nil, err
			}
			if _, ok := obj.(*pyDict); !ok {
				return nil, fmt.Errorf("BUILD on a %s is not supported", pyTypeName(obj))
			}
			_ = st // _metadata (module versions) is not needed
		default:
			return nil, fmt.Errorf("unsupported pickle opcode 0x%02x", op)
		}
	}
}

func (u *unpickler) pushGlobal(g pyGlobal) error {
	if !allowedGlobal(g) {
		return fmt.Errorf("unsupported Python object %s in a state dict", g)
	}
	u.push(g)
	return nil
}

func (u *unpickler) appendTo(items []any) error {
	t, err := u.top()
	if err != nil {
		return err
	}
	l, ok := t.(*pyList)
	if !ok {
		return fmt.Errorf("APPEND to a %s", pyTypeName(t))
	}
	l.items = append(l.items, items...)
	return nil
}

func (u *unpickler) setItemsOnTop(items []any) error {
	t, err := u.top()
	if err != nil {
		return err
	}
	d, ok := t.(*pyDict)
	if !ok {
		return fmt.Errorf("SETITEM on a %s", pyTypeName(t))
	}
	return setItems(d, items)
}

func setItems(d *pyDict, items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of items for a dict")
	}
	for i := 0; i < len(items); i += 2 {
		if err := d.set(items[i], items[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// longValue decodes LONG1/LONG4 payloads that fit an int64.
func longValue(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if len(b) > 8 {
		return 0, fmt.Errorf("integer of %d bytes is too large", len(b))
	}
	var v uint64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	if shift := 64 - 8*len(b); b[len(b)-1]&0x80 != 0 && shift > 0 {
		v |= ^uint64(0) << (64 - shift) // sign-extend
	}
	return int64(v), nil
}

// persistentStorage interprets torch's persistent id
// ("storage", StorageClass, key, location, numel).
func persistentStorage(pid any) (pyStorage, error) {
	t, ok := pid.(pyTuple)
	if !ok || len(t) < 5 {
		return pyStorage{}, fmt.Errorf("persistent id %s is not a torch storage tuple", describe(pid))
	}
	if kind, _ := t[0].(string); kind != "storage" {
		return pyStorage{}, fmt.Errorf("persistent id of kind %s is not a storage", describe(t[0]))
	}
	cls, ok := t[1].(pyGlobal)
	dt, known := storageTypes[cls.name]
	if !ok || !known {
		return pyStorage{}, fmt.Errorf("unsupported storage type %s", describe(t[1]))
	}
	key, ok := t[2].(string)
	if !ok {
		return pyStorage{}, fmt.Errorf("storage key %s is not a string", describe(t[2]))
	}
	n, ok := t[4].(int64)
	if !ok || n < 0 {
		return pyStorage{}, fmt.Errorf("storage size %s is not a non-negative integer", describe(t[4]))
	}
	return pyStorage{dtype: dt, key: key, numel: n}, nil
}

// reduce applies one of the allowed callables.
func reduce(fn, args any) (any, error) {
	g, ok := fn.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("REDUCE on a %s", pyTypeName(fn))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("REDUCE arguments of %s are a %s, not a tuple", g, pyTypeName(args))
	}
	switch g {
	case globalOrderedDict:
		if len(a) != 0 {
			return nil, errors.New("OrderedDict with arguments is not supported")
		}
		return &pyDict{}, nil
	case globalRebuildParam: // (data, requires_grad, backward_hooks)
		if len(a) < 1 {
			return nil, errors.New("_rebuild_parameter without data")
		}
		if _, ok := a[0].(*tensorRef); !ok {
			return nil, fmt.Errorf("_rebuild_parameter of a %s", pyTypeName(a[0]))
		}
		return a[0], nil
	case globalRebuildV2: // (storage, offset, size, stride, requires_grad, hooks[, metadata])
		if len(a) < 4 {
			return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(a))
		}
		st, ok := a[0].(pyStorage)
		if !ok {
			return nil, fmt.Errorf("_rebuild_tensor_v2 of a %s, not a storage", pyTypeName(a[0]))
		}
		off, ok := a[1].(int64)
		if !ok || off < 0 {
			return nil, fmt.Errorf("tensor storage offset %s", describe(a[1]))
		}
		shape, err := intTuple(a[2])
		if err != nil {
			return nil, fmt.Errorf("tensor shape: %w", err)
		}
		stride, err := intTuple(a[3])
		if err != nil {
			return nil, fmt.Errorf("tensor stride: %w", err)
		}
		if len(shape) != len(stride) {
			return nil, fmt.Errorf("tensor shape %v and stride %v differ in length", shape, stride)
		}
		ref := &tensorRef{storage: st, offset: off, stride: stride}
		for _, d := range shape {
			if d > math.MaxInt32 {
				return nil, fmt.Errorf("tensor dimension %d is too large", d)
			}
			ref.shape = append(ref.shape, int(d))
		}
		return ref, nil
	}
	return nil, fmt.Errorf("calling %s is not supported", g)
}

func intTuple(v any) ([]int64, error) {
	t, ok := v.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("%s is not a tuple", describe(v))
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("element %d (%s) is not a non-negative integer", i, describe(x))
		}
		out[i] = n
	}
	return out, nil
}

func pyTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case pyTuple:
		return "tuple"
	case *pyList:
		return "list"
	case *pyDict:
		return "dict"
	case pyGlobal:
		return "class"
	case pyStorage:
		return "storage"
	case *tensorRef:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// describe renders a small value for an error message.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case pyGlobal:
		return x.String()
	}
	return "a " + pyTypeName(v)
}
