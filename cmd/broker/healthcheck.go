package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/shoalmq/shoal/config"
)

// defaultHealthURL is what `shoal healthcheck` asks without -c or --url:
// the default admin_listen's /healthz.
const defaultHealthURL = "http://" + config.DefaultAdminListen + "/healthz"

// runHealthcheck is `shoal healthcheck`: it GETs the admin listener's
// /healthz and exits 0 on 200, 1 otherwise (2 for a bad flag). A container
// image with no curl runs it as its HEALTHCHECK.
func runHealthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("shoal healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("c", "", "ask the admin listener (admin_listen) of the configuration `FILE`")
	url := fs.String("url", "", "ask `URL` (default "+defaultHealthURL+")")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after `D`")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: shoal healthcheck [-c FILE | --url URL] [--timeout D]\n\nExits 0 when the broker's admin listener answers /healthz with 200, 1 otherwise.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	}
	if fs.NArg() > 0 || (*cfgPath != "" && *url != "") {
		fmt.Fprintln(stderr, "shoal healthcheck: give -c FILE or --url URL, and no arguments")
		fs.Usage()
		return 2
	}
	target := *url
	switch {
	case target != "":
	case *cfgPath != "":
		f, err := config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintf(stderr, "shoal healthcheck: %v\n", err)
			return 1
		}
		if target, err = healthURL(f.AdminListen); err != nil {
			fmt.Fprintf(stderr, "shoal healthcheck: %s: %v\n", *cfgPath, err)
			return 1
		}
	default:
		target = defaultHealthURL
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	if err := getHealth(ctx, target); err != nil {
		fmt.Fprintf(stderr, "shoal healthcheck: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "ok: %s\n", target)
	return 0
}

// healthURL is the /healthz address of an admin listener on listen, asked
// from the same host: an address of every interface is asked on loopback.
func healthURL(listen string) (string, error) {
	if listen == "" {
		return "", errors.New("admin_listen is off: no /healthz to ask")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("admin_listen: %w", err)
	}
	if port == "0" {
		return "", fmt.Errorf("admin_listen %s: port 0 is chosen at start, give --url", listen)
	}
	switch ip := net.ParseIP(host); {
	case host == "":
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified() && ip.To4() != nil:
		host = "127.0.0.1"
	case ip != nil && ip.IsUnspecified():
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// getHealth GETs url and wants 200.
func getHealth(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
