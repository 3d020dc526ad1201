package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"tdb/model"
)

// A token id beyond the model's vocabulary in a tokens: corpus is refused
// before anything is submitted (exit code 2, naming the file and offset).
func TestCollateRefusesTokensBeyondVocabulary(t *testing.T) {
	dir := testDir(t)
	toks := filepath.Join(dir, "toks.bin")
	raw := make([]byte, 2*3000)
	for i := range 3000 {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(i%500))
	}
	binary.LittleEndian.PutUint16(raw[2*2500:], uint16(model.TinyConfig.Vocab))
	if err := os.WriteFile(toks, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runTDB(t, "collate", "--model", "random:tiny", "--corpus", "tokens:"+toks, "--n-ctx", "16",
		"--store", filepath.Join(dir, "data"), "--workers", "1")
	want := "is not below the vocabulary size"
	if code != 2 || !strings.Contains(errOut, "--corpus: corpus token file "+toks) || !strings.Contains(errOut, "index 2500 (byte offset 5000) "+want) {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s\nwant exit 2 and %q", code, out, errOut, want)
	}
	if strings.Contains(errOut, "job j-") {
		t.Fatalf("a job was submitted:\n%s", errOut)
	}
}

// A finished job is not reused after the corpus is edited with its size and
// modification time restored: the command makes a new dataset with the new
// content (Linux: the status change time is part of the corpus stamp).
func TestCollateCorpusEditedWithTimesRestoredIsANewJob(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the status change time is read on Linux")
	}
	dir := testDir(t)
	path := filepath.Join(dir, "docs.jsonl")
	write := func(word string) {
		var b strings.Builder
		for i := range 60 {
			fmt.Fprintf(&b, `{"text": "The %s number %03d sat on the mat."}`+"\n", word, i)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("cat")
	fi, _ := os.Stat(path)
	collate := func() string {
		return collateDataset(t, "--model", "random:tiny", "--corpus", "jsonl:"+path, "--n-ctx", "16",
			"--top-k", "3", "--store", filepath.Join(dir, "data"), "--workers", "1")
	}
	first := collate()
	write("dog")
	os.Chtimes(path, fi.ModTime(), fi.ModTime())
	if now, _ := os.Stat(path); now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) {
		t.Fatal("the edit changed size or time")
	}
	if second := collate(); second == first {
		t.Fatalf("the finished job %s was reused after the corpus changed", first)
	}
}
