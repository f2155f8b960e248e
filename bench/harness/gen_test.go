package harness

import (
	"slices"
	"testing"
	"time"
)

func TestGenArgs(t *testing.T) {
	pub := Gen{Mode: "pub", Count: 100, Topic: "bench/%i", QoS: 1, Size: 64, Interval: 10, Duration: 5 * time.Second}
	want := []string{"pub", "-h", "127.0.0.1", "-p", "1883", "-c", "100", "-i", "0", "-V", "4", "-k", "60",
		"-S", "0", "--prefix", "pub0-", "-t", "bench/%i", "-q", "1", "-s", "64", "-I", "10",
		"--duration", "5s", "--ready", "/w/pub0.ready", "--start-at", "/w/start", "--json"}
	if got := pub.Args("127.0.0.1", 1883, "pub0-", "/w/pub0.ready", "/w/start"); !slices.Equal(got, want) {
		t.Errorf("pub args:\n got %q\nwant %q", got, want)
	}
	sub := Gen{Mode: "sub", Count: 9500, Topic: "idle/%i", QoS: 1, Start: 9500, Src: []string{"127.0.0.3", "127.0.0.4"}, Expect: 7}
	want = []string{"sub", "-h", "h", "-p", "2", "-c", "9500", "-i", "0", "-V", "4", "-k", "60",
		"-S", "9500", "--prefix", "s-", "-t", "idle/%i", "-q", "1", "--src", "127.0.0.3,127.0.0.4", "--expect", "7", "--json"}
	if got := sub.Args("h", 2, "s-", "", ""); !slices.Equal(got, want) {
		t.Errorf("sub args:\n got %q\nwant %q", got, want)
	}
}

func TestParseResult(t *testing.T) {
	out := []byte("connecting 100 clients\n" +
		`{"mode":"sub","clients":100,"connected":100,"connect_failed":0,"connect_rate":5000.5,"connack_p50_ms":0.4,"connack_p99_ms":2.5,"sent":0,"received":123456,"sent_rate":0,"recv_rate":24691.2,"lat_p50_ms":0.31,"lat_p99_ms":1.9,"lat_p999_ms":4.2,"lost":3,"dup":0,"duration_s":5.0,"cpu_s":1.25}` +
		"\n")
	r, err := ParseResult(out)
	if err != nil {
		t.Fatal(err)
	}
	want := GenResult{Mode: "sub", Clients: 100, Connected: 100, ConnectRate: 5000.5, ConnackP50: 0.4, ConnackP99: 2.5,
		Received: 123456, RecvRate: 24691.2, LatP50: 0.31, LatP99: 1.9, LatP999: 4.2, Lost: 3, DurationS: 5, CPUS: 1.25}
	if r != want {
		t.Errorf("ParseResult =\n%+v\nwant\n%+v", r, want)
	}
	if _, err := ParseResult([]byte("no json here\n")); err == nil {
		t.Error("ParseResult without JSON: no error")
	}
	if _, err := ParseResult([]byte("{\"mode\": 3}\n")); err == nil {
		t.Error("ParseResult of a mistyped field: no error")
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"shoalbench", "sub", "-t", "$share/g/fanin/t", "--prefix", "it's", "-t", "bench/%i", ""})
	want := `shoalbench sub -t '$share/g/fanin/t' --prefix 'it'\''s' -t bench/%i ''`
	if got != want {
		t.Errorf("shellJoin = %s; want %s", got, want)
	}
}
