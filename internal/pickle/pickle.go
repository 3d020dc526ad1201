package pickle

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// Tuple, List and Dict are Python's containers.
type (
	Tuple []any
	List  struct{ items []any }
	Dict  struct {
		keys  []any
		vals  []any
		index map[any]int
	}
)

// Get returns the value of a string key.
func (d *Dict) Get(key string) (any, bool) {
	i, ok := d.index[key]
	if !ok {
		return nil, false
	}
	return d.vals[i], true
}

// Keys are the dict's keys in insertion order.
func (d *Dict) Keys() []any { return d.keys }

func (d *Dict) set(k, v any) error {
	switch k.(type) {
	case string, int64, bool, nil, float64:
	default:
		return fmt.Errorf("unsupported dict key of type %s", TypeName(k))
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

// Global is a class or function named by GLOBAL / STACK_GLOBAL.
type Global struct{ module, name string }

func (g Global) String() string { return g.module + "." + g.name }

// Storage is a torch storage named by a persistent id: its element type
// and the zip record that holds its bytes.
type Storage struct {
	DType DType
	Key   string // the zip record data/<Key> holds the bytes
	Numel int64
}

// Tensor is a tensor rebuilt by torch._utils._rebuild_tensor_v2: a view
// (offset, shape, stride in elements) of a storage.
type Tensor struct {
	Storage Storage
	Offset  int64
	Shape   []int
	Stride  []int64
}

// Contiguous reports whether the view is dense row-major.
func (r *Tensor) Contiguous() bool {
	s := int64(1)
	for i := len(r.Shape) - 1; i >= 0; i-- {
		if r.Shape[i] != 1 && r.Stride[i] != s {
			return false
		}
		s *= int64(r.Shape[i])
	}
	return true
}

// DType is the element type of a storage.
type DType struct {
	Name string // float32, float16, int64, ...
	Size int    // bytes per element
}

var storageTypes = map[string]DType{
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
	globalOrderedDict  = Global{"collections", "OrderedDict"}
	globalRebuildV2    = Global{"torch._utils", "_rebuild_tensor_v2"}
	globalRebuildParam = Global{"torch._utils", "_rebuild_parameter"}
)

func allowedGlobal(g Global) bool {
	switch g {
	case globalOrderedDict, globalRebuildV2, globalRebuildParam:
		return true
	}
	_, ok := storageTypes[g.name]
	return ok && g.module == "torch"
}

// maxPickleDepth bounds MARK nesting (real state dicts nest a few levels).
const maxPickleDepth = 1000

// Decode decodes one pickle. Persistent ids must be torch storages.
func Decode(data []byte) (any, error) {
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

// popN pops n items (in push order).
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

// operands pops what APPEND(S) and SETITEM(S) act on: the items since
// MARK for the plural forms, else the top n (a value, or a key and a value).
func (u *unpickler) operands(sinceMark bool, n int) ([]any, error) {
	if sinceMark {
		return u.popMark()
	}
	return u.popN(n)
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
		case opProto:
			v, err := u.byte1()
			if err != nil {
				return nil, err
			}
			if v > 5 {
				return nil, fmt.Errorf("unsupported pickle protocol %d", v)
			}
		case opFrame: // a length hint only
			if _, err := u.take(8); err != nil {
				return nil, err
			}
		case opStop:
			if len(u.marks) != 0 {
				return nil, errors.New("STOP inside an open MARK")
			}
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case opMark:
			if len(u.marks) >= maxPickleDepth {
				return nil, errors.New("MARKs nested too deeply")
			}
			u.marks = append(u.marks, len(u.stack))
		case opPop:
			if _, err := u.pop(); err != nil {
				return nil, err
			}
		case opPopMark:
			if _, err := u.popMark(); err != nil {
				return nil, err
			}
		case opDup:
			v, err := u.top()
			if err != nil {
				return nil, err
			}
			u.push(v)
		case opNone:
			u.push(nil)
		case opNewTrue:
			u.push(true)
		case opNewFalse:
			u.push(false)
		case opBinInt, opBinInt1, opBinInt2:
			v, err := u.uint(argWidth[op])
			if err != nil {
				return nil, err
			}
			n := int64(v)
			if op == opBinInt { // the only signed one
				n = int64(int32(uint32(v)))
			}
			u.push(n)
		case opLong1, opLong4: // little-endian two's complement
			b, err := u.sized(argWidth[op])
			if err != nil {
				return nil, err
			}
			v, err := longValue(b)
			if err != nil {
				return nil, err
			}
			u.push(v)
		case opBinFloat: // big-endian
			b, err := u.take(8)
			if err != nil {
				return nil, err
			}
			u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		case opBinUnicode, opShortBinUnicode, opBinUnicode8,
			opBinString, opShortBinString, opBinBytes, opShortBinBytes, opBinBytes8:
			b, err := u.sized(argWidth[op])
			if err != nil {
				return nil, err
			}
			u.push(string(b))
		case opEmptyTuple:
			u.push(Tuple{})
		case opEmptyList:
			u.push(&List{})
		case opEmptyDict:
			u.push(&Dict{})
		case opTuple, opList, opDict: // from the items since MARK
			items, err := u.popMark()
			if err != nil {
				return nil, err
			}
			switch op {
			case opTuple:
				u.push(Tuple(items))
			case opList:
				u.push(&List{items: items})
			default:
				d := &Dict{}
				if err := setItems(d, items); err != nil {
					return nil, err
				}
				u.push(d)
			}
		case opTuple1, opTuple2, opTuple3:
			items, err := u.popN(int(op-opTuple1) + 1)
			if err != nil {
				return nil, err
			}
			u.push(Tuple(items))
		case opAppend, opAppends:
			items, err := u.operands(op == opAppends, 1)
			if err == nil {
				err = u.appendTo(items)
			}
			if err != nil {
				return nil, err
			}
		case opSetItem, opSetItems:
			items, err := u.operands(op == opSetItems, 2)
			if err == nil {
				err = u.setItemsOnTop(items)
			}
			if err != nil {
				return nil, err
			}
		case opGlobal:
			mod, err := u.line()
			if err != nil {
				return nil, err
			}
			name, err := u.line()
			if err != nil {
				return nil, err
			}
			if err := u.pushGlobal(Global{mod, name}); err != nil {
				return nil, err
			}
		case opStackGlobal:
			mn, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			mod, ok1 := mn[0].(string)
			name, ok2 := mn[1].(string)
			if !ok1 || !ok2 {
				return nil, errors.New("STACK_GLOBAL needs two strings")
			}
			if err := u.pushGlobal(Global{mod, name}); err != nil {
				return nil, err
			}
		case opBinPut, opLongBinPut:
			idx, err := u.uint(argWidth[op])
			if err == nil {
				err = u.memoize(int64(idx))
			}
			if err != nil {
				return nil, err
			}
		case opMemoize:
			if err := u.memoize(int64(len(u.memo))); err != nil {
				return nil, err
			}
		case opBinGet, opLongBinGet:
			idx, err := u.uint(argWidth[op])
			if err == nil {
				err = u.recall(int64(idx))
			}
			if err != nil {
				return nil, err
			}
		case opBinPersID:
			pid, err := u.pop()
			if err != nil {
				return nil, err
			}
			st, err := persistentStorage(pid)
			if err != nil {
				return nil, err
			}
			u.push(st)
		case opReduce:
			fa, err := u.popN(2)
			if err != nil {
				return nil, err
			}
			v, err := reduce(fa[0], fa[1])
			if err != nil {
				return nil, err
			}
			u.push(v)
		case opBuild: // only the attributes of an OrderedDict (state dict _metadata)
			st, err := u.pop()
			if err != nil {
				return nil, err
			}
			obj, err := u.top()
			if err != nil {
				return nil, err
			}
			if _, ok := obj.(*Dict); !ok {
				return nil, fmt.Errorf("BUILD on a %s is not supported", TypeName(obj))
			}
			_ = st // _metadata (module versions) is not needed
		default:
			return nil, fmt.Errorf("unsupported pickle opcode 0x%02x", op)
		}
	}
}

func (u *unpickler) pushGlobal(g Global) error {
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
	l, ok := t.(*List)
	if !ok {
		return fmt.Errorf("APPEND to a %s", TypeName(t))
	}
	l.items = append(l.items, items...)
	return nil
}

func (u *unpickler) setItemsOnTop(items []any) error {
	t, err := u.top()
	if err != nil {
		return err
	}
	d, ok := t.(*Dict)
	if !ok {
		return fmt.Errorf("SETITEM on a %s", TypeName(t))
	}
	return setItems(d, items)
}

func setItems(d *Dict, items []any) error {
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
func persistentStorage(pid any) (Storage, error) {
	t, ok := pid.(Tuple)
	if !ok || len(t) < 5 {
		return Storage{}, fmt.Errorf("persistent id %s is not a torch storage tuple", Describe(pid))
	}
	if kind, _ := t[0].(string); kind != "storage" {
		return Storage{}, fmt.Errorf("persistent id of kind %s is not a storage", Describe(t[0]))
	}
	cls, ok := t[1].(Global)
	dt, known := storageTypes[cls.name]
	if !ok || !known {
		return Storage{}, fmt.Errorf("unsupported storage type %s", Describe(t[1]))
	}
	key, ok := t[2].(string)
	if !ok {
		return Storage{}, fmt.Errorf("storage key %s is not a string", Describe(t[2]))
	}
	n, ok := t[4].(int64)
	if !ok || n < 0 {
		return Storage{}, fmt.Errorf("storage size %s is not a non-negative integer", Describe(t[4]))
	}
	return Storage{DType: dt, Key: key, Numel: n}, nil
}

// reduce applies one of the allowed callables.
func reduce(fn, args any) (any, error) {
	g, ok := fn.(Global)
	if !ok {
		return nil, fmt.Errorf("REDUCE on a %s", TypeName(fn))
	}
	a, ok := args.(Tuple)
	if !ok {
		return nil, fmt.Errorf("REDUCE arguments of %s are a %s, not a tuple", g, TypeName(args))
	}
	switch g {
	case globalOrderedDict:
		if len(a) != 0 {
			return nil, errors.New("OrderedDict with arguments is not supported")
		}
		return &Dict{}, nil
	case globalRebuildParam: // (data, requires_grad, backward_hooks)
		if len(a) < 1 {
			return nil, errors.New("_rebuild_parameter without data")
		}
		if _, ok := a[0].(*Tensor); !ok {
			return nil, fmt.Errorf("_rebuild_parameter of a %s", TypeName(a[0]))
		}
		return a[0], nil
	case globalRebuildV2: // (storage, offset, size, stride, requires_grad, hooks[, metadata])
		if len(a) < 4 {
			return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(a))
		}
		st, ok := a[0].(Storage)
		if !ok {
			return nil, fmt.Errorf("_rebuild_tensor_v2 of a %s, not a storage", TypeName(a[0]))
		}
		off, ok := a[1].(int64)
		if !ok || off < 0 {
			return nil, fmt.Errorf("tensor storage offset %s", Describe(a[1]))
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
		ref := &Tensor{Storage: st, Offset: off, Stride: stride}
		for _, d := range shape {
			if d > math.MaxInt32 {
				return nil, fmt.Errorf("tensor dimension %d is too large", d)
			}
			ref.Shape = append(ref.Shape, int(d))
		}
		return ref, nil
	}
	return nil, fmt.Errorf("calling %s is not supported", g)
}

func intTuple(v any) ([]int64, error) {
	t, ok := v.(Tuple)
	if !ok {
		return nil, fmt.Errorf("%s is not a tuple", Describe(v))
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("element %d (%s) is not a non-negative integer", i, Describe(x))
		}
		out[i] = n
	}
	return out, nil
}

func TypeName(v any) string {
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
	case Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	case Global:
		return "class"
	case Storage:
		return "storage"
	case *Tensor:
		return "tensor"
	}
	return fmt.Sprintf("%T", v)
}

// Describe renders a small value for an error message.
func Describe(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case Global:
		return x.String()
	}
	return "a " + TypeName(v)
}
