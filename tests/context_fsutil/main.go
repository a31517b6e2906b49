// Command context_fsutil lists what current BuildKit sends as a build context:
// it reads DIR/.dockerignore with moby/patternmatcher's ignorefile.ReadAll and
// walks DIR with tonistiigi/fsutil (the library BuildKit's client uses for the
// context transfer). One line per path: "<kind>\t<path>\t<link target>".
// Used by tests/context_buildkit_oracle.rs as ground truth for Dialect::BuildKit.
// `-filter` and `-ignorefile` are the transfer-filter modes of filter.go.
package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tonistiigi/fsutil"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-filter" {
		runFilterBatch()
		return
	}
	if len(os.Args) >= 2 && os.Args[1] == "-ignorefile" {
		runIgnoreFiles(os.Args[2:])
		return
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: context_fsutil DIR | context_fsutil -filter < requests")
		os.Exit(2)
	}
	dir := os.Args[1]
	var excludes []string
	if f, err := os.Open(filepath.Join(dir, ".dockerignore")); err == nil {
		excludes, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			fmt.Fprintln(os.Stderr, "read .dockerignore:", err)
			os.Exit(1)
		}
	}
	opt := &fsutil.FilterOpt{ExcludePatterns: excludes}
	err := fsutil.Walk(context.Background(), dir, opt, func(path string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(filepath.Join(dir, path))
			if err != nil {
				return err
			}
			fmt.Printf("link\t%s\t%s\n", path, target)
		case info.IsDir():
			fmt.Printf("dir\t%s\t\n", path)
		default:
			fmt.Printf("file\t%s\t\n", path)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "walk:", err)
		os.Exit(1)
	}
}
