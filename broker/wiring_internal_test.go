package broker

import (
	"reflect"
	"testing"
	"time"
)

// TestPartsSettingsFollowConfig: every setting the internal packages take
// (conn.Config, limit.Limits) is copied from the Config field of the same
// name, so that a setting is declared once and cannot be wired to the
// wrong field. The policies, which package limit has as booleans, are
// checked by name.
func TestPartsSettingsFollowConfig(t *testing.T) {
	cfg := DefaultConfig()
	// Give every field a value of its own, so that a copy from the wrong
	// field shows.
	v := reflect.ValueOf(&cfg).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if !v.Type().Field(i).IsExported() {
			continue
		}
		switch f.Kind() {
		case reflect.Int, reflect.Int64:
			if f.Type() == reflect.TypeOf(time.Duration(0)) {
				f.SetInt(int64(i+1) * int64(time.Second))
			} else {
				f.SetInt(int64(i + 1000))
			}
		case reflect.Uint8, reflect.Uint16:
			f.SetUint(uint64(i + 1))
		case reflect.Float64:
			f.SetFloat(float64(i) + 0.5)
		case reflect.String:
			f.SetString(v.Type().Field(i).Name)
		case reflect.Bool:
			f.SetBool(i%2 == 0)
		}
	}
	cfg.QueuePolicy, cfg.SlowConsumer = DropNewest, DisconnectSlow
	check := func(what string, got reflect.Value, skip map[string]bool) {
		for i := range got.NumField() {
			name := got.Type().Field(i).Name
			if skip[name] {
				continue
			}
			want := v.FieldByName(name)
			if !want.IsValid() {
				t.Errorf("%s.%s: no Config field of that name", what, name)
				continue
			}
			if !reflect.DeepEqual(got.Field(i).Interface(), want.Interface()) {
				t.Errorf("%s.%s = %v, want Config.%s = %v", what, name, got.Field(i), name, want)
			}
		}
	}
	check("conn.Config", reflect.ValueOf(cfg.connConfig()), nil)
	lim := cfg.limits()
	check("limit.Limits", reflect.ValueOf(*lim), map[string]bool{"DropOldest": true, "DisconnectSlow": true, "MaxConnections": true})
	if lim.DropOldest || !lim.DisconnectSlow || lim.MaxConnections != cfg.MaxConnections {
		t.Errorf("policies: DropOldest %v, DisconnectSlow %v, MaxConnections %d; want false, true, %d",
			lim.DropOldest, lim.DisconnectSlow, lim.MaxConnections, cfg.MaxConnections)
	}
}
