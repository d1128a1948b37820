// The Go reference client for bench/compare: net/http + encoding/json, the
// standard library only. N goroutines share one Transport limited to N
// keep-alive connections; each GETs the URL, decodes the Import JSON and
// checks its required fields, in a loop.
//
//	go_client --url https://127.0.0.1:8443/path --ca ca.pem --token T
//	          --api-version V --user-agent UA [--connections 2]
//
// Runs until SIGTERM/SIGINT, lets the requests in flight finish, then prints
// "polls=P connections=C" (C = TCP connections it dialled) on stdout.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

type file struct {
	Filename string `json:"filename"`
	Status   string `json:"status"`
}

type link struct {
	Href string `json:"href"`
	Type string `json:"type"`
}

type importRep struct {
	ID           string          `json:"id"`
	SegmentKey   string          `json:"segmentKey"`
	CreationTime int64           `json:"creationTime"`
	Mode         string          `json:"mode"`
	Status       string          `json:"status"`
	Files        []file          `json:"files"`
	Links        map[string]link `json:"_links"`
}

func main() {
	url := flag.String("url", "", "https URL to poll")
	ca := flag.String("ca", "", "CA certificate (PEM)")
	token := flag.String("token", "", "Authorization header value")
	apiVersion := flag.String("api-version", "", "LD-API-Version header value")
	userAgent := flag.String("user-agent", "", "User-Agent header value")
	connections := flag.Int("connections", 2, "keep-alive connections")
	flag.Parse()

	pem, err := os.ReadFile(*ca)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_client:", err)
		os.Exit(1)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		fmt.Fprintln(os.Stderr, "go_client: no certificate in", *ca)
		os.Exit(1)
	}
	var dials atomic.Int64
	dialer := &net.Dialer{}
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxConnsPerHost:     *connections,
		MaxIdleConnsPerHost: *connections,
		DisableCompression:  true, // no Accept-Encoding: the same request headers as the others
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return dialer.DialContext(ctx, network, addr)
		},
	}
	client := &http.Client{Transport: transport}

	var stop atomic.Bool
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-signals; stop.Store(true) }()

	var polls atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < *connections; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest("GET", *url, nil)
				req.Header.Set("Authorization", *token)
				req.Header.Set("LD-API-Version", *apiVersion)
				req.Header.Set("Accept", "application/json")
				req.Header.Set("User-Agent", *userAgent)
				resp, err := client.Do(req)
				if err != nil {
					fmt.Fprintln(os.Stderr, "go_client:", err)
					os.Exit(1)
				}
				var imp importRep
				err = json.NewDecoder(resp.Body).Decode(&imp)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || err != nil || imp.ID == "" || imp.SegmentKey == "" ||
					imp.CreationTime == 0 || imp.Mode == "" || imp.Status == "" || imp.Links == nil {
					fmt.Fprintln(os.Stderr, "go_client: bad response", resp.StatusCode, err)
					os.Exit(1)
				}
				polls.Add(1)
			}
		}()
	}
	wg.Wait()
	fmt.Printf("polls=%d connections=%d\n", polls.Load(), dials.Load())
}
