package main

// Batch mode for tests/context_transfer_oracle.rs: one JSON request per
// stdin line ({"dir", "include", "exclude", "follow"}), one JSON answer per
// stdout line: the paths fsutil's FilterFS walk yields for that request, in
// walk order ({"entries": [[kind, path, link target], ...]} or {"error": ...}).
// `-ignorefile FILE...` prints, per file, the JSON list of patterns
// moby/patternmatcher's ignorefile.ReadAll makes of it ([] when missing).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tonistiigi/fsutil"
)

func runIgnoreFiles(paths []string) {
	enc := json.NewEncoder(os.Stdout)
	for _, p := range paths {
		patterns := []string{}
		if f, err := os.Open(p); err == nil {
			if read, err := ignorefile.ReadAll(f); err == nil && read != nil {
				patterns = read
			}
			f.Close()
		}
		if err := enc.Encode(patterns); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(1)
		}
	}
}

type filterRequest struct {
	Dir     string   `json:"dir"`
	Include []string `json:"include"`
	Exclude []string `json:"exclude"`
	Follow  []string `json:"follow"`
}

type filterAnswer struct {
	Entries [][3]string `json:"entries"`
	Error   string      `json:"error,omitempty"`
}

// nilIfEmpty: BuildKit never sends an empty list, and fsutil treats nil and
// empty differently (an empty follow list still rewrites the includes).
func nilIfEmpty(v []string) []string {
	if len(v) == 0 {
		return nil
	}
	return v
}

func filterOne(req filterRequest) filterAnswer {
	opt := &fsutil.FilterOpt{
		IncludePatterns: nilIfEmpty(req.Include),
		ExcludePatterns: nilIfEmpty(req.Exclude),
		FollowPaths:     nilIfEmpty(req.Follow),
	}
	ans := filterAnswer{Entries: [][3]string{}}
	err := fsutil.Walk(context.Background(), req.Dir, opt, func(path string, info fs.FileInfo, err error) error {
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(filepath.Join(req.Dir, path))
			if err != nil {
				return err
			}
			ans.Entries = append(ans.Entries, [3]string{"link", path, target})
		case info.IsDir():
			ans.Entries = append(ans.Entries, [3]string{"dir", path, ""})
		default:
			ans.Entries = append(ans.Entries, [3]string{"file", path, ""})
		}
		return nil
	})
	if err != nil {
		return filterAnswer{Entries: [][3]string{}, Error: err.Error()}
	}
	return ans
}

func runFilterBatch() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for in.Scan() {
		var req filterRequest
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			fmt.Fprintln(os.Stderr, "bad request:", err)
			os.Exit(2)
		}
		if err := enc.Encode(filterOne(req)); err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "read:", err)
		os.Exit(1)
	}
}
