package hub

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSha256FromETag(t *testing.T) {
	const sum = "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707"
	tests := []struct{ etag, want string }{
		{`"` + sum + `"`, sum},
		{`W/"` + sum + `"`, sum},
		{sum, sum},
		{`"` + strings.ToUpper(sum) + `"`, sum},
		{`"10c66461e4c109db5a2196bff4bb59be30396ed8"`, ""}, // git blob id of a small file
		{`"` + sum[:63] + `g"`, ""},
		{`"d41d8cd98f00b204e9800998ecf8427e"`, ""}, // an S3-style md5
		{"", ""},
	}
	for _, tt := range tests {
		if got := sha256FromETag(tt.etag); got != tt.want {
			t.Errorf("sha256FromETag(%q) = %q, want %q", tt.etag, got, tt.want)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in               string
		start, end, size int64
		ok               bool
	}{
		{"bytes 100-199/1000", 100, 199, 1000, true},
		{"bytes 0-0/1", 0, 0, 1, true},
		{"bytes 100-199/*", 100, 199, -1, true},
		{"bytes */1000", -1, -1, 1000, true},
		{"bytes */*", 0, 0, 0, false},
		{"bytes 200-100/1000", 0, 0, 0, false},
		{"bytes 100-1000/1000", 0, 0, 0, false},
		{"bytes -1-5/10", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 0-1", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tt := range tests {
		s, e, n, ok := parseContentRange(tt.in)
		if ok != tt.ok || ok && (s != tt.start || e != tt.end || n != tt.size) {
			t.Errorf("parseContentRange(%q) = %d, %d, %d, %v; want %d, %d, %d, %v", tt.in, s, e, n, ok, tt.start, tt.end, tt.size, tt.ok)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 100-199/1000", "bytes */5", "bytes 0-0/*", "bytes 9223372036854775807-9223372036854775807/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, size, ok := parseContentRange(s)
		if !ok {
			return
		}
		if start == -1 {
			if end != -1 || size < 0 {
				t.Fatalf("%q: unsatisfied range with size %d", s, size)
			}
			return
		}
		if start < 0 || end < start || size >= 0 && end >= size || size < -1 {
			t.Fatalf("%q accepted as %d-%d/%d", s, start, end, size)
		}
	})
}

func TestCheckContent(t *testing.T) {
	good := testCheckpoint(t, 1, 1024)
	tests := []struct {
		file, content, want string
	}{
		{configFile, string(good[configFile]), ""},
		{configFile, "<html>502 Bad Gateway</html>", "not a JSON object"},
		{configFile, "[1,2]", "not a JSON object"},
		{weightsFile, string(good[weightsFile]), ""},
		{weightsFile, "version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 548105171\n", "not a safetensors file"},
		{weightsFile, "\x10\x00\x00\x00\x00\x00\x00\x00{", "not a safetensors file"},
		{weightsFile, "short", "too short"},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), tt.file)
		if err := os.WriteFile(p, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		err := checkContent(tt.file, p)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("checkContent(%s, %.30q) = %v, want %q", tt.file, tt.content, err, tt.want)
		}
	}
}
