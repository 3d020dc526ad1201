package pickle

import (
	"strings"
	"testing"
)

// FuzzDecode feeds the parser arbitrary bytes: it must return a value or
// an error, never panic or allocate beyond a small multiple of the input.
// Seeds: testdata/fuzz/FuzzDecode holds the data.pkl of two synthetic
// autoencoder state dicts.
func FuzzDecode(f *testing.F) {
	f.Add([]byte("\x80\x02]q\x00(K\x01\x8a\x02\xff\x7fG?\xf0\x00\x00\x00\x00\x00\x00e."))
	f.Add([]byte("\x80\x02cos\nsystem\nq\x00."))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Decode(data)
		if err == nil && v == nil && len(data) == 0 {
			t.Fatal("empty input decoded without error")
		}
	})
}

func TestDecodeValues(t *testing.T) {
	// PROTO 2, EMPTY_LIST, BINPUT 0, MARK, BININT1 1, LONG1 0x7fff, BINFLOAT 1.0, APPENDS, STOP.
	v, err := Decode([]byte("\x80\x02]q\x00(K\x01\x8a\x02\xff\x7fG?\xf0\x00\x00\x00\x00\x00\x00e."))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := v.(*List)
	if !ok || len(l.items) != 3 || l.items[0] != int64(1) || l.items[1] != int64(32767) || l.items[2] != 1.0 {
		t.Fatalf("decoded %#v", v)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for name, c := range map[string]struct{ data, want string }{
		"foreign global": {"\x80\x02cos\nsystem\nq\x00.", "os.system"},
		"truncated":      {"\x80\x02X\x10\x00\x00\x00abc", "truncated"},
		"bad protocol":   {"\x80\x09.", "protocol 9"},
		"unknown opcode": {"\x80\x02\xff.", "opcode 0xff"},
		"stop in mark":   {"\x80\x02(N.", "MARK"},
	} {
		if _, err := Decode([]byte(c.data)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error mentioning %q", name, err, c.want)
		}
	}
}
