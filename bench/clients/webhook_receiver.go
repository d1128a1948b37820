// The webhook receiver for bench/events: plain HTTP on 127.0.0.1, answers
// 204 to every POST /hook after checking its Standard Webhooks signature
// (HMAC-SHA256 over id.timestamp.body with the decoded whsec_ secret) and the
// event's per-watch sequence. GET /stats reports what it has seen:
//
//	delivered=N (new events, in order) duplicates=D (sequence already seen)
//	gaps=G (a sequence skipped: out of order) bad_signature=B
//	connections=C (connections that POSTed)
//
//	webhook_receiver --listen 127.0.0.1:PORT --secret whsec_...
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
)

type event struct {
	Data struct {
		Watch    string `json:"watch"`
		Sequence int64  `json:"sequence"`
	} `json:"data"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address")
	secret := flag.String("secret", "", "whsec_<base64>")
	flag.Parse()
	var peers sync.Map // client address -> true: the connections that made requests
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(*secret, "whsec_"))
	if err != nil || len(key) == 0 {
		fmt.Fprintln(os.Stderr, "webhook_receiver: bad --secret")
		os.Exit(1)
	}

	var mu sync.Mutex
	last := map[string]int64{}
	var delivered, duplicates, gaps, badSignature int64

	http.HandleFunc("/hook", func(w http.ResponseWriter, r *http.Request) {
		peers.Store(r.RemoteAddr, true)
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(r.Header.Get("webhook-id") + "." + r.Header.Get("webhook-timestamp") + "."))
		mac.Write(body)
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		ok := false
		for _, s := range strings.Fields(r.Header.Get("webhook-signature")) {
			ok = ok || hmac.Equal([]byte(s), []byte(want))
		}
		var e event
		if !ok || json.Unmarshal(body, &e) != nil || e.Data.Watch == "" {
			mu.Lock()
			badSignature++
			mu.Unlock()
			w.WriteHeader(http.StatusBadRequest) // retried by importwatch: shows up as not delivered
			return
		}
		mu.Lock()
		switch prev := last[e.Data.Watch]; {
		case e.Data.Sequence <= prev:
			duplicates++
		case e.Data.Sequence == prev+1:
			delivered++
			last[e.Data.Watch] = e.Data.Sequence
		default:
			gaps++
			delivered++
			last[e.Data.Watch] = e.Data.Sequence
		}
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	http.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "delivered=%d duplicates=%d gaps=%d bad_signature=%d connections=%d\n",
			delivered, duplicates, gaps, badSignature, count(&peers))
	})
	if err := http.ListenAndServe(*listen, nil); err != nil {
		fmt.Fprintln(os.Stderr, "webhook_receiver:", err)
		os.Exit(1)
	}
}

func count(m *sync.Map) (n int) {
	m.Range(func(_, _ any) bool { n++; return true })
	return n
}
