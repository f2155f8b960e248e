package proc

import (
	"context"
	"math"
	"os"
	"testing"
)

// A trimmed /proc/PID/status of a broker.
const statusFixture = `Name:	mosquitto
Umask:	0022
State:	S (sleeping)
VmPeak:	  108236 kB
VmSize:	  108236 kB
VmHWM:	   41320 kB
VmRSS:	   38004 kB
Threads:	1
`

func TestParseStatus(t *testing.T) {
	m, err := ParseStatus(statusFixture)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS != 38004*1024 || m.Peak != 41320*1024 {
		t.Fatalf("ParseStatus = %+v; want RSS 38004 KiB, Peak 41320 KiB", m)
	}
	if _, err := ParseStatus("Name:\tkthreadd\nState:\tS\n"); err == nil {
		t.Fatal("ParseStatus without VmRSS: no error")
	}
	if _, err := ParseStatus("VmRSS:\tlots kB\nVmHWM:\t1 kB\n"); err == nil {
		t.Fatal("ParseStatus of a bad number: no error")
	}
}

func TestParseStat(t *testing.T) {
	// The command name holds a space and a parenthesis, which is why
	// fields are counted from the last ')'. utime 250, stime 75 ticks.
	stat := "4242 (my (broker)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 100 1000000 900 18446744073709551615\n"
	cpu, err := ParseStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if cpu != 3.25 {
		t.Fatalf("ParseStat = %v; want 3.25", cpu)
	}
	for _, bad := range []string{"", "12 (x) S 1 2", "12 (x) S 1 2 3 4 5 6 7 8 9 10 x 0"} {
		if _, err := ParseStat(bad); err == nil {
			t.Errorf("ParseStat(%q): no error", bad)
		}
	}
}

func TestReadSelf(t *testing.T) {
	pid := os.Getpid()
	m, err := ReadMem(pid)
	if err != nil || m.RSS <= 0 || m.Peak < m.RSS {
		t.Fatalf("ReadMem(self) = %+v, %v", m, err)
	}
	if cpu, err := ReadCPU(pid); err != nil || cpu < 0 || math.IsNaN(cpu) {
		t.Fatalf("ReadCPU(self) = %v, %v", cpu, err)
	}
}

func TestParseIO(t *testing.T) {
	io := "rchar: 4242\nwchar: 99\nsyscr: 120\nsyscw: 340\nread_bytes: 0\n"
	r, w, err := ParseIO(io)
	if err != nil || r != 120 || w != 340 {
		t.Fatalf("ParseIO = %d, %d, %v; want 120, 340", r, w, err)
	}
	if _, _, err := ParseIO("rchar: 1\n"); err == nil {
		t.Error("ParseIO without syscr: no error")
	}
}

func TestParseSwitches(t *testing.T) {
	st := "Name:\tshoal\nvoluntary_ctxt_switches:\t150\nnonvoluntary_ctxt_switches:\t7\n"
	if n, err := ParseSwitches(st); err != nil || n != 157 {
		t.Fatalf("ParseSwitches = %d, %v; want 157", n, err)
	}
	if _, err := ParseSwitches("Name:\tx\n"); err == nil {
		t.Error("ParseSwitches without the counts: no error")
	}
}

// TestParseSegsOut: segs_out counts, data_segs_out does not.
func TestParseSegsOut(t *testing.T) {
	out := []byte(`0      0      127.0.0.1:1883   127.0.0.1:40000
	 cubic wscale:7,7 rto:201 segs_out:10 segs_in:9 data_segs_out:8 data_segs_in:2 send 1Mbps
0      0      127.0.0.1:1883   127.0.0.1:40002
	 cubic segs_out:5 segs_in:3 data_segs_out:4
`)
	if got := ParseSegsOut(out); got != 15 {
		t.Fatalf("ParseSegsOut = %d; want 15", got)
	}
}

func TestCountersSub(t *testing.T) {
	a := Counters{Reads: 10, Writes: 20, Switches: 30, Segs: 40}
	b := Counters{Reads: 1, Writes: 2, Switches: 3, Segs: 4}
	if d := a.Sub(b); d != (Counters{Reads: 9, Writes: 18, Switches: 27, Segs: 36}) {
		t.Errorf("Sub = %+v", d)
	}
	b.Segs = -1
	if d := a.Sub(b); d.Segs != -1 {
		t.Errorf("Sub with segments unknown = %+v; want Segs -1", d)
	}
}

func TestReadCountersSelf(t *testing.T) {
	c, err := ReadCounters(context.Background(), os.Getpid(), 1)
	if err != nil || c.Switches <= 0 || c.Reads <= 0 {
		t.Fatalf("ReadCounters(self) = %+v, %v", c, err)
	}
}

func TestParsePerfStat(t *testing.T) {
	out := `# started on Sun Dec  6 17:42:42 2026

281090,,raw_syscalls:sys_enter,1763816590,100.00,,
<not counted>,,syscalls:sys_enter_epoll_pwait,0,0.00,,
276558,,syscalls:sys_enter_write,1763816590,100.00,,
`
	m := ParsePerfStat(out)
	if len(m) != 2 || m[PerfSyscalls] != 281090 || m["syscalls:sys_enter_write"] != 276558 {
		t.Fatalf("ParsePerfStat = %v", m)
	}
}
