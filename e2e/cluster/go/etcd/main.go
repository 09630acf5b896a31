// Command etcd is a minimal single-member etcd for the local e2e cluster,
// built on go.etcd.io/etcd/server/v3/embed so that it has the features the
// kube-apiserver expects from a current etcd (RequestWatchProgress for
// streaming lists), which Debian's etcd 3.4 lacks.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dataDir := flag.String("data-dir", "", "directory for the member's data (required)")
	clientURL := flag.String("listen-client-url", "http://127.0.0.1:2379", "URL to serve clients on (also advertised)")
	peerURL := flag.String("listen-peer-url", "http://127.0.0.1:2380", "URL for peer traffic (unused by a single member, but etcd needs one)")
	logLevel := flag.String("log-level", "warn", "debug, info, warn or error")
	noFsync := flag.Bool("unsafe-no-fsync", true, "skip fsync (fine for a throwaway test cluster, faster on shared disks)")
	flag.Parse()
	if *dataDir == "" {
		fail("--data-dir is required")
	}
	client, err := url.Parse(*clientURL)
	if err != nil {
		fail("--listen-client-url: %v", err)
	}
	peer, err := url.Parse(*peerURL)
	if err != nil {
		fail("--listen-peer-url: %v", err)
	}

	cfg := embed.NewConfig()
	cfg.Name = "tlsmint-e2e"
	cfg.Dir = *dataDir
	cfg.ListenClientUrls = []url.URL{*client}
	cfg.AdvertiseClientUrls = []url.URL{*client}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = *logLevel
	cfg.UnsafeNoFsync = *noFsync

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fail("start: %v", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintf(os.Stderr, "etcd ready on %s\n", client)
	case <-time.After(60 * time.Second):
		e.Server.Stop()
		fail("not ready after 60s")
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		fmt.Fprintf(os.Stderr, "etcd: %v, stopping\n", s)
		e.Close()
	case err := <-e.Err():
		e.Close()
		fail("serve: %v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "etcd: "+format+"\n", args...)
	os.Exit(1)
}
