package textutil_test

import (
	"fmt"

	"tdb/internal/textutil"
)

func ExampleList() {
	fmt.Printf("%q %q %q\n", textutil.List("a, b,,c "), textutil.List(" , ,"), textutil.List("x/1"))
	// Output: ["a" "b" "c"] [] ["x/1"]
}
