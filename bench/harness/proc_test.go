package harness

import (
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
