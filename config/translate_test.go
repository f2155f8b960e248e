package config

import (
	"errors"
	"testing"
)

// TestTranslation: values set through a Translation meet the settings'
// own checks, and an error found at Finish is placed at the Source the
// value came from — or at none, once a zero Source replaced it.
func TestTranslation(t *testing.T) {
	at := Source{File: "m.conf", Line: 3, Name: "max_inflight_messages"}
	tr := NewTranslation("m.conf", FormatMosquitto)
	if err := tr.Set("max_inflight", KindString, at, "20"); err == nil {
		t.Error("a count given as a string was taken")
	}
	if err := tr.Set("max_inflight", KindInt, at, "20"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Set("log_dest", KindString, Source{}, "stderr", "stdout"); err != nil {
		t.Fatal(err)
	}
	tr.File().Warnings = []string{"w"}
	f, err := tr.Finish(nil)
	if err != nil {
		t.Fatal(err)
	}
	if f.Broker.MaxInflight != 20 || len(f.LogDest) != 2 || f.Format != FormatMosquitto || len(f.Warnings) != 1 {
		t.Errorf("got max_inflight %d, log_dest %q, format %v, warnings %q", f.Broker.MaxInflight, f.LogDest, f.Format, f.Warnings)
	}

	// Validate's error, at the line; then, the line forgotten, at none.
	at = Source{File: "inc.conf", Line: 7, Name: "max_inflight_messages"}
	tr = NewTranslation("m.conf", FormatMosquitto)
	for _, s := range []Source{at, {}} {
		if err := tr.Set("max_inflight", KindInt, s, "0"); err != nil {
			t.Fatal(err)
		}
	}
	_, err = tr.Finish(nil)
	var e *Error
	if !errors.As(err, &e) || e.File != "m.conf" || e.Line != 0 || e.Key != "max_inflight" {
		t.Errorf("with a zero Source: %v", err)
	}
	tr = NewTranslation("m.conf", FormatMosquitto)
	if err := tr.Set("max_inflight", KindInt, at, "0"); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Finish(nil); !errors.As(err, &e) || e.File != "inc.conf" || e.Line != 7 || e.Key != "max_inflight_messages" {
		t.Errorf("placed at %+v: %v", at, err)
	}

	defer func() {
		if recover() == nil {
			t.Error("an unknown key did not panic")
		}
	}()
	_ = NewTranslation("m.conf", FormatMosquitto).Set("no_such_key", KindInt, Source{}, "1")
}
