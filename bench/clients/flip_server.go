// A LaunchDarkly stand-in for bench/events: plain HTTP on 127.0.0.1, and
// every GET of an import answers the next status of a cycle through the four
// non-terminal statuses, so every poll after the first is a status change
// (one importwatch.import.status_changed event). With --files F the Import
// also lists F files whose status flips on every request: F more
// file_status_changed events per poll.
//
//	flip_server --listen 127.0.0.1:PORT [--files 0]
//
// GET /stats reports "served=N connections=C" (C: client connections that polled).
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

var cycle = []string{"preparing", "pending_approval", "ready", "in_progress"}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address")
	files := flag.Int("files", 0, "files per import, each flipping status on every request")
	flag.Parse()
	var peers sync.Map // client address -> true: the connections that made requests

	var counters sync.Map // path -> *atomic.Int64
	var served atomic.Int64
	http.HandleFunc("/api/v2/segments/", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/api/v2/segments/"), "/")
		if r.Method != http.MethodGet || len(parts) != 5 || parts[3] != "imports" {
			http.Error(w, `{"code":"not_found","message":"Invalid resource identifier"}`, http.StatusNotFound)
			return
		}
		peers.Store(r.RemoteAddr, true)
		c, _ := counters.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n := c.(*atomic.Int64).Add(1) - 1
		var b strings.Builder
		fmt.Fprintf(&b, `{"id":%q,"segmentKey":%q,"creationTime":1764355040123,"mode":"replace","status":%q,"files":[`,
			parts[4], parts[2], cycle[n%int64(len(cycle))])
		fileStatus := [2]string{"pending", "processing"}[n%2]
		for i := 0; i < *files; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"filename":"part-%03d.csv","status":%q}`, i, fileStatus)
		}
		fmt.Fprintf(&b, `],"_links":{"self":{"href":%q,"type":"application/json"}}}`, r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
		w.Write([]byte(b.String()))
		served.Add(1)
	})
	http.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "served=%d connections=%d\n", served.Load(), count(&peers))
	})
	if err := http.ListenAndServe(*listen, nil); err != nil {
		fmt.Fprintln(os.Stderr, "flip_server:", err)
		os.Exit(1)
	}
}

func count(m *sync.Map) (n int) {
	m.Range(func(_, _ any) bool { n++; return true })
	return n
}
